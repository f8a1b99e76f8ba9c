-- The operator console's people: users with a role, their sessions, failed sign-ins
-- (rate limiting, shared by every `serve` replica) and the audit log of every action.

CREATE TABLE users (
    id             TEXT NOT NULL,
    email          TEXT NOT NULL,            -- lowercase
    role           TEXT NOT NULL,            -- viewer | operator | admin
    password_hash  TEXT NOT NULL,            -- argon2id, PHC string
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT,
    CONSTRAINT users_pk PRIMARY KEY (id),
    CONSTRAINT users_email_uq UNIQUE (email),
    CONSTRAINT users_role_ck CHECK (role IN ('viewer', 'operator', 'admin'))
);

-- Only a digest of the session token is kept: a copy of this table signs nobody in.
CREATE TABLE sessions (
    token_digest  TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    CONSTRAINT sessions_pk PRIMARY KEY (token_digest)
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE sign_in_failures (
    id         TEXT NOT NULL,
    email      TEXT NOT NULL,
    client     TEXT NOT NULL,                -- the peer address
    at         BIGINT NOT NULL,
    CONSTRAINT sign_in_failures_pk PRIMARY KEY (id)
);
CREATE INDEX sign_in_failures_email_idx ON sign_in_failures (email, at);
CREATE INDEX sign_in_failures_client_idx ON sign_in_failures (client, at);

CREATE TABLE audit_log (
    id        TEXT NOT NULL,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,                 -- the user's email, or `cli`
    action    TEXT NOT NULL,                 -- e.g. meeting.won, invoice.paid
    subject   TEXT NOT NULL,                 -- the id acted on
    before    TEXT,                          -- JSON, as it stood
    after     TEXT,                          -- JSON, as it became
    CONSTRAINT audit_log_pk PRIMARY KEY (id)
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- The inbox reads person tasks (status `task`) oldest first.
CREATE INDEX messages_status_idx ON messages (status, sent_at);

-- The pipeline board pages by stage, newest move first, and a prospect's timeline reads
-- its events.
CREATE INDEX prospects_status_idx ON prospects (status, updated_at, id);
CREATE INDEX prospects_class_idx ON prospects (lead_class, updated_at, id);
CREATE INDEX events_subject_idx ON events (subject, occurred_at);
CREATE INDEX meetings_prospect_idx ON meetings (prospect_id);
