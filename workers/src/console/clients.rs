//! `GET /clients` and a client's page: its onboarding state and checklist, documents,
//! the profile score as its linked profile was read over time (with the signals and
//! coverage of the last reading), the edits proposed and applied, posts, reports with
//! the agency's notes, invoices and what it brings in a month.

use super::charts::{self, Point};
use super::layout::url_path;
use super::layout::{self, when};
use super::session::{Refusal, Signed};
use crate::{Ctx, JobError};
use axum::extract::{Path, State};
use axum::response::Response;
use cep_shared::format::dollars;
use cep_shared::signals::{ProfileSignals, Signal};
use cep_shared::vocabulary::Role;
use maud::html;

#[derive(sqlx::FromRow)]
struct Client {
    id: String,
    business_name: String,
    client_name: String,
    email: String,
    business_type: String,
    billing_tier: String,
    state: String,
    started_at: i64,
    live_at: Option<i64>,
    canceled_at: Option<i64>,
    gbp_location: Option<String>,
}

const CLIENT_COLUMNS: &str = "id, business_name, client_name, email, business_type, billing_tier, state, started_at, live_at, canceled_at, gbp_location";

/// What a client brings in a month: its tier's fee while it is a client.
fn mrr(ctx: &Ctx, c: &Client) -> i64 {
    match (
        c.canceled_at,
        ctx.settings.layers.finance.tier(&c.billing_tier),
    ) {
        (None, Some(t)) => t.monthly_cents,
        _ => 0,
    }
}

/// `GET /clients`.
pub async fn list(State(ctx): State<Ctx>, signed: Signed) -> Result<Response, Refusal> {
    let clients: Vec<Client> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY started_at DESC, id DESC LIMIT 500"
    )))
    .fetch_all(ctx.store.pool())
    .await
    .map_err(JobError::from)?;
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        @if clients.is_empty() { p { "No client yet: a meeting marked won makes one." } }
        @else {
            div.wrap { table {
                tr { th { "Business" } th { "Tier" } th { "State" } th { "MRR" } th { "Since" } }
                @for c in &clients {
                    tr {
                        td { a href=(format!("/clients/{}", url_path(&c.id))) { (c.business_name) } }
                        td { (c.billing_tier) }
                        td { (c.state) @if c.canceled_at.is_some() { " (canceled)" } }
                        td { (dollars(mrr(&ctx, c))) }
                        td { (when(c.started_at)) }
                    }
                }
            } }
        }
    };
    Ok(layout::page(
        signed.shown(),
        "/clients",
        "Clients",
        nav,
        body,
    ))
}

