-- A daily summary of the new leads below a recipient's threshold, by email, at this time of
-- day in their zone (minutes after midnight; NULL = off).
ALTER TABLE recipients ADD COLUMN digest_at INTEGER;

-- Payment-failed alerts marked urgent by the owner get through everyone's quiet hours.
ALTER TABLE notification_defaults ADD COLUMN billing_urgent INTEGER NOT NULL DEFAULT 0;

-- Why a pending delivery is held ('quiet', 'update', 'digest'; NULL for rows held before this
-- column) and its release time as the person reads it ("07:00"), for what Recent alerts says
-- once it went.
ALTER TABLE deliveries ADD COLUMN held_for TEXT;
ALTER TABLE deliveries ADD COLUMN held_at TEXT;

-- Retention deletes old events in small batches, oldest first (each lead keeps its latest
-- event: the Leads page shows the lead from it), with what refers to them.
CREATE INDEX events_age ON events (received_at_ms, id);
CREATE INDEX leads_last_event ON leads (last_event_id);
CREATE INDEX alert_keys_event ON alert_keys (event_id);
CREATE INDEX usage_alerts_event ON usage_alerts (event_id);
CREATE INDEX escalations_event ON escalations (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX notifications_created ON notifications (created_at);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX sms_inbound_received ON sms_inbound (received_at_ms);
