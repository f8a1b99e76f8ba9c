//! The operator console at scale: a Postgres store filled with prospects and their
//! messages (1,000,000 and 10,000,000 in the full run), and each main page requested
//! through the console's router with a signed-in session, its server time's p99
//! measured. Paging is by key and counts are capped, so a page should not grow with
//! the tables.

use super::harness::{Sizes, on_fresh_database, prefix, purge, redis_url};
use super::report::{Row, row};
use crate::app;
use axum::body::Body;
use axum::http::{Request, header};
use cep_shared::vocabulary::Role;
use cep_shared::{Clock, Settings};
use std::time::Instant;
use tower::ServiceExt as _;

pub(super) async fn console(sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    on_fresh_database("console", |url| async move {
        console_in(&url, sizes, rows).await
    })
    .await
}

/// Prospects across every stage and class, and `per` messages each (a few people's
/// tasks and unknown outcomes among them), all written by the database itself.
async fn fill(pool: &sqlx::AnyPool, prospects: u64, messages: u64, now: i64) -> anyhow::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO prospects (id, name, category, location, email, phone, website, utc_offset_minutes,
                                signals, gbp_score, lead_class, revenue_lost, opportunities, first_period,
                                status, updated_at, coverage)
         SELECT 'p' || i, 'Business ' || i, (ARRAY['dental','hvac','legal','plumbing'])[1 + i % 4],
                (ARRAY['Miami, FL','Austin, TX','Denver, CO'])[1 + i % 3], 'owner' || i || '@example.com',
                NULL, NULL, -300, '{{}}', i % 100,
                (ARRAY['hot','warm','cold','not_qualified','needs_data'])[1 + i % 5], 50000, '[]',
                '2026-01-' || lpad((1 + i % 28)::text, 2, '0'),
                (ARRAY['new','pitched','contacted','contacted','replied','booked','client','lost','stopped'])[1 + i % 9],
                {now} - i * 1000, 0.9
           FROM generate_series(1, {prospects}) AS i"
    )))
    .execute(pool)
    .await?;
    let per = messages.div_ceil(prospects).max(1);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO messages (id, prospect_id, pitch_id, step, channel, mailbox, status, due_at, sent_at,
                               sent_day, message_id, headers, body, reason, updated_at)
         SELECT 'm' || i, 'p' || (1 + i / {per}), 'pitch', i % {per}, 'email', 'default',
                CASE WHEN i % 1000 = 0 THEN 'task' WHEN i % 1001 = 0 THEN 'unknown' ELSE 'sent' END,
                {now} - i, {now} - i, NULL, NULL, NULL, NULL, NULL, {now} - i
           FROM generate_series(0, {messages} - 1) AS i"
    )))
    .execute(pool)
    .await?;
    for table in ["prospects", "messages"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
            .execute(pool)
            .await?;
    }
    Ok(())
}

async fn console_in(url: &str, sizes: &Sizes, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let mut s = Settings::default();
    s.backends.database_url = Some(url.into());
    s.backends.redis_url = Some(redis_url()?);
    s.queue.key_prefix = prefix("console");
    let ctx = app::connect(s, Clock::System).await?;
    ctx.store.migrate().await?;
    let (prospects, messages) = sizes.console;
    eprintln!("bench: console: writing {prospects} prospects and {messages} messages…");
    fill(ctx.store.pool(), prospects, messages, ctx.now()).await?;
    let password = "a bench password long enough";
    cep_workers::console::users::add(&ctx, "bench@agency.example", Role::Admin, password).await?;
    let router = cep_workers::http::public_router(ctx.clone());
    let signed = router
        .clone()
        .oneshot(
            Request::post("/sign-in")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "email=bench%40agency.example&password={}",
                    password.replace(' ', "+")
                )))?,
        )
        .await?;
    let cookie = signed
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("the bench user could not sign in"))?
        .to_owned();
    let middle = format!("/prospects/p{}", prospects / 2);
    let pages = [
        "/inbox",
        "/pipeline",
        "/pipeline?stage=contacted&city=Miami%2C+FL",
        middle.as_str(),
        "/clients",
        "/money",
        "/coherence",
        "/fleet",
        "/audit",
    ];
    for page in pages {
        let mut times = Vec::with_capacity(sizes.page_requests);
        for i in 0..sizes.page_requests + 2 {
            let t = Instant::now();
            let r = router
                .clone()
                .oneshot(
                    Request::get(page)
                        .header(header::COOKIE, &cookie)
                        .body(Body::empty())?,
                )
                .await?;
            let status = r.status();
            axum::body::to_bytes(r.into_body(), usize::MAX).await?;
            anyhow::ensure!(status.is_success(), "GET {page} answered {status}");
            // The first two warm the connection pool and the caches.
            if i >= 2 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        let p99 = times[((times.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
        let shown = if page == middle {
            "/prospects/{id}"
        } else {
            page
        };
        rows.push(
            row(
                "console",
                &format!(
                    "GET {shown}, p99 of {} ({prospects} prospects, {messages} messages)",
                    times.len()
                ),
                p99,
                "ms",
                prospects,
            )
            .target("≤ 50 ms"),
        );
    }
    ctx.store.pool().close().await;
    purge(&ctx.queue).await
}
