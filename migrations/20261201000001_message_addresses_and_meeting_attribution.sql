-- The address each message went to: a bounce or a mailed unsubscribe counts only for
-- a message we sent to the address it names, and a booking matched by email alone only
-- for an address we wrote to.
ALTER TABLE messages ADD COLUMN address TEXT;
CREATE INDEX messages_address_idx ON messages (address);

-- How a meeting was tied to its prospect: `link` (the booking link's signed tracking),
-- `email` (the invitee's address, one we wrote to: for the operator to confirm),
-- `operator` (linked by hand). NULL: unattributed, waiting for the operator.
ALTER TABLE meetings ADD COLUMN attribution TEXT;

-- Messages sent before this went to their prospect's address.
UPDATE messages SET address = (SELECT LOWER(p.email) FROM prospects p WHERE p.id = messages.prospect_id)
 WHERE channel = 'email' AND message_id IS NOT NULL;
