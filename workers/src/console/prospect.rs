//! `GET /prospects/{id}`: one prospect whole — its score with each signal (known or
//! unknown) and their coverage, opportunities, pitches per channel, every message with
//! its status and headers, meetings, the website audit with its screenshot, research
//! facts with their sources, and what happened when.

use super::layout::url_path;
use super::layout::{self, when};
use super::session::{Refusal, Signed};
use crate::{Ctx, JobError};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cep_shared::signals::{ProfileSignals, Signal};
use maud::{Markup, html};

#[derive(sqlx::FromRow)]
struct Prospect {
    id: String,
    name: String,
    category: String,
    location: String,
    email: Option<String>,
    phone: Option<String>,
    website: Option<String>,
    signals: String,
    gbp_score: i64,
    coverage: f64,
    lead_class: String,
    revenue_lost: i64,
    opportunities: String,
    first_period: String,
    status: String,
}

#[derive(sqlx::FromRow)]
struct Pitch {
    channel: String,
    variant: String,
    tone: String,
    writer: String,
    subject: Option<String>,
    body: String,
    confidence: f64,
}

#[derive(sqlx::FromRow)]
struct Message {
    step: i64,
    channel: String,
    status: String,
    due_at: i64,
    sent_at: Option<i64>,
    address: Option<String>,
    headers: Option<String>,
    body: Option<String>,
    reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Meeting {
    id: String,
    status: String,
    start_at: Option<i64>,
    name: String,
    tier: Option<String>,
    lost_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Fact {
    query: String,
    result: String,
    citations: String,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct Event {
    kind: String,
    layer: String,
    occurred_at: i64,
}

/// The most events the timeline shows.
const EVENTS: i64 = 200;

async fn prospect(ctx: &Ctx, id: &str) -> Result<Prospect, JobError> {
    sqlx::query_as(
        "SELECT id, name, category, location, email, phone, website, signals, gbp_score, coverage,
                lead_class, revenue_lost, opportunities, first_period, status
           FROM prospects WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(ctx.store.pool())
    .await?
    .ok_or_else(|| JobError::Invalid(format!("no prospect `{id}`")))
}

/// `GET /prospects/{id}`.
pub async fn page(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let p = prospect(&ctx, &id).await?;
    let pool = ctx.store.pool();
    let pitches: Vec<Pitch> = sqlx::query_as(
        "SELECT channel, variant, tone, writer, subject, body, confidence FROM pitches
          WHERE prospect_id = $1 ORDER BY channel",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let messages: Vec<Message> = sqlx::query_as(
        "SELECT step, channel, status, due_at, sent_at, address, headers, body, reason FROM messages
          WHERE prospect_id = $1 ORDER BY step",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let meetings: Vec<Meeting> = sqlx::query_as(
        "SELECT id, status, start_at, name, tier, lost_reason FROM meetings
          WHERE prospect_id = $1 ORDER BY created_at",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let facts: Vec<Fact> = sqlx::query_as(
        "SELECT query, result, citations, created_at FROM research_logs
          WHERE subject = $1 ORDER BY created_at DESC LIMIT 20",
    )
    .bind(&id)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let audit: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT outcome, details, created_at FROM test_results
          WHERE subject = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&id)
    .fetch_optional(pool)
    .await
    .map_err(JobError::from)?;
    let events: Vec<Event> = sqlx::query_as(
        "SELECT kind, layer, occurred_at FROM events
          WHERE subject = $1
             OR subject IN (SELECT id FROM messages WHERE prospect_id = $1)
             OR subject IN (SELECT id FROM meetings WHERE prospect_id = $1)
          ORDER BY occurred_at, id LIMIT $2",
    )
    .bind(&id)
    .bind(EVENTS)
    .fetch_all(pool)
    .await
    .map_err(JobError::from)?;
    let signals: ProfileSignals = serde_json::from_str(&p.signals).unwrap_or_default();
    let opportunities: Vec<String> = serde_json::from_str(&p.opportunities).unwrap_or_default();
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        p.muted {
            (p.category) " · " (p.location) " · found " (p.first_period) " · " (p.status)
            @if let Some(w) = &p.website { " · " a href=(w) rel="noopener noreferrer" { (w) } }
            @if let Some(e) = &p.email { " · " (e) }
            @if let Some(ph) = &p.phone { " · " (ph) }
        }
        h2 { "Profile score" }
        p {
            strong { (p.gbp_score) } " of 100 over the signals known, which carry "
            (format!("{:.0}", p.coverage * 100.0)) " % of the points · class " (p.lead_class)
            @if p.revenue_lost > 0 { " · revenue lost estimated at " (cep_shared::format::dollars(p.revenue_lost * 100)) " a year" }
        }
        div.wrap { table {
            tr { th { "Signal" } th { "Value" } }
            @for s in Signal::ALL {
                tr {
                    td { (s) }
                    td { @match signals.shown(*s) { Some(v) => (v), None => span.muted { "unknown" } } }
                }
            }
        } }
        @if !opportunities.is_empty() {
            h2 { "Opportunities" }
            ul { @for o in &opportunities { li { (o) } } }
        }
        (pitch_list(&pitches))
        (message_list(&messages))
        @if !meetings.is_empty() {
            h2 { "Meetings" }
            div.wrap { table {
                tr { th { "Invitee" } th { "Starts" } th { "State" } th { "Tier / reason" } }
                @for m in &meetings {
                    tr id=(format!("meeting-{}", m.id)) {
                        td { (m.name) }
                        td { @match m.start_at { Some(t) => (when(t)), None => span.muted { "unknown" } } }
                        td { (m.status) }
                        td { @if let Some(t) = &m.tier { (t) } @if let Some(r) = &m.lost_reason { (r) } }
                    }
                }
            } }
        }
        @if let Some((outcome, details, at)) = &audit {
            h2 { "Website audit" }
            (audit_view(&p.id, outcome, details, *at))
        }
        @if !facts.is_empty() {
            h2 { "Research" }
            @for f in &facts {
                details {
                    summary { (f.query) " · " (when(f.created_at)) }
                    pre { (f.result) }
                    p { "Sources: " @for c in serde_json::from_str::<Vec<String>>(&f.citations).unwrap_or_default() {
                        a href=(c) rel="noopener noreferrer" { (c) } " "
                    } }
                }
            }
        }
        h2 { "Timeline" }
        @if events.is_empty() { p.muted { "Nothing recorded yet." } }
        ol { @for e in &events { li { (when(e.occurred_at)) " · " (e.layer) ": " (e.kind) } } }
    };
    Ok(layout::page(
        signed.shown(),
        "/pipeline",
        &p.name,
        nav,
        body,
    ))
}

fn pitch_list(pitches: &[Pitch]) -> Markup {
    html! {
        @if !pitches.is_empty() {
            h2 { "Pitches" }
            @for p in pitches {
                details {
                    summary { (p.channel) " · variant " (p.variant) " · " (p.tone) " · " (p.writer)
                        " · confidence " (format!("{:.2}", p.confidence)) }
                    @if let Some(s) = &p.subject { p { strong { "Subject: " } (s) } }
                    pre { (p.body) }
                }
            }
        }
    }
}

fn message_list(messages: &[Message]) -> Markup {
    html! {
        @if !messages.is_empty() {
            h2 { "Messages" }
            div.wrap { table {
                tr { th { "Step" } th { "Channel" } th { "Status" } th { "Due / sent" } th { "Detail" } }
                @for m in messages {
                    tr {
                        td { (m.step) }
                        td { (m.channel) @if let Some(a) = &m.address { br; span.muted { (a) } } }
                        td { (m.status) @if let Some(r) = &m.reason { br; span.muted { (r) } } }
                        td { (when(m.due_at)) @if let Some(s) = m.sent_at { br; (when(s)) } }
                        td {
                            @if let Some(h) = &m.headers { details { summary { "headers" } pre { (h) } } }
                            @if let Some(b) = &m.body { details { summary { "text" } pre { (b) } } }
                        }
                    }
                }
            } }
        }
    }
}

fn audit_view(id: &str, outcome: &str, details: &str, at: i64) -> Markup {
    let v: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    html! {
        p { (outcome) " · " (when(at)) @if let Some(u) = v["url"].as_str() { " · " (u) } }
        @if let Some(problems) = v["problems"].as_array() {
            @if !problems.is_empty() {
                ul { @for pr in problems { li { (pr.as_str().unwrap_or_default()) } } }
            }
        }
        @if v["screenshot"].is_string() {
            img src=(format!("/prospects/{}/screenshot", url_path(id))) alt="the website as the audit saw it"
                style="max-width:100%;border:1px solid #e2e8f0";
        }
    }
}

/// `GET /prospects/{id}/screenshot`: the last audit's screenshot, read only from the
/// data directory's `screenshots/`.
pub async fn screenshot(
    State(ctx): State<Ctx>,
    _signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT details FROM test_results WHERE subject = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&id)
    .fetch_optional(ctx.store.pool())
    .await
    .map_err(JobError::from)?;
    let path = row
        .and_then(|(d,)| serde_json::from_str::<serde_json::Value>(&d).ok())
        .and_then(|v| v["screenshot"].as_str().map(std::path::PathBuf::from));
    let dir = ctx.settings.data_dir.join("screenshots");
    let file = path.and_then(|p| {
        let (p, dir) = (p.canonicalize().ok()?, dir.canonicalize().ok()?);
        p.starts_with(&dir).then_some(p)
    });
    let Some(file) = file else {
        return Ok((StatusCode::NOT_FOUND, "no screenshot").into_response());
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => Ok(([(header::CONTENT_TYPE, "image/png")], bytes).into_response()),
        Err(_) => Ok((StatusCode::NOT_FOUND, "no screenshot").into_response()),
    }
}
