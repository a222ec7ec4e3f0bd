-- What the carrier said about each text after it left (Twilio's status callback): its state
-- (queued, sending, sent, delivered, undelivered, failed), the error code when it did not arrive,
-- and when the state was heard.
ALTER TABLE deliveries ADD COLUMN carrier_status TEXT;
ALTER TABLE deliveries ADD COLUMN carrier_error INTEGER;
ALTER TABLE deliveries ADD COLUMN carrier_at_ms INTEGER;

-- A callback finds its text by the provider's message id.
CREATE INDEX deliveries_sms_sid ON deliveries (provider_id) WHERE channel = 'sms' AND provider_id IS NOT NULL;
