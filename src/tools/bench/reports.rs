//! A month's client reports at scale: a Postgres store with `report_clients` linked
//! clients, each with a year of daily performance, reviews, profile readings, posts and
//! documents owed; the month's close writes every client's report (HTML), then each is
//! printed as a PDF through the bounded pool of Chromium tabs.

use super::harness::{Sizes, on_fresh_database, prefix, purge, redis_url};
use super::report::{Row, row};
use crate::app;
use cep_shared::jobs::ReportingJob;
use cep_shared::{Clock, Settings};
use futures::StreamExt as _;
use std::time::Instant;

/// The month reported, and the instant the close runs (after its figures settled).
const PERIOD: &str = "2026-03";

pub(super) async fn reports(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    on_fresh_database("reports", |url| async move {
        reports_in(&url, sizes, rows).await
    })
    .await
}

/// Clients, and a year of their profiles' days, written by the database itself.
async fn fill(pool: &sqlx::AnyPool, clients: u64) -> anyhow::Result<()> {
    let day = "86400000::bigint";
    let start = 1_735_689_600_000i64; // 2025-01-01
    let statements = [
        format!(
            "INSERT INTO clients (id, prospect_id, client_name, business_name, email, phone, business_type,
                                  billing_tier, state, gbp_score, started_at, gbp_location)
             SELECT 'c' || i, NULL, 'Owner ' || i, 'Business ' || i, 'owner' || i || '@example.com', NULL,
                    (ARRAY['dental','hvac','legal','plumbing'])[1 + i % 4], 'professional', 'live', 60,
                    {start}, 'accounts/1/locations/' || i
               FROM generate_series(1, {clients}) AS i"
        ),
        format!(
            "INSERT INTO profile_metrics (client_id, day, metric, value, fetched_at)
             SELECT 'c' || i, to_char(DATE '2025-01-01' + d, 'YYYY-MM-DD'), m,
                    (i * 7 + d * 13 + length(m)) % 60, 0
               FROM generate_series(1, {clients}) AS i, generate_series(0, 454) AS d,
                    unnest(ARRAY['BUSINESS_IMPRESSIONS_DESKTOP_MAPS','BUSINESS_IMPRESSIONS_DESKTOP_SEARCH',
                                 'BUSINESS_IMPRESSIONS_MOBILE_MAPS','BUSINESS_IMPRESSIONS_MOBILE_SEARCH',
                                 'CALL_CLICKS','WEBSITE_CLICKS','BUSINESS_DIRECTION_REQUESTS']) AS m"
        ),
        format!(
            "INSERT INTO profile_keywords (client_id, month, keyword, impressions, below)
             SELECT 'c' || i, '{PERIOD}', k, 100 + i % 50, NULL
               FROM generate_series(1, {clients}) AS i, unnest(ARRAY['near me','best','open now']) AS k"
        ),
        format!(
            "INSERT INTO profile_reviews (client_id, review_id, stars, created_at, replied_at, seen_at)
             SELECT 'c' || i, 'r' || r, 1 + (i + r) % 5, {start} + r * 20 * {day},
                    CASE WHEN r % 3 = 0 THEN NULL ELSE {start} + r * 20 * {day} + {day} END, 0
               FROM generate_series(1, {clients}) AS i, generate_series(1, 22) AS r"
        ),
        format!(
            "INSERT INTO profile_observations (id, client_id, observed_at, score, coverage, gain, signals)
             SELECT 'o' || i || '-' || w, 'c' || i, {start} + w * 7 * {day}, 50 + w % 30, 1.0, NULL,
                    '{{\"has_profile\":true,\"claimed\":true,\"photos\":4,\"reviews\":12,\"rating\":4.4,\"posted_last_30_days\":true,\"services_listed\":false,\"hours_listed\":true,\"website_linked\":true,\"description\":true,\"owner_reply_share\":0.6}}'
               FROM generate_series(1, {clients}) AS i, generate_series(0, 64) AS w"
        ),
        format!(
            "INSERT INTO posts (id, client_id, scheduled_for, topic, body, published_at, approved_at)
             SELECT 'p' || i || '-' || w, 'c' || i, {start} + w * 7 * {day}, 'tip', 'A weekly tip for our customers.',
                    CASE WHEN w < 64 THEN {start} + w * 7 * {day} END, {start}
               FROM generate_series(1, {clients}) AS i, generate_series(0, 68) AS w"
        ),
        format!(
            "INSERT INTO documents (id, client_id, name, received_at)
             SELECT 'd' || i, 'c' || i, 'insurance', NULL FROM generate_series(1, {clients}) AS i"
        ),
    ];
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    }
    for table in [
        "clients",
        "profile_metrics",
        "profile_reviews",
        "profile_observations",
        "posts",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
            .execute(pool)
            .await?;
    }
    Ok(())
}

async fn reports_in(url: &str, sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    use chrono::TimeZone;
    let data = std::env::temp_dir().join(prefix("reports"));
    let mut s = Settings::default();
    s.backends.database_url = Some(url.into());
    s.backends.redis_url = Some(redis_url()?);
    s.queue.key_prefix = prefix("reports");
    s.data_dir = data.clone();
    s.reports.email = false;
    let clock = Clock::simulated(chrono::Utc.with_ymd_and_hms(2026, 4, 5, 9, 0, 0).unwrap());
    let ctx = app::connect(s, clock).await?;
    ctx.store.migrate().await?;
    let n = sizes.report_clients;
    eprintln!("bench: reports: writing {n} clients with a year of their profiles…");
    fill(ctx.store.pool(), n).await?;

    let t = Instant::now();
    let written = cep_workers::layers::reporting::handle(&ctx, ReportingJob::new(PERIOD)).await?;
    let html_s = t.elapsed().as_secs_f64();
    let clients = written.reports.len() as u64 - 1;
    anyhow::ensure!(clients == n, "{clients} client reports written of {n}");
    rows.push(row(
        "reports",
        &format!("the month's close: every client's report written (HTML), {n} clients"),
        html_s,
        "s",
        n,
    ));
    rows.push(row(
        "reports",
        "per client report (HTML)",
        html_s * 1000.0 / n as f64,
        "ms",
        n,
    ));

    let pages: Vec<(String,)> =
        sqlx::query_as("SELECT html FROM reports WHERE client_id <> 'agency' ORDER BY id")
            .fetch_all(ctx.store.pool())
            .await?;
    let tabs = ctx.settings.reports.pdf_tabs as usize;
    let t = Instant::now();
    let printed: Vec<anyhow::Result<usize>> = futures::stream::iter(pages)
        .map(|(html,)| {
            let ctx = ctx.clone();
            async move { Ok(ctx.pdf.print(&html).await?.len()) }
        })
        .buffer_unordered(tabs)
        .collect()
        .await;
    let pdf_s = t.elapsed().as_secs_f64();
    let bytes: usize = printed
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?
        .iter()
        .sum();
    rows.push(row(
        "reports",
        &format!("every client's report printed as a PDF, {tabs} Chromium tabs, {n} clients"),
        pdf_s,
        "s",
        n,
    ));
    rows.push(row(
        "reports",
        &format!(
            "per PDF ({tabs} tabs at once; {:.0} KiB on average)",
            bytes as f64 / n as f64 / 1024.0
        ),
        pdf_s * 1000.0 / n as f64,
        "ms",
        n,
    ));
    ctx.store.pool().close().await;
    let _ = std::fs::remove_dir_all(&data);
    purge(&ctx.queue).await
}
