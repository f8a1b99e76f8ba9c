-- Stripe's ids for what finance mirrors there, so a retried push finds its objects.
ALTER TABLE clients ADD COLUMN stripe_customer_id TEXT;
ALTER TABLE invoices ADD COLUMN stripe_invoice_id TEXT;
CREATE INDEX invoices_stripe_idx ON invoices (stripe_invoice_id);
