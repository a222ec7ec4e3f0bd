-- Pages that stay cheap at any size, and the delivery core that plans at ingest.

-- Events are stored as their type (column `type`) plus the JSON of their data; the type name no
-- longer repeats inside the payload. Lead events name their lead, so nothing reads payloads to
-- find it.
UPDATE events SET payload = coalesce(json_extract(payload, '$.data'), '{}') WHERE json_valid(payload)
    AND json_type(payload, '$.data') = 'object';
ALTER TABLE events ADD COLUMN lead_id TEXT;
UPDATE events SET lead_id = json_extract(payload, '$.lead_id') WHERE type IN ('lead.created', 'lead.updated');
CREATE INDEX events_type ON events (business_id, type, id);
CREATE INDEX events_received ON events (business_id, received_at_ms);

-- A delivery's place in its event's plan (the writer matches inserted rows by it).
ALTER TABLE deliveries ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

-- Counts the pages show, kept at write time.
ALTER TABLE leads ADD COLUMN alerts_sent INTEGER NOT NULL DEFAULT 0;
-- Counted in one pass over the sent deliveries (a count per lead would read them once a lead).
UPDATE leads SET alerts_sent = sent.n
FROM (SELECT e.business_id, e.lead_id, count(*) AS n FROM deliveries d JOIN events e ON e.id = d.event_id
      WHERE d.status = 'sent' AND e.lead_id IS NOT NULL GROUP BY e.business_id, e.lead_id) AS sent
WHERE leads.business_id = sent.business_id AND leads.lead_id = sent.lead_id;
ALTER TABLE businesses ADD COLUMN leads_count INTEGER NOT NULL DEFAULT 0;
UPDATE businesses SET leads_count = (SELECT count(*) FROM leads WHERE leads.business_id = businesses.id);

CREATE TRIGGER leads_count_on_insert AFTER INSERT ON leads
BEGIN
    UPDATE businesses SET leads_count = leads_count + 1 WHERE id = NEW.business_id;
END;

CREATE TRIGGER lead_alerts_sent AFTER UPDATE OF status ON deliveries
WHEN NEW.status = 'sent' AND OLD.status <> 'sent'
BEGIN
    UPDATE leads SET alerts_sent = alerts_sent + 1
    WHERE business_id = NEW.business_id AND lead_id = (SELECT lead_id FROM events WHERE id = NEW.event_id);
END;

-- A person's unread in-app alerts (the bell on every page).
ALTER TABLE users ADD COLUMN unread INTEGER NOT NULL DEFAULT 0;
UPDATE users SET unread = (SELECT count(*) FROM notifications n WHERE n.user_id = users.id AND n.read_at IS NULL);

CREATE TRIGGER unread_on_insert AFTER INSERT ON notifications WHEN NEW.read_at IS NULL
BEGIN
    UPDATE users SET unread = unread + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER unread_on_read AFTER UPDATE OF read_at ON notifications
WHEN OLD.read_at IS NULL AND NEW.read_at IS NOT NULL
BEGIN
    UPDATE users SET unread = unread - 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER unread_on_delete AFTER DELETE ON notifications WHEN OLD.read_at IS NULL
BEGIN
    UPDATE users SET unread = unread - 1 WHERE id = OLD.user_id;
END;

-- Why a decision was not to deliver, as a code the alert log sums up and filters by (the words
-- stay in `reason`). Earlier versions named duplicates by an internal id: now in words.
ALTER TABLE deliveries ADD COLUMN skip TEXT;
UPDATE deliveries SET reason = 'same address as another alert of this event, which gets it'
    WHERE status = 'skipped' AND reason LIKE 'duplicate of delivery %';
UPDATE deliveries SET skip = CASE
        WHEN reason LIKE '% are off for the business' THEN 'kind_off_business'
        WHEN reason LIKE '% is off for the business' THEN 'channel_off_business'
        WHEN reason LIKE 'no notification % is set' THEN 'no_destination'
        WHEN reason LIKE '% turned % off' THEN 'kind_off_person'
        WHEN reason LIKE 'score % is below %' THEN 'below_threshold'
        WHEN reason = 'no phone number' THEN 'no_phone'
        WHEN reason LIKE 'same address as %' THEN 'duplicate'
        ELSE 'other' END
    WHERE status = 'skipped';

-- Recent alerts read the decisions of a range of events, the alert log finds the events with a
-- matching decision (for everyone, or for one person) from the index alone; the dashboard reads
-- the ones that failed.
DROP INDEX deliveries_business;
CREATE INDEX deliveries_business ON deliveries (business_id, event_id, status, channel);
CREATE INDEX deliveries_person ON deliveries (business_id, user_id, event_id, status, channel);
CREATE INDEX deliveries_attention ON deliveries (business_id, id) WHERE status IN ('failed', 'dead');

-- Keyset paging of leads (newest first) and the 30-day score histogram of the threshold preview.
DROP INDEX leads_recent;
CREATE INDEX leads_recent ON leads (business_id, updated_at, lead_id);
CREATE INDEX leads_first_seen ON leads (business_id, first_seen_at, score);

-- An email may wait for an invitation in several businesses; once someone sets a password it
-- is their account, and it can be active in one business only. Within one business an email
-- appears once.
DROP INDEX users_active_email;
CREATE UNIQUE INDEX users_active_email ON users (lower(email)) WHERE removed_at IS NULL AND password_hash IS NOT NULL;
CREATE UNIQUE INDEX users_business_email ON users (business_id, lower(email)) WHERE removed_at IS NULL;
