-- Escalation: "if a lead scoring at least [70] is not claimed within [5] minutes, alert [people]
-- by [channels]; then after [10] more minutes, alert [people]". One policy per business; a
-- business without a row has none.
CREATE TABLE escalation_policies (
    business_id    TEXT PRIMARY KEY REFERENCES businesses (id),
    enabled        INTEGER NOT NULL,
    min_score      INTEGER NOT NULL,
    first_minutes  INTEGER NOT NULL,
    email          INTEGER NOT NULL,
    sms            INTEGER NOT NULL,
    in_app         INTEGER NOT NULL,
    -- NULL: no second step.
    second_minutes INTEGER,
    updated_at     INTEGER NOT NULL
);

-- Who each step alerts (step 1 or 2).
CREATE TABLE escalation_targets (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    step        INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (business_id, step, user_id)
);

-- The timers: one row per lead and step, due at a time, picked up by the dispatcher like a
-- retry. State: pending, fired (the escalation event is event_id), or cancelled (note says why:
-- claimed, turned off). A restart finds the pending rows; the event's webhook id
-- ("escalation:{lead}:{step}") makes firing twice store it once.
CREATE TABLE escalations (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    lead_id     TEXT NOT NULL,
    step        INTEGER NOT NULL,
    due_ms      INTEGER NOT NULL,
    state       TEXT NOT NULL,
    note        TEXT,
    event_id    INTEGER REFERENCES events (id),
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (business_id, lead_id, step)
);
CREATE INDEX escalations_due ON escalations (due_ms) WHERE state = 'pending';

-- The Leads page: when the lead was last escalated, and after how many minutes without a claim.
ALTER TABLE leads ADD COLUMN escalated_at INTEGER;
ALTER TABLE leads ADD COLUMN escalated_after INTEGER;
