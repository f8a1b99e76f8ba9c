//! The fleet as the console shows it: every queue's ready, scheduled, running and dead
//! jobs and whether it is paused, what the queue holds outside the fleet's queues, and
//! the dead letters with their reason, attempts and payload. An admin pauses and
//! resumes a queue fleet-wide, and retries or discards one dead letter or every one
//! whose payload or reason holds a text.

use super::audit;
use super::layout::url_path;
use super::layout::{self, Counts};
use super::session::{CsrfForm, Refusal, Signed};
use crate::{Ctx, JobError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use cep_shared::queue::{self, admin::Pick};
use cep_shared::vocabulary::Role;
use maud::{Markup, html};
use serde_json::json;

/// The window the throughput column counts.
const THROUGHPUT_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Every 5 s, the page's tables as the server has them now (not while a field has the
/// focus); without JavaScript the page is read as it was loaded.
const REFRESH: &str = "setInterval(async () => {
  if (document.activeElement && document.activeElement.matches('input, select, textarea')) return;
  const r = await fetch(location.href, { credentials: 'same-origin' });
  if (!r.ok || r.redirected) return;
  const next = new DOMParser().parseFromString(await r.text(), 'text/html');
  const now = next.querySelector('main'), was = document.querySelector('main');
  if (now && was) was.replaceWith(now);
}, 5000);";

/// Milliseconds as a short age: `45 s`, `12 min`, `3 h`, `2 d`.
fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// Dead letters shown per queue.
const DEAD_PER_QUEUE: usize = 20;
/// The most of a payload or reason shown.
const SHOWN_CHARS: usize = 400;

fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(SHOWN_CHARS).collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct FleetQuery {
    /// A job id, or a text of its payload.
    find: String,
}

/// The longest text a search takes.
const MAX_FIND: usize = 200;

/// `GET /fleet` (`?find=` searches the queued, running and dead jobs).
pub async fn page(
    State(ctx): State<Ctx>,
    signed: Signed,
    axum::extract::Query(fq): axum::extract::Query<FleetQuery>,
) -> Result<Response, Refusal> {
    let find = fq.find.trim();
    if find.chars().count() > MAX_FIND {
        return Err(
            JobError::Invalid(format!("the search is longer than {MAX_FIND} characters")).into(),
        );
    }
    let search = if find.is_empty() {
        None
    } else {
        Some(ctx.queue.find(find).await?)
    };
    let mut stats = ctx.queue.stats(&queue::known_queues()).await?;
    let strays = ctx.queue.strays().await?;
    let first_stray = stats.len();
    stats.extend(strays);
    let mut dead = Vec::new();
    for s in stats.iter().filter(|s| s.dead > 0) {
        dead.push((
            s.queue.clone(),
            ctx.queue.dead_letters(&s.queue, DEAD_PER_QUEUE).await?,
        ));
    }
    let paused = ctx.queue.paused().await?;
    let now = ctx.now();
    let oldest: std::collections::HashMap<String, Option<i64>> = ctx
        .queue
        .oldest_due(&queue::known_queues())
        .await?
        .into_iter()
        .collect();
    let finished: Vec<(String, i64)> = sqlx::query_as(
        "SELECT queue, COUNT(*) FROM job_outcomes WHERE finished_at >= $1 GROUP BY queue",
    )
    .bind(now - THROUGHPUT_WINDOW_MS)
    .fetch_all(ctx.store.pool())
    .await
    .map_err(JobError::from)?;
    let finished: std::collections::HashMap<String, i64> = finished.into_iter().collect();
    let workers = ctx.queue.workers().await?;
    let qs = &ctx.settings.queue;
    let alive_ms = (qs.heartbeat_interval_seconds as i64) * i64::from(qs.missed_heartbeats) * 1000;
    let wall = cep_shared::clock::wall_millis();
    let counts = Counts {
        dead: stats.iter().map(|s| s.dead).sum(),
        ..super::waiting::counts(&ctx).await?
    };
    let admin = signed.user.role >= Role::Admin;
    let csrf = html! { input type="hidden" name="csrf" value=(signed.csrf); };
    let body = html! {
        form.filters method="get" action="/fleet" {
            input name="find" value=(find) placeholder="job id, or a text of its payload" aria-label="find a job";
            button { "Find" }
        }
        @if let Some(sr) = &search {
            h2 { "Found (" (sr.found.len()) ")" }
            @if !sr.complete { p.muted { "The search stopped after reading " (queue::admin::MAX_SCANNED) " entries; narrow it." } }
            @if sr.found.is_empty() { p { "No waiting, running or dead job has that id or text." } }
            @else {
                div.wrap { table {
                    tr { th { "Job" } th { "Queue" } th { "State" } th { "Attempts" } th { "Payload" } }
                    @for f in &sr.found {
                        tr { td { code { (f.id) } } td { (f.queue) } td { (f.state) } td { (f.attempts) } td { pre { (shown(&f.payload)) } } }
                    }
                } }
            }
        }
        h2 { "Queues (" (ctx.queue.backend_name()) ")" }
        div.wrap { table {
            tr { th { "Queue" } th { "Ready" } th { "Oldest waiting" } th { "Scheduled" } th { "Running" } th { "Dead" } th { "Done, last 5 min" } th { "" } }
            @for (i, s) in stats.iter().enumerate() {
                tr id=(format!("queue-{}", s.queue)) {
                    td {
                        (s.queue)
                        @if paused.contains(&s.queue) { " " strong { "paused" } }
                        @if i >= first_stray {
                            br; span.muted { @if s.queue == queue::UNREADABLE { "set aside: no worker can read them" } @else { "unknown queue: no worker serves it" } }
                        }
                    }
                    td { (s.ready) }
                    td { @match oldest.get(&s.queue).copied().flatten() {
                        Some(due) => (age(now - due)),
                        None => span.muted { "none" },
                    } }
                    td { (s.scheduled) } td { (s.running) } td { (s.dead) }
                    td { (finished.get(&s.queue).copied().unwrap_or(0)) }
                    td { @if admin && i < first_stray {
                        @let (action, label) = if paused.contains(&s.queue) { ("resume", "Resume") } else { ("pause", "Pause") };
                        form.inline method="post" action=(format!("/queues/{}/{action}", url_path(&s.queue))) {
                            (csrf) button { (label) }
                        }
                    } }
                }
            }
        } }
        h2 { "Workers" }
        @if workers.is_empty() { p.muted { "No worker has registered with this queue." } }
        @else {
            div.wrap { table {
                tr { th { "Worker" } th { "Last heartbeat" } th { "Jobs in flight" } }
                @for w in &workers {
                    tr {
                        td { code { (w.name) } }
                        td { (age(wall - w.last_seen)) " ago"
                            @if wall - w.last_seen > alive_ms { " " strong { "silent" } } }
                        td { (w.in_flight) }
                    }
                }
            } }
        }
        script { (maud::PreEscaped(REFRESH)) }
        @for (q, letters) in &dead {
            h2 { "Dead letters: " (q) }
            @if admin { (bulk(q, &csrf, q != queue::UNREADABLE && queue::is_known(q))) }
            div.wrap { table {
                tr { th { "Job" } th { "Attempts" } th { "Reason" } th { "Payload" } th { "" } }
                @for d in letters {
                    tr {
                        td { code { (d.id) } }
                        td { (d.attempts) }
                        td { pre { (shown(&d.reason)) } }
                        td { pre { (shown(&d.payload)) } }
                        td { @if admin && q != queue::UNREADABLE {
                            form.inline method="post" action=(format!("/queues/{}/dead", url_path(q))) {
                                (csrf)
                                input type="hidden" name="id" value=(d.id);
                                @if queue::is_known(q) { button name="action" value="retry" { "Retry" } }
                                button name="action" value="discard" { "Discard" }
                            }
                        } }
                    }
                }
            } }
        }
    };
    Ok(layout::page(
        signed.shown(),
        "/fleet",
        "Fleet",
        counts,
        body,
    ))
}

