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
UPDATE leads SET alerts_sent = (
    SELECT count(*) FROM deliveries d JOIN events e ON e.id = d.event_id
    WHERE e.business_id = leads.business_id AND e.lead_id = leads.lead_id AND d.status = 'sent');
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

-- Recent alerts read the decisions of a range of events; the dashboard the ones that failed.
DROP INDEX deliveries_business;
CREATE INDEX deliveries_business ON deliveries (business_id, event_id);
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
