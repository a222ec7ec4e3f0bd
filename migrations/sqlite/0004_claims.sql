-- Claiming a lead: who said "I'll call them" (their name kept as it was then), and when.
ALTER TABLE leads ADD COLUMN claimed_by INTEGER REFERENCES users (id);
ALTER TABLE leads ADD COLUMN claimed_by_name TEXT;
ALTER TABLE leads ADD COLUMN claimed_at INTEGER;

-- The Leads page's "Not claimed" view (newest first), and each person's claims of the last 30
-- days on the Notifications page.
CREATE INDEX leads_unclaimed ON leads (business_id, updated_at, lead_id) WHERE claimed_by IS NULL;
CREATE INDEX leads_claims ON leads (business_id, claimed_at) WHERE claimed_at IS NOT NULL;

-- "Lead updates only for leads I claimed": per person, and for the whole business.
ALTER TABLE recipients ADD COLUMN claimed_updates_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notification_defaults ADD COLUMN claimed_updates_only INTEGER NOT NULL DEFAULT 0;

-- A business alert sent to an address that is also a person's (the owner's email as the
-- notification email) carries that person's claim link: who it is for.
ALTER TABLE deliveries ADD COLUMN claim_user_id INTEGER REFERENCES users (id);
