//! `GET /coherence`: Φ_sync over the stored periods with the status thresholds as bands
//! and partial periods marked, each container's health now, the red flags, the feedback
//! loop's insights and its parameter changes, each with a rollback (operator).

use super::audit;
use super::charts::{self, Point};
use super::layout::{self, when};
use super::session::{CsrfForm, Refusal, Signed};
use crate::layers::params;
use crate::{Ctx, JobError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use cep_shared::phi::Coherence;
use cep_shared::vocabulary::Role;
use maud::html;
use serde_json::json;

/// The most periods the chart shows.
const PERIODS: i64 = 90;

#[derive(sqlx::FromRow)]
struct Stored {
    computed_at: i64,
    details: String,
}

#[derive(sqlx::FromRow)]
struct Change {
    id: String,
    name: String,
    before_value: Option<String>,
    after_value: String,
    reason: String,
    changed_at: i64,
    rolled_back_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Insight {
    period: String,
    metric: String,
    value: Option<f64>,
    target: Option<f64>,
    details: String,
}

/// `GET /coherence`.
pub async fn page(State(ctx): State<Ctx>, signed: Signed) -> Result<Response, Refusal> {
    let pool = ctx.store.pool();
    let mut stored: Vec<Stored> = sqlx::query_as(
        "SELECT computed_at, details FROM coherence_metrics ORDER BY computed_at DESC, id DESC LIMIT $1",
    )
    .bind(PERIODS)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    stored.reverse();
    let series: Vec<(i64, Coherence)> = stored
        .iter()
        .filter_map(|s| Some((s.computed_at, serde_json::from_str(&s.details).ok()?)))
        .collect();
    let points: Vec<Point> = series
        .iter()
        .map(|(at, c)| Point {
            label: cep_shared::clock::from_millis(*at)
                .format("%m-%d")
                .to_string(),
            value: c.phi_sync,
            partial: !c.missing.is_empty(),
        })
        .collect();
    let t = &ctx.settings.cep.phi_thresholds;
    let bands: Vec<(f64, &str)> = t
        .ascending()
        .iter()
        .map(|(s, v)| (*v, s.as_str()))
        .collect();
    let changes: Vec<Change> = sqlx::query_as(
        "SELECT id, name, before_value, after_value, reason, changed_at, rolled_back_at
           FROM parameter_changes ORDER BY changed_at DESC, id DESC LIMIT 50",
    )
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let insights: Vec<Insight> = sqlx::query_as(
        "SELECT period, metric, value, target, details FROM insights
          WHERE source = 'feedback_loop' ORDER BY created_at DESC, id DESC LIMIT 30",
    )
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let latest = series.last();
    let acts = signed.user.role >= Role::Operator;
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        @match latest {
            Some((at, c)) => {
                p { "Φ_sync " strong { (c.shown()) } ", status " strong { (c.status) } ", on " (when(*at)) }
                div.wrap { table {
                    tr { th { "Container" } th { "Health" } th { "Conversion score" } th { "Efficiency score" } }
                    @for h in &c.containers {
                        tr {
                            td { (h.container) }
                            td { (opt(h.health)) }
                            td { (opt(h.conversion_score)) }
                            td { (opt(h.efficiency_score)) }
                        }
                    }
                } }
                @if !c.red_flags.is_empty() {
                    h2 { "Red flags" }
                    ul { @for f in &c.red_flags { li { (f) } } }
                }
            }
            None => p { "No Φ_sync computed yet (the aggregation runs hourly; `cep aggregate` runs it now)." }
        }
        (charts::line("Φ_sync by period", &points, &bands, Some(1.0), |v| format!("{v:.2}")))
        h2 { "Parameter changes" }
        @if changes.is_empty() { p.muted { "The feedback loop has changed nothing." } }
        @else {
            div.wrap { table {
                tr { th { "When" } th { "Parameter" } th { "From → to" } th { "Why" } th { "" } }
                @for ch in &changes {
                    tr id=(format!("change-{}", ch.id)) {
                        td { (when(ch.changed_at)) }
                        td { code { (ch.name) } }
                        td { (ch.before_value.as_deref().unwrap_or("default")) " → " (ch.after_value) }
                        td { (ch.reason) }
                        td {
                            @if let Some(at) = ch.rolled_back_at { span.muted { "rolled back " (when(at)) } }
                            @else if acts {
                                form.inline method="post" action=(format!("/changes/{}/rollback", super::layout::url_path(&ch.id))) {
                                    input type="hidden" name="csrf" value=(signed.csrf);
                                    button { "Roll back" }
                                }
                            }
                        }
                    }
                }
            } }
        }
        h2 { "Insights" }
        @if insights.is_empty() { p.muted { "None yet." } }
        @else {
            div.wrap { table {
                tr { th { "Period" } th { "Metric" } th { "Value" } th { "Target" } th { "Detail" } }
                @for i in &insights {
                    tr { td { (i.period) } td { (i.metric) } td { (opt(i.value)) } td { (opt(i.target)) } td { (i.details) } }
                }
            } }
        }
    };
    Ok(layout::page(
        signed.shown(),
        "/coherence",
        "Coherence",
        nav,
        body,
    ))
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "no data".into(), |v| format!("{v:.3}"))
}

/// `POST /changes/{id}/rollback`: the parameter back to its value before the change.
pub async fn rollback(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let name = params::rollback(&ctx, &id).await?;
    audit::record(
        &ctx,
        &signed.user.email,
        "parameter.rollback",
        &id,
        Some(json!({ "parameter": name, "rolled_back": false })),
        Some(json!({ "parameter": name, "rolled_back": true })),
    )
    .await?;
    Ok(Redirect::to("/coherence").into_response())
}
