-- What a linked profile showed when the weekly run read it (business rules, revision 2:
-- the score is measured, not added). `gain` is the score's change since the client's
-- observation before (NULL for the first).
CREATE TABLE profile_observations (
    id           TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    observed_at  BIGINT NOT NULL,
    score        BIGINT NOT NULL,
    coverage     DOUBLE PRECISION NOT NULL,
    gain         BIGINT,
    signals      TEXT NOT NULL,
    CONSTRAINT profile_observations_pk PRIMARY KEY (id)
);
CREATE INDEX profile_observations_client_idx ON profile_observations (client_id, observed_at);
