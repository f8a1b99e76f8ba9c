-- The six tables of the seed architecture. Portable SQL: runs on SQLite (embedded
-- default) and Postgres (fleet). Times are unix milliseconds (BIGINT), documents JSON
-- text, money integer cents.

CREATE TABLE layers (
    name        TEXT NOT NULL,
    number      BIGINT NOT NULL,
    container   TEXT,               -- NULL for the feedback loop, which reads all three
    queue       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT layers_pk PRIMARY KEY (name)
);

CREATE TABLE research_logs (
    id          TEXT NOT NULL,
    layer       TEXT NOT NULL,
    query       TEXT NOT NULL,
    result      TEXT NOT NULL,
    citations   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT research_logs_pk PRIMARY KEY (id)
);

CREATE TABLE coherence_metrics (
    id                 TEXT NOT NULL,
    computed_at        BIGINT NOT NULL,
    phi_sync           DOUBLE PRECISION,   -- NULL: no container had data
    status             TEXT NOT NULL,
    sales_health       DOUBLE PRECISION,
    operations_health  DOUBLE PRECISION,
    finance_health     DOUBLE PRECISION,
    details            TEXT NOT NULL,      -- inputs, missing containers, red flags
    CONSTRAINT coherence_metrics_pk PRIMARY KEY (id)
);
CREATE INDEX coherence_metrics_computed_at_idx ON coherence_metrics (computed_at);

-- Business events of the containers; the sales and operations ratios count these.
CREATE TABLE events (
    id           TEXT NOT NULL,         -- derived from what happened, so a retry inserts nothing
    container    TEXT NOT NULL,
    layer        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    data         TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    CONSTRAINT events_pk PRIMARY KEY (id)
);
CREATE INDEX events_window_idx ON events (container, kind, occurred_at);

CREATE TABLE architectures (
    id          TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    document    TEXT NOT NULL,
    CONSTRAINT architectures_pk PRIMARY KEY (id)
);

CREATE TABLE test_results (
    id               TEXT NOT NULL,
    architecture_id  TEXT,
    subject          TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    details          TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    CONSTRAINT test_results_pk PRIMARY KEY (id),
    CONSTRAINT test_results_architecture_fk FOREIGN KEY (architecture_id) REFERENCES architectures (id)
);

-- Every job that ended, once: the error rate of a container is failed ÷ ended here.
CREATE TABLE job_outcomes (
    job_id       TEXT NOT NULL,
    queue        TEXT NOT NULL,
    container    TEXT,
    outcome      TEXT NOT NULL,          -- succeeded | failed
    attempts     BIGINT NOT NULL,
    error        TEXT,
    finished_at  BIGINT NOT NULL,
    CONSTRAINT job_outcomes_pk PRIMARY KEY (job_id),
    CONSTRAINT job_outcomes_outcome_ck CHECK (outcome IN ('succeeded', 'failed'))
);
-- The aggregation reads one window per container; this keeps its cost on the window.
CREATE INDEX job_outcomes_window_idx ON job_outcomes (container, finished_at);
