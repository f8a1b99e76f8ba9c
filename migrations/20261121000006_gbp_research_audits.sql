-- The client's Business Profile location (`accounts/{a}/locations/{l}`), set with
-- `cep gbp-link`; posts remember when and as what they were published.
ALTER TABLE clients ADD COLUMN gbp_location TEXT;
ALTER TABLE posts ADD COLUMN published_at BIGINT;
ALTER TABLE posts ADD COLUMN gbp_post TEXT;

-- Every edit the optimization layer makes (or, in dry run, would make) on a profile:
-- one row per edit, so a retried run never posts twice.
CREATE TABLE gbp_edits (
    id          TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    location    TEXT NOT NULL,
    kind        TEXT NOT NULL,      -- profile | post | review_reply
    target      TEXT NOT NULL,      -- the field, post or review it touches
    request     TEXT NOT NULL,      -- the JSON body sent (or that would be)
    status      TEXT NOT NULL,      -- dry_run | applying | applied | unknown
    response    TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT gbp_edits_pk PRIMARY KEY (id)
);
CREATE INDEX gbp_edits_client_idx ON gbp_edits (client_id, created_at);

-- Research logs and website audits are looked up by what they are about.
ALTER TABLE research_logs ADD COLUMN subject TEXT;
CREATE INDEX research_logs_subject_idx ON research_logs (subject, created_at);
CREATE INDEX test_results_subject_idx ON test_results (subject, created_at);
