-- Claiming a lead: who said "I'll call them" (their name kept as it was then), and when.
ALTER TABLE leads ADD COLUMN claimed_by BIGINT REFERENCES users (id);
ALTER TABLE leads ADD COLUMN claimed_by_name TEXT;
ALTER TABLE leads ADD COLUMN claimed_at BIGINT;
