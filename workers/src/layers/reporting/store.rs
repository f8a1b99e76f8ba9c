//! Reporting's SQL: the previous report's metrics, what a client's and the agency's
//! numbers were over a period, and a report with its insights.

use super::rules::Report;
use crate::layers::finance;
use crate::{Ctx, JobError};
use cep_shared::clock::DAY;
use cep_shared::ids::stable_id;
use cep_shared::vocabulary::EventKind;
use std::collections::BTreeMap;

/// Clients active at some point of `[from, now)`.
pub async fn clients(ctx: &Ctx, from: i64, now: i64) -> Result<Vec<String>, JobError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM clients WHERE started_at < $1 AND (canceled_at IS NULL OR canceled_at >= $2) ORDER BY id",
    )
    .bind(now)
    .bind(from)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The metrics a stored report recorded; empty when there is no such report.
pub async fn metrics_of(ctx: &Ctx, report_id: &str) -> Result<BTreeMap<String, f64>, JobError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT metrics FROM reports WHERE id = $1")
        .bind(report_id)
        .fetch_optional(ctx.store.pool())
        .await?;
    match row {
        Some((json,)) => {
            let ms: Vec<super::rules::Metric> = serde_json::from_str(&json)?;
            Ok(ms.into_iter().map(|m| (m.name, m.value)).collect())
        }
        None => Ok(BTreeMap::new()),
    }
}

/// A client's linked Business Profile location, if any.
pub async fn location(ctx: &Ctx, client_id: &str) -> Result<Option<String>, JobError> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT gbp_location FROM clients WHERE id = $1")
            .bind(client_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    Ok(row.and_then(|(l,)| l))
}

