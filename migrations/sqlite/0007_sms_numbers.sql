-- Numbers that replied STOP (or STOPALL, UNSUBSCRIBE, ...) to our sender: no text goes to them
-- until they reply START. A fact about the number, whichever business it belongs to.
CREATE TABLE sms_opt_outs (
    phone   TEXT PRIMARY KEY,
    keyword TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
);

-- Texts people sent to our number, and what each did ("Opted out", "Claimed ...", "Recorded").
CREATE TABLE sms_inbound (
    id             INTEGER PRIMARY KEY,
    from_phone     TEXT NOT NULL,
    body           TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    provider_id    TEXT,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX sms_inbound_from ON sms_inbound (from_phone, id);

-- A STOP or START changes what every business with that number may send it.
CREATE INDEX users_phone ON users (phone) WHERE phone IS NOT NULL;
CREATE INDEX notification_defaults_phone ON notification_defaults (notification_phone) WHERE notification_phone IS NOT NULL;

-- How many SMS segments each text took (what the provider bills).
ALTER TABLE deliveries ADD COLUMN segments INTEGER;

-- "1" claims the lead of the last alert texted to the number: the texts to one number, newest first.
CREATE INDEX deliveries_sms_to ON deliveries (address, id) WHERE channel = 'sms';

-- The SMS page: a business's texts, a person's texts, and the ones that did not arrive, newest first.
CREATE INDEX deliveries_sms_business ON deliveries (business_id, id) WHERE channel = 'sms' AND status <> 'skipped';
CREATE INDEX deliveries_sms_user ON deliveries (user_id, id) WHERE channel = 'sms' AND status <> 'skipped';
CREATE INDEX deliveries_sms_failed ON deliveries (business_id, id)
    WHERE channel = 'sms' AND (status IN ('failed', 'dead') OR carrier_status IN ('undelivered', 'failed'));

-- A phone receives alerts only once its owner entered the code texted to it. Numbers that were
-- on file before confirmation existed count as confirmed.
ALTER TABLE users ADD COLUMN phone_confirmed_at INTEGER;
UPDATE users SET phone_confirmed_at = created_at WHERE phone IS NOT NULL;
ALTER TABLE notification_defaults ADD COLUMN phone_confirmed_at INTEGER;
UPDATE notification_defaults SET phone_confirmed_at = updated_at WHERE notification_phone IS NOT NULL;

-- The code waiting to be entered for a phone: of a person (user_id), or the business's
-- notification phone (user_id 0). Only its keyed hash is kept.
CREATE TABLE phone_codes (
    business_id  TEXT NOT NULL REFERENCES businesses (id),
    user_id      INTEGER NOT NULL,
    phone        TEXT NOT NULL,
    code_hash    TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    tries        INTEGER NOT NULL DEFAULT 0,
    sends        INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    sent_at      INTEGER NOT NULL,
    PRIMARY KEY (business_id, user_id)
);