/// The form that retries or discards every dead letter of `q` holding a text.
fn bulk(q: &str, csrf: &Markup, retry: bool) -> Markup {
    html! {
        form.inline method="post" action=(format!("/queues/{}/dead", url_path(q))) {
            (csrf)
            input name="matching" placeholder="text in the payload or reason (empty: all)" aria-label="filter";
            @if retry { button name="action" value="retry" { "Retry all matching" } }
            button name="action" value="discard" { "Discard all matching" }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct DeadForm {
    csrf: String,
    action: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    matching: Option<String>,
}

/// `POST /queues/{queue}/dead`: retry or discard one dead letter (`id`) or every one
/// holding `matching` (admin).
pub async fn dead(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(q): Path<String>,
    axum::Form(f): axum::Form<DeadForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Admin, &f.csrf)?;
    let matching = f.matching.as_deref().unwrap_or_default();
    if matching.chars().count() > 200 {
        return Err(JobError::Invalid("the filter is longer than 200 characters".into()).into());
    }
    let pick = match f.id.as_deref() {
        Some(id) => Pick::Id(id),
        None => Pick::Matching(matching),
    };
    let n = match f.action.as_str() {
        "retry" => ctx.queue.retry_dead(&q, pick).await?,
        "discard" => ctx.queue.discard_dead(&q, pick).await?,
        other => {
            return Err(
                JobError::Invalid(format!("`{other}` is not an action: retry or discard")).into(),
            );
        }
    };
    let subject = match pick {
        Pick::Id(id) => id.to_owned(),
        Pick::Matching(text) => format!("{q} matching {text:?}"),
    };
    audit::record(
        &ctx,
        &signed.user.email,
        &format!("dead_letter.{}", f.action),
        &subject,
        None,
        Some(json!({ "queue": q, "jobs": n })),
    )
    .await?;
    Ok(Redirect::to("/fleet").into_response())
}

/// `POST /queues/{queue}/pause` and `/resume` (admin).
pub async fn pause(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path((q, action)): Path<(String, String)>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Admin, &f.csrf)?;
    let changed = match action.as_str() {
        "pause" => ctx.queue.pause(&q).await?,
        "resume" => ctx.queue.resume(&q).await?,
        other => return Err(JobError::Invalid(format!("`{other}` is not pause or resume")).into()),
    };
    if changed {
        audit::record(
            &ctx,
            &signed.user.email,
            &format!("queue.{action}"),
            &q,
            Some(json!({ "paused": action != "pause" })),
            Some(json!({ "paused": action == "pause" })),
        )
        .await?;
    }
    Ok(Redirect::to("/fleet").into_response())
}
