-- Timestamps are UTC unix seconds. Booleans are 0/1 integers.
CREATE TABLE app_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE businesses (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    region         TEXT NOT NULL DEFAULT 'US',
    webhook_secret TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    business_id   TEXT NOT NULL REFERENCES businesses (id),
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    phone         TEXT,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    removed_at    INTEGER
);
CREATE UNIQUE INDEX users_active_email ON users (lower(email)) WHERE removed_at IS NULL;
CREATE INDEX users_business ON users (business_id);

CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX invitations_user ON invitations (user_id);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER REFERENCES users (id),
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE notification_defaults (
    business_id        TEXT PRIMARY KEY REFERENCES businesses (id),
    lead_created       INTEGER NOT NULL,
    lead_updated       INTEGER NOT NULL,
    usage_alerts       INTEGER NOT NULL,
    billing_alerts     INTEGER NOT NULL,
    email_enabled      INTEGER NOT NULL,
    sms_enabled        INTEGER NOT NULL,
    in_app_enabled     INTEGER NOT NULL,
    notification_email TEXT,
    notification_phone TEXT,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE recipients (
    id             INTEGER PRIMARY KEY,
    business_id    TEXT NOT NULL REFERENCES businesses (id),
    user_id        INTEGER NOT NULL REFERENCES users (id),
    email_enabled  INTEGER NOT NULL,
    sms_enabled    INTEGER NOT NULL,
    in_app_enabled INTEGER NOT NULL,
    lead_created   INTEGER NOT NULL,
    lead_updated   INTEGER NOT NULL,
    usage_alerts   INTEGER NOT NULL,
    billing_alerts INTEGER NOT NULL,
    min_lead_score INTEGER NOT NULL CHECK (min_lead_score BETWEEN 0 AND 100),
    created_at     INTEGER NOT NULL,
    UNIQUE (business_id, user_id)
);

CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    actor_user_id   INTEGER REFERENCES users (id),
    subject_user_id INTEGER REFERENCES users (id),
    change          TEXT NOT NULL,
    old_value       TEXT,
    new_value       TEXT,
    at              INTEGER NOT NULL
);
CREATE INDEX audit_log_business ON audit_log (business_id, id);