#[derive(sqlx::FromRow)]
struct Task {
    name: String,
    priority: String,
    due_at: i64,
    done_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Observation {
    observed_at: i64,
    score: i64,
    coverage: f64,
    signals: String,
}

#[derive(sqlx::FromRow)]
struct Edit {
    kind: String,
    target: String,
    status: String,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct Post {
    scheduled_for: i64,
    topic: String,
    approved_at: Option<i64>,
    published_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ReportRow {
    id: String,
    report_type: String,
    period_start: i64,
    period_end: i64,
    notes: Option<String>,
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    id: String,
    period: String,
    total_cents: i64,
    due_at: i64,
    paid_at: Option<i64>,
}

/// `GET /clients/{id}`.
pub async fn page(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let pool = ctx.store.pool();
    let c: Client = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1"
    )))
    .bind(&id)
    .fetch_optional(pool)
    .await
    .map_err(JobError::from)?
    .ok_or_else(|| JobError::Invalid(format!("no client `{id}`")))?;
    let tasks: Vec<Task> = sqlx::query_as(
        "SELECT name, priority, due_at, done_at FROM tasks WHERE client_id = $1 ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let documents: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT name, received_at FROM documents WHERE client_id = $1 ORDER BY name",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let observations: Vec<Observation> = sqlx::query_as(
        "SELECT observed_at, score, coverage, signals FROM profile_observations
          WHERE client_id = $1 ORDER BY observed_at DESC LIMIT 52",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let proposed: Vec<(String, String)> = sqlx::query_as(
        "SELECT period, kind FROM optimizations WHERE client_id = $1 ORDER BY created_at DESC LIMIT 50",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let edits: Vec<Edit> = sqlx::query_as(
        "SELECT kind, target, status, updated_at FROM gbp_edits WHERE client_id = $1
          ORDER BY updated_at DESC LIMIT 50",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let posts: Vec<Post> = sqlx::query_as(
        "SELECT scheduled_for, topic, approved_at, published_at FROM posts WHERE client_id = $1
          ORDER BY scheduled_for DESC LIMIT 24",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let reports: Vec<ReportRow> = sqlx::query_as(
        "SELECT id, report_type, period_start, period_end, notes FROM reports WHERE client_id = $1
          ORDER BY period_start DESC LIMIT 24",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let invoices: Vec<InvoiceRow> = sqlx::query_as(
        "SELECT id, period, total_cents, due_at, paid_at FROM invoices WHERE client_id = $1
          ORDER BY period DESC LIMIT 24",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let points: Vec<Point> = observations
        .iter()
        .rev()
        .map(|o| Point {
            label: cep_shared::clock::from_millis(o.observed_at)
                .format("%m-%d")
                .to_string(),
            value: Some(o.score as f64),
            partial: o.coverage < 1.0,
        })
        .collect();
    let acts = signed.user.role >= Role::Operator;
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        p.muted {
            (c.client_name) " · " (c.email) " · " (c.business_type) " · " (c.billing_tier)
            " · " (dollars(mrr(&ctx, &c))) " a month · since " (when(c.started_at))
            @if let Some(l) = c.live_at { " · live " (when(l)) }
            @if let Some(x) = c.canceled_at { " · canceled " (when(x)) }
        }
        h2 { "Onboarding: " (c.state) }
        div.wrap { table {
            tr { th { "Task" } th { "Priority" } th { "Due" } th { "Done" } }
            @for t in &tasks {
                tr { td { (t.name) } td { (t.priority) } td { (when(t.due_at)) }
                    td { @match t.done_at { Some(d) => (when(d)), None => span.muted { "open" } } } }
            }
        } }
        @if !documents.is_empty() {
            p { "Documents: "
                @for (i, (name, received)) in documents.iter().enumerate() {
                    @if i > 0 { ", " }
                    (name) " " span.muted { @if received.is_some() { "(received)" } @else { "(owed)" } }
                }
            }
        }
        h2 { "Profile" }
        @match &c.gbp_location {
            None => p { "No Business Profile linked (`cep gbp-link`): its score is not measured, and none is shown." },
            Some(loc) => p.muted { "Linked to " code { (loc) } },
        }
        @if let Some(last) = observations.first() {
            p { "Last read " (when(last.observed_at)) ": " strong { (last.score) } " of 100 over signals carrying "
                (format!("{:.0}", last.coverage * 100.0)) " % of the points." }
            (signal_table(&last.signals))
            (charts::line("Measured profile score", &points, &[(ctx.settings.targets.gbp_score, "target")], Some(100.0), |v| format!("{v:.0}")))
        }
        h2 { "Edits" }
        @if edits.is_empty() && proposed.is_empty() { p.muted { "None yet." } }
        @if !edits.is_empty() {
            div.wrap { table {
                tr { th { "Edit" } th { "On" } th { "Status" } th { "When" } }
                @for e in &edits { tr { td { (e.kind) } td { (e.target) } td { (e.status) } td { (when(e.updated_at)) } } }
            } }
        }
        @if !proposed.is_empty() {
            p { "Proposed by the weekly runs: "
                @for (i, (period, kind)) in proposed.iter().enumerate() { @if i > 0 { ", " } (kind) " (" (period) ")" } }
        }
        h2 { "Posts" }
        @if posts.is_empty() { p.muted { "None planned." } }
        @else {
            div.wrap { table {
                tr { th { "For" } th { "Topic" } th { "State" } }
                @for p in &posts {
                    tr { td { (when(p.scheduled_for)) } td { (p.topic) }
                        td { @if p.published_at.is_some() { "published" } @else if p.approved_at.is_some() { "approved" } @else { "draft" } } }
                }
            } }
        }
        h2 { "Reports" }
        @if reports.is_empty() { p.muted { "None yet." } }
        @else {
            ul { @for r in &reports {
                li { a href=(format!("/reports/{}", url_path(&r.id))) { (r.report_type) " report, " (when(r.period_start)) " to " (when(r.period_end)) }
                    @if r.notes.is_some() { " · with notes" } }
            } }
        }
        h2 { "Invoices" }
        @if invoices.is_empty() { p.muted { "None issued yet." } }
        @else {
            div.wrap { table {
                tr { th { "Period" } th { "Total" } th { "Due" } th { "Paid" } }
                @for i in &invoices {
                    tr id=(format!("invoice-{}", i.id)) {
                        td { (i.period) } td { (dollars(i.total_cents)) } td { (when(i.due_at)) }
                        td { @match i.paid_at {
                            Some(at) => (when(at)),
                            None if acts => {
                                form.inline method="post" action=(format!("/invoices/{}/paid", url_path(&i.id))) {
                                    input type="hidden" name="csrf" value=(signed.csrf);
                                    button { "Mark paid" }
                                }
                            }
                            None => span.muted { "unpaid" },
                        } }
                    }
                }
            } }
        }
    };
    Ok(layout::page(
        signed.shown(),
        "/clients",
        &c.business_name,
        nav,
        body,
    ))
}

fn signal_table(json: &str) -> maud::Markup {
    let s: ProfileSignals = serde_json::from_str(json).unwrap_or_default();
    html! {
        div.wrap { table {
            tr { th { "Signal" } th { "Value" } }
            @for signal in Signal::ALL {
                tr { td { (signal) } td { @match s.shown(*signal) {
                    Some(v) => (v), None => span.muted { "unknown" } } } }
            }
        } }
    }
}
