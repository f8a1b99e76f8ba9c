-- The tables the nine layers write.

CREATE TABLE prospects (
    id                  TEXT NOT NULL,      -- the source's stable id: a rerun updates, never duplicates
    name                TEXT NOT NULL,
    category            TEXT NOT NULL,
    location            TEXT NOT NULL,
    email               TEXT,
    phone               TEXT,
    website             TEXT,
    utc_offset_minutes  BIGINT NOT NULL,
    signals             TEXT NOT NULL,
    gbp_score           BIGINT NOT NULL,
    lead_class          TEXT NOT NULL,
    revenue_lost        BIGINT NOT NULL,    -- dollars a year
    opportunities       TEXT NOT NULL,
    first_period        TEXT NOT NULL,      -- the prospecting run that found it first
    status              TEXT NOT NULL,      -- new | pitched | contacted | replied | booked | client | stopped
    updated_at          BIGINT NOT NULL,
    CONSTRAINT prospects_pk PRIMARY KEY (id)
);
CREATE INDEX prospects_search_idx ON prospects (location, category);

CREATE TABLE pitches (
    id           TEXT NOT NULL,
    prospect_id  TEXT NOT NULL,
    channel      TEXT NOT NULL,
    tone         TEXT NOT NULL,
    variant      TEXT NOT NULL,
    subject      TEXT,
    body         TEXT NOT NULL,
    word_count   BIGINT NOT NULL,
    confidence   DOUBLE PRECISION NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT pitches_pk PRIMARY KEY (id),
    CONSTRAINT pitches_prospect_fk FOREIGN KEY (prospect_id) REFERENCES prospects (id),
    CONSTRAINT pitches_one_per_channel_uq UNIQUE (prospect_id, channel)
);

-- One row per sequence step. `status` moves pending → sending → sent | recorded, or to
-- skipped / deferred; a row left in `sending` by a dead worker becomes `unknown` and is
-- never sent again blindly.
CREATE TABLE messages (
    id           TEXT NOT NULL,
    prospect_id  TEXT NOT NULL,
    pitch_id     TEXT NOT NULL,
    step         BIGINT NOT NULL,
    channel      TEXT NOT NULL,
    mailbox      TEXT NOT NULL,
    status       TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    sent_at      BIGINT,
    sent_day     TEXT,                      -- the mailbox's day the send counts against
    message_id   TEXT,                      -- our RFC 5322 Message-ID
    headers      TEXT,
    body         TEXT,
    reason       TEXT,
    updated_at   BIGINT NOT NULL,
    CONSTRAINT messages_pk PRIMARY KEY (id),
    CONSTRAINT messages_step_uq UNIQUE (prospect_id, step)
);
CREATE INDEX messages_caps_idx ON messages (mailbox, channel, sent_day);

CREATE TABLE suppressions (
    address     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT suppressions_pk PRIMARY KEY (address)
);

CREATE TABLE meetings (
    id            TEXT NOT NULL,            -- from the Calendly invitee URI
    prospect_id   TEXT,
    pitch_variant TEXT,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    meeting_type  TEXT NOT NULL,
    status        TEXT NOT NULL,            -- scheduled | canceled
    rescheduled   BIGINT NOT NULL,
    start_at      BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CONSTRAINT meetings_pk PRIMARY KEY (id)
);

CREATE TABLE clients (
    id              TEXT NOT NULL,
    prospect_id     TEXT,
    client_name     TEXT NOT NULL,
    business_name   TEXT NOT NULL,
    email           TEXT NOT NULL,
    phone           TEXT,
    business_type   TEXT NOT NULL,
    billing_tier    TEXT NOT NULL,
    state           TEXT NOT NULL,
    gbp_score       BIGINT NOT NULL,
    started_at      BIGINT NOT NULL,
    live_at         BIGINT,
    canceled_at     BIGINT,
    CONSTRAINT clients_pk PRIMARY KEY (id)
);

CREATE TABLE tasks (
    id          TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    name        TEXT NOT NULL,
    priority    TEXT NOT NULL,
    depends_on  TEXT,
    due_at      BIGINT NOT NULL,
    done_at     BIGINT,
    CONSTRAINT tasks_pk PRIMARY KEY (id),
    CONSTRAINT tasks_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
);
CREATE INDEX tasks_due_idx ON tasks (due_at);

CREATE TABLE documents (
    id           TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    received_at  BIGINT,
    CONSTRAINT documents_pk PRIMARY KEY (id)
);

CREATE TABLE optimizations (
    id            TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    period        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    score_before  BIGINT NOT NULL,
    score_after   BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT optimizations_pk PRIMARY KEY (id)
);

CREATE TABLE posts (
    id              TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    scheduled_for   BIGINT NOT NULL,
    topic           TEXT NOT NULL,
    body            TEXT NOT NULL,
    CONSTRAINT posts_pk PRIMARY KEY (id)
);

CREATE TABLE reports (
    id            TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    report_type   TEXT NOT NULL,
    period_start  BIGINT NOT NULL,
    period_end    BIGINT NOT NULL,
    metrics       TEXT NOT NULL,
    html          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT reports_pk PRIMARY KEY (id)
);

CREATE TABLE invoices (
    id              TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    period          TEXT NOT NULL,
    lines           TEXT NOT NULL,
    subtotal_cents  BIGINT NOT NULL,
    tax_cents       BIGINT NOT NULL,
    total_cents     BIGINT NOT NULL,
    issued_at       BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    paid_at         BIGINT,
    CONSTRAINT invoices_pk PRIMARY KEY (id),
    CONSTRAINT invoices_one_per_period_uq UNIQUE (client_id, period)
);
CREATE INDEX invoices_due_idx ON invoices (due_at);

CREATE TABLE transactions (
    id            TEXT NOT NULL,
    kind          TEXT NOT NULL,            -- revenue | cost
    category      TEXT NOT NULL,
    client_id     TEXT,
    invoice_id    TEXT,
    amount_cents  BIGINT NOT NULL,
    occurred_at   BIGINT NOT NULL,
    CONSTRAINT transactions_pk PRIMARY KEY (id),
    CONSTRAINT transactions_kind_ck CHECK (kind IN ('revenue', 'cost'))
);
CREATE INDEX transactions_window_idx ON transactions (occurred_at);

CREATE TABLE insights (
    id           TEXT NOT NULL,
    source       TEXT NOT NULL,             -- reporting | feedback_loop
    period       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        DOUBLE PRECISION,
    target       DOUBLE PRECISION,
    details      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT insights_pk PRIMARY KEY (id)
);

-- Parameters layers 1–3 read, moved by the feedback loop; every change kept for rollback.
CREATE TABLE parameters (
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT parameters_pk PRIMARY KEY (name)
);

CREATE TABLE parameter_changes (
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    before_value    TEXT,
    after_value     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    changed_at      BIGINT NOT NULL,
    rolled_back_at  BIGINT,
    CONSTRAINT parameter_changes_pk PRIMARY KEY (id)
);
