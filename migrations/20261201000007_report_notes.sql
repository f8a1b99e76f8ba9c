-- The agency's notes on a report (the console's report page), who wrote them and when;
-- and the money page lists invoices newest first.
ALTER TABLE reports ADD COLUMN notes TEXT;
ALTER TABLE reports ADD COLUMN notes_by TEXT;
ALTER TABLE reports ADD COLUMN notes_at BIGINT;
CREATE INDEX reports_client_idx ON reports (client_id, period_start);
CREATE INDEX invoices_issued_idx ON invoices (issued_at, id);
