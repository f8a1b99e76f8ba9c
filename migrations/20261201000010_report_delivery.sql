-- A report's no-login links. The store keeps only the token's SHA-256: whoever reads the
-- table cannot open a report with it. A link works until it expires or is revoked.
CREATE TABLE report_links (
    id            TEXT NOT NULL,
    report_id     TEXT NOT NULL,
    token_digest  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoked_by    TEXT,
    CONSTRAINT report_links_pk PRIMARY KEY (id)
);
CREATE UNIQUE INDEX report_links_token_idx ON report_links (token_digest);
CREATE INDEX report_links_report_idx ON report_links (report_id, created_at);

-- Each email of a report to one recipient, claimed (`sending`) before it goes: a retry
-- finds the claim and never sends twice. sending | sent | dry_run | unknown | failed.
CREATE TABLE report_deliveries (
    id            TEXT NOT NULL,
    report_id     TEXT NOT NULL,
    round         BIGINT NOT NULL,
    recipient     TEXT NOT NULL,
    link_id       TEXT,
    status        TEXT NOT NULL,
    message_id    TEXT,
    detail        TEXT,
    requested_by  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT report_deliveries_pk PRIMARY KEY (id)
);
CREATE UNIQUE INDEX report_deliveries_once_idx ON report_deliveries (report_id, round, recipient);

-- Who receives a client's reports (comma-separated); none: the client's own email.
ALTER TABLE clients ADD COLUMN report_recipients TEXT;