/// A client's name and its metric values over `[from, to)`.
pub async fn client_values(
    ctx: &Ctx,
    client_id: &str,
    from: i64,
    to: i64,
) -> Result<(String, Vec<(String, f64)>), JobError> {
    let pool = ctx.store.pool();
    type Row = (String, i64, i64, Option<i64>, Option<String>);
    let (name, score, started, live, prospect): Row = sqlx::query_as(
        "SELECT business_name, gbp_score, started_at, live_at, prospect_id FROM clients WHERE id = $1",
    )
    .bind(client_id)
    .fetch_one(pool)
    .await?;
    let (posts,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM posts WHERE client_id = $1 AND scheduled_for >= $2 AND scheduled_for < $3",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    // The score as the prospecting scan found it, then as runs recorded it; a client
    // sold outside the pipeline has none until its profile is read.
    let (observed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM profile_observations WHERE client_id = $1")
            .bind(client_id)
            .fetch_one(pool)
            .await?;
    let known = prospect.is_some() || observed > 0;
    let mut values = Vec::new();
    if known {
        values.push(("gbp_score".to_string(), score as f64));
    }
    values.push(("posts_scheduled".into(), posts as f64));
    // What the linked profile showed when it was read in the period: the score before
    // and after, and the measured gain. Nothing observed, nothing claimed (a proposal
    // gains nothing; business rules, revision 2).
    if let Some((gain, before, after)) =
        crate::layers::optimization::store::measured(ctx, client_id, from, to).await?
    {
        values.push(("observed_score_before".into(), before as f64));
        values.push(("observed_score_after".into(), after as f64));
        if let Some(gain) = gain {
            let r = &ctx.settings.layers.optimization;
            values.push(("score_gain".into(), gain as f64));
            values.push((
                "visibility_gain".into(),
                crate::layers::optimization::visibility_gain(gain, r),
            ));
        }
    }
    if let Some(live) = live {
        values.push((
            "onboarding_days".into(),
            (live - started) as f64 / DAY as f64,
        ));
    }
    Ok((name, values))
}

/// The agency's pipeline and money over `[from, to)`.
pub async fn agency_values(ctx: &Ctx, from: i64, to: i64) -> Result<Vec<(String, f64)>, JobError> {
    let s = &ctx.store;
    let found = s.count_events(EventKind::ProspectFound, from, to).await? as f64;
    let contacted = s.count_events(EventKind::Contacted, from, to).await? as f64;
    let replied = s.count_events(EventKind::Replied, from, to).await? as f64;
    let bookings = (s.count_events(EventKind::Booked, from, to).await?
        - s.count_events(EventKind::Canceled, from, to).await?)
        .max(0) as f64;
    let m = finance::metrics(ctx, from, to).await?;
    let mut v = vec![
        ("prospects_found".to_string(), found),
        ("contacted".into(), contacted),
        ("replied".into(), replied),
        ("bookings".into(), bookings),
    ];
    if contacted > 0.0 {
        v.push(("conversion_percent".into(), bookings / contacted * 100.0));
    }
    // Meetings that started in the period, and what came of them.
    let meetings = crate::layers::feedback_loop::measure::meeting_outcomes(ctx, from, to).await?;
    v.push(("meetings_held".into(), meetings.held as f64));
    v.push(("no_shows".into(), meetings.no_show as f64));
    if let (Some(rate), _) = meetings.show_rate() {
        v.push(("show_rate_percent".into(), rate * 100.0));
    }
    v.push(("meetings_won".into(), meetings.won as f64));
    if let (Some(rate), _) = meetings.close_rate() {
        v.push(("close_rate_percent".into(), rate * 100.0));
    }
    v.push(("new_clients".into(), m.new_clients as f64));
    if let Some(cac) = m.cac_cents {
        v.push(("acquisition_cost".into(), cac as f64 / 100.0));
    }
    v.push(("revenue".into(), m.revenue_cents as f64 / 100.0));
    v.push(("mrr".into(), m.mrr_cents as f64 / 100.0));
    v.push(("canceled_clients".into(), m.canceled_clients as f64));
    if let Some(churn) = m.churn_rate {
        v.push(("churn_percent".into(), churn * 100.0));
    }
    Ok(v)
}

/// Φ_sync as last computed in `[from, to)`, as a person reads it: partial when a
/// container had no data, "no data" when nothing was computed.
pub async fn coherence(ctx: &Ctx, from: i64, to: i64) -> Result<String, JobError> {
    type Row = (
        i64,
        Option<f64>,
        String,
        Option<f64>,
        Option<f64>,
        Option<f64>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT computed_at, phi_sync, status, sales_health, operations_health, finance_health
           FROM coherence_metrics WHERE computed_at >= $1 AND computed_at < $2
          ORDER BY computed_at DESC, id LIMIT 1",
    )
    .bind(from)
    .bind(to)
    .fetch_optional(ctx.store.pool())
    .await?;
    let Some((at, phi, status, sales, operations, finance)) = row else {
        return Ok("no data: Φ_sync was not computed in this period".into());
    };
    use cep_shared::Container;
    let missing: Vec<Container> = [
        (Container::Sales, sales),
        (Container::Operations, operations),
        (Container::Finance, finance),
    ]
    .into_iter()
    .filter(|(_, h)| h.is_none())
    .map(|(c, _)| c)
    .collect();
    Ok(format!(
        "{}, status {status}, on {}",
        cep_shared::phi::shown(phi, &missing),
        cep_shared::clock::from_millis(at).format("%Y-%m-%d")
    ))
}

/// A report and its insights, in one transaction (kept as first written).
pub async fn save(ctx: &Ctx, period: &str, report: &Report, html: &str) -> Result<(), JobError> {
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO reports (id, client_id, report_type, period_start, period_end, metrics, html, created_at)
         VALUES ($1, $2, $8, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET period_end = $4, metrics = $5, html = $6, created_at = $7",
    )
    .bind(&report.id)
    .bind(&report.client_id)
    .bind(report.period_start)
    .bind(report.period_end)
    .bind(serde_json::to_string(&report.metrics)?)
    .bind(html)
    .bind(now)
    .bind(&report.report_type)
    .execute(&mut *tx)
    .await?;
    for text in &report.insights {
        sqlx::query(
            "INSERT INTO insights (id, source, period, subject, metric, details, created_at)
             VALUES ($1, 'reporting', $2, $3, 'report', $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(stable_id(
            "ins",
            &["reporting", period, &report.client_id, text],
        ))
        .bind(period)
        .bind(&report.client_id)
        .bind(text)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
