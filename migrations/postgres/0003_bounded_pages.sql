-- Pages that stay cheap at any size, and the delivery core that plans at ingest.
-- (No PostgreSQL database predates this step, so the data conversions the SQLite step makes to
-- older rows have nothing to convert here; the counters start from what the tables hold.)

-- Events are stored as their type plus the JSON of their data; lead events name their lead.
ALTER TABLE events ADD COLUMN lead_id TEXT;
CREATE INDEX events_type ON events (business_id, type, id);
CREATE INDEX events_received ON events (business_id, received_at_ms);

-- A delivery's place in its event's plan (the writer matches inserted rows by it).
ALTER TABLE deliveries ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

-- Counts the pages show, kept at write time.
ALTER TABLE leads ADD COLUMN alerts_sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE businesses ADD COLUMN leads_count BIGINT NOT NULL DEFAULT 0;
UPDATE businesses SET leads_count = (SELECT count(*) FROM leads WHERE leads.business_id = businesses.id);

CREATE FUNCTION leads_count_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE businesses SET leads_count = leads_count + 1 WHERE id = NEW.business_id;
    RETURN NULL;
END $$;
CREATE TRIGGER leads_count_on_insert AFTER INSERT ON leads
    FOR EACH ROW EXECUTE FUNCTION leads_count_on_insert();

CREATE FUNCTION lead_alerts_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE leads SET alerts_sent = alerts_sent + 1
    WHERE business_id = NEW.business_id AND lead_id = (SELECT lead_id FROM events WHERE id = NEW.event_id);
    RETURN NULL;
END $$;
CREATE TRIGGER lead_alerts_sent AFTER UPDATE OF status ON deliveries
    FOR EACH ROW WHEN (NEW.status = 'sent' AND OLD.status <> 'sent') EXECUTE FUNCTION lead_alerts_sent();

-- A person's unread in-app alerts (the bell on every page).
ALTER TABLE users ADD COLUMN unread BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION unread_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET unread = unread + 1 WHERE id = NEW.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER unread_on_insert AFTER INSERT ON notifications
    FOR EACH ROW WHEN (NEW.read_at IS NULL) EXECUTE FUNCTION unread_on_insert();

CREATE FUNCTION unread_on_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET unread = unread - 1 WHERE id = NEW.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER unread_on_read AFTER UPDATE OF read_at ON notifications
    FOR EACH ROW WHEN (OLD.read_at IS NULL AND NEW.read_at IS NOT NULL) EXECUTE FUNCTION unread_on_read();

CREATE FUNCTION unread_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET unread = unread - 1 WHERE id = OLD.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER unread_on_delete AFTER DELETE ON notifications
    FOR EACH ROW WHEN (OLD.read_at IS NULL) EXECUTE FUNCTION unread_on_delete();

-- Why a decision was not to deliver, as a code the alert log sums up and filters by.
ALTER TABLE deliveries ADD COLUMN skip TEXT;

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
