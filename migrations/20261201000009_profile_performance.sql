-- A linked profile's performance as Google's Performance API reports it: one row per
-- day and daily metric (the API leaves a zero out; a day it answered for is stored
-- whole, zeros included, so a missing row means "not read", never zero).
CREATE TABLE profile_metrics (
    client_id   TEXT NOT NULL,
    day         TEXT NOT NULL,          -- YYYY-MM-DD
    metric      TEXT NOT NULL,          -- CALL_CLICKS, WEBSITE_CLICKS, …
    value       BIGINT NOT NULL,
    fetched_at  BIGINT NOT NULL,
    CONSTRAINT profile_metrics_pk PRIMARY KEY (client_id, day, metric)
);

-- Searches that showed the profile, per month: a count, or "fewer than" a threshold
-- where Google withholds small numbers.
CREATE TABLE profile_keywords (
    client_id   TEXT NOT NULL,
    month       TEXT NOT NULL,          -- YYYY-MM
    keyword     TEXT NOT NULL,
    impressions BIGINT,
    below       BIGINT,
    CONSTRAINT profile_keywords_pk PRIMARY KEY (client_id, month, keyword)
);

-- The profile's reviews as the weekly reading saw them: stars and dates, no text.
CREATE TABLE profile_reviews (
    client_id   TEXT NOT NULL,
    review_id   TEXT NOT NULL,
    stars       BIGINT,
    created_at  BIGINT NOT NULL,
    replied_at  BIGINT,
    seen_at     BIGINT NOT NULL,
    CONSTRAINT profile_reviews_pk PRIMARY KEY (client_id, review_id)
);
CREATE INDEX profile_reviews_created_idx ON profile_reviews (client_id, created_at);
