-- Escalation: "if a lead scoring at least [70] is not claimed within [5] minutes, alert [people]
-- by [channels]; then after [10] more minutes, alert [people]". One policy per business; a
-- business without a row has none.
CREATE TABLE escalation_policies (
    business_id    TEXT PRIMARY KEY REFERENCES businesses (id),
    enabled        BOOLEAN NOT NULL,
    min_score      BIGINT NOT NULL,
    first_minutes  BIGINT NOT NULL,
    email          BOOLEAN NOT NULL,
    sms            BOOLEAN NOT NULL,
    in_app         BOOLEAN NOT NULL,
    -- NULL: no second step.
    second_minutes BIGINT,
    updated_at     BIGINT NOT NULL
);

-- Who each step alerts (step 1 or 2).
CREATE TABLE escalation_targets (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    step        BIGINT NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    PRIMARY KEY (business_id, step, user_id)
);

-- The timers: one row per lead and step, due at a time, picked up by the dispatcher like a
-- retry. State: pending, fired (the escalation event is event_id), or cancelled (note says why:
-- claimed, turned off). A restart finds the pending rows; the event's webhook id
-- ("escalation:{lead}:{step}") makes firing twice store it once.
CREATE TABLE escalations (
    business_id TEXT NOT NULL REFERENCES businesses (id),
    lead_id     TEXT NOT NULL,
    step        BIGINT NOT NULL,
    due_ms      BIGINT NOT NULL,
    state       TEXT NOT NULL,
    note        TEXT,
    event_id    BIGINT REFERENCES events (id),
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (business_id, lead_id, step)
);
CREATE INDEX escalations_due ON escalations (due_ms) WHERE state = 'pending';

-- The Leads page: when the lead was last escalated, and after how many minutes without a claim.
ALTER TABLE leads ADD COLUMN escalated_at BIGINT;
ALTER TABLE leads ADD COLUMN escalated_after BIGINT;
