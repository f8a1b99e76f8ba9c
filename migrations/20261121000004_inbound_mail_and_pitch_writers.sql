-- Replies and bounces find our message by the Message-ID they name.
CREATE INDEX messages_message_id_idx ON messages (message_id);

-- Who wrote a pitch: `template` or the LLM provider (ollama, anthropic, openai).
ALTER TABLE pitches ADD COLUMN writer TEXT NOT NULL DEFAULT 'template';
