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
