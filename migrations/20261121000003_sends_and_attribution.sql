-- Sends counted per mailbox, channel and day: the daily cap is claimed with one
-- conditional upsert, so concurrent workers can never pass it.
CREATE TABLE send_counters (
    mailbox  TEXT NOT NULL,
    channel  TEXT NOT NULL,
    day      TEXT NOT NULL,
    sent     BIGINT NOT NULL,
    CONSTRAINT send_counters_pk PRIMARY KEY (mailbox, channel, day)
);

-- The pitch a booking came from, through the booking link's utm_content.
ALTER TABLE meetings ADD COLUMN pitch_id TEXT;

CREATE INDEX messages_prospect_idx ON messages (prospect_id);
CREATE INDEX prospects_email_idx ON prospects (email);
CREATE INDEX clients_state_idx ON clients (state);
CREATE INDEX tasks_client_idx ON tasks (client_id);
CREATE INDEX invoices_client_idx ON invoices (client_id);
