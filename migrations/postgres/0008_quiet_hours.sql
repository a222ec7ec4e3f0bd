-- Time zones (tz database names): the business's (set by the owner; unset means the one its
-- region suggests), and a person's own (unset means the business's).
ALTER TABLE businesses ADD COLUMN time_zone TEXT;
ALTER TABLE users ADD COLUMN time_zone TEXT;

-- Quiet hours on a recipient row: the days a window starts on (a bit per day, Monday = 1;
-- 0 = none), from and to in minutes after midnight; and the lead score that gets through anyway.
ALTER TABLE recipients ADD COLUMN quiet_days BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN quiet_from BIGINT;
ALTER TABLE recipients ADD COLUMN quiet_to BIGINT;
ALTER TABLE recipients ADD COLUMN urgent_score BIGINT;

-- A delivery held for quiet hours waits (pending) until the window ends.
ALTER TABLE deliveries ADD COLUMN held_until_ms BIGINT;
CREATE INDEX deliveries_held ON deliveries (user_id, channel, held_until_ms)
    WHERE status = 'pending' AND held_until_ms IS NOT NULL;

-- Lead updates close together become one alert: the business's window (minutes; 0 = off), and
-- when each lead's last update was alerted at once (later ones in the window wait and merge).
ALTER TABLE notification_defaults ADD COLUMN update_window_minutes BIGINT NOT NULL DEFAULT 2;
ALTER TABLE leads ADD COLUMN update_alerted_at_ms BIGINT;
