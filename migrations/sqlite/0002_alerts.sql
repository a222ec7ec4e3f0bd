-- The alerts flow: events in, a decision per person and channel out. Times ending in _ms are
-- UTC unix milliseconds (the dispatcher schedules retries finer than a second).
ALTER TABLE businesses ADD COLUMN previous_webhook_secret TEXT;
ALTER TABLE businesses ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE users ADD COLUMN phone_blocked_reason TEXT;

CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    business_id     TEXT NOT NULL REFERENCES businesses (id),
    webhook_id      TEXT NOT NULL,
    type            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'planned', 'ignored', 'duplicate')),
    note            TEXT,
    usage_threshold INTEGER,
    planned_at_ms   INTEGER,
    UNIQUE (business_id, webhook_id)
);
CREATE INDEX events_to_plan ON events (id) WHERE state = 'received';
CREATE INDEX events_business ON events (business_id, id);

CREATE TABLE alert_keys (
    business_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    event_id    INTEGER NOT NULL REFERENCES events (id),
    PRIMARY KEY (business_id, key)
);

CREATE TABLE usage_alerts (
    business_id  TEXT NOT NULL,
    period_start TEXT NOT NULL,
    threshold    INTEGER NOT NULL,
    event_id     INTEGER NOT NULL REFERENCES events (id),
    PRIMARY KEY (business_id, period_start, threshold)
);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    business_id     TEXT NOT NULL,
    user_id         INTEGER REFERENCES users (id),
    person_name     TEXT,
    channel         TEXT CHECK (channel IN ('email', 'sms', 'in_app')),
    address         TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'skipped', 'failed', 'dead')),
    reason          TEXT,
    duplicate_of    INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER,
    lease_until_ms  INTEGER,
    provider_id     TEXT,
    created_at_ms   INTEGER NOT NULL,
    sent_at_ms      INTEGER
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_business ON deliveries (business_id, id);

CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    business_id TEXT NOT NULL REFERENCES businesses (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    delivery_id INTEGER UNIQUE REFERENCES deliveries (id),
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    link        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    read_at     INTEGER
);
CREATE INDEX notifications_unread ON notifications (user_id, id) WHERE read_at IS NULL;
CREATE INDEX notifications_user ON notifications (user_id, id);

CREATE TABLE leads (
    business_id   TEXT NOT NULL REFERENCES businesses (id),
    lead_id       TEXT NOT NULL,
    name          TEXT,
    phone         TEXT,
    email         TEXT,
    score         INTEGER,
    summary       TEXT,
    first_seen_at INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_event_id INTEGER NOT NULL REFERENCES events (id),
    PRIMARY KEY (business_id, lead_id)
);
CREATE INDEX leads_recent ON leads (business_id, updated_at);
