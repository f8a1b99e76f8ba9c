-- What came of a meeting (revision 2): `meetings.status` moves scheduled → held |
-- no_show | canceled, then held → won | lost. A won meeting keeps the tier sold, a lost
-- one its reason; `outcome_at` and `outcome_by` (operator or calendly) say when and who.
ALTER TABLE meetings ADD COLUMN tier TEXT;
ALTER TABLE meetings ADD COLUMN lost_reason TEXT;
ALTER TABLE meetings ADD COLUMN outcome_at BIGINT;
ALTER TABLE meetings ADD COLUMN outcome_by TEXT;
CREATE INDEX meetings_start_idx ON meetings (start_at);

-- Before this every booking became a client: those meetings were won, at their client's
-- tier.
UPDATE meetings
   SET status = 'won',
       tier = (SELECT c.billing_tier FROM clients c WHERE c.prospect_id = meetings.prospect_id),
       outcome_at = (SELECT c.started_at FROM clients c WHERE c.prospect_id = meetings.prospect_id),
       outcome_by = 'operator'
 WHERE status = 'scheduled'
   AND prospect_id IN (SELECT prospect_id FROM clients WHERE prospect_id IS NOT NULL);
