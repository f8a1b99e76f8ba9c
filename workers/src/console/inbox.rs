//! The inbox — what needs a person: replies to answer; messages whose outcome is unknown
//! (mark sent, send again, drop); meetings to link, confirm, mark attended or decide;
//! outreach tasks (calls, LinkedIn, texts) with their script; onboarding tasks past due;
//! posts waiting for approval; invoices unpaid past due. Each with its action; each action checks its role and the
//! form's CSRF token, is written to the audit log, and comes back here.

use super::audit;
use super::layout::{self, Counts, when};
use super::session::{CsrfForm, Refusal, Signed};
use super::waiting;
use crate::layers::booking::{self, Needs, Outcome, Reporter};
use crate::layers::outreach::followups::{self, Resolution};
use crate::layers::outreach::tasks::{self, TaskOutcome};
use crate::layers::{finance, onboarding, optimization};
use crate::{Ctx, JobError};
use axum::extract::{Path, State};
use axum::response::{Redirect, Response};
use cep_shared::vocabulary::Role;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

/// `GET /inbox`.
pub async fn page(State(ctx): State<Ctx>, signed: Signed) -> Result<Response, Refusal> {
    let inbox = waiting::Inbox::load(&ctx).await?;
    let (n, capped) = inbox.counts();
    let counts = Counts {
        inbox: n,
        capped,
        dead: super::waiting::dead_total(&ctx).await?,
    };
    let acts = signed.user.role >= Role::Operator;
    let body = html! {
        @if n == 0 { p { "Nothing waits for you." } }
        (replies(&signed, &inbox.replies, acts))
        (unknown(&signed, &inbox.unknown, acts))
        (meetings(&signed, &inbox.meetings, acts))
        (person_tasks(&signed, &inbox.tasks, acts))
        (overdue(&signed, &inbox.onboarding, acts))
        (posts(&signed, &inbox.posts, acts))
        (invoices(&signed, &inbox.invoices, acts))
        @if counts.dead > 0 {
            h2 { "Dead letters" }
            p { (counts.dead) @if counts.dead == 1 { " job" } @else { " jobs" } " failed for good: " a href="/fleet" { "see them in Fleet" } "." }
        }
    };
    Ok(layout::page(
        signed.shown(),
        "/inbox",
        "Inbox",
        counts,
        body,
    ))
}

fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.csrf); }
}

const TIERS: [&str; 3] = ["starter", "professional", "enterprise"];

fn meetings(signed: &Signed, rows: &[booking::ToReview], acts: bool) -> Markup {
    html! {
        @if !rows.is_empty() {
            h2 { "Meetings (" (rows.len()) ")" }
            div.wrap { table {
                tr { th { "Invitee" } th { "Starts" } th { "State" } th { "Needs" } th { "Action" } }
                @for m in rows {
                    tr id=(format!("meeting-{}", m.meeting_id)) {
                        td { (m.name) br; span.muted { (m.email) } }
                        td { @match m.start_at { Some(t) => (when(t)), None => span.muted { "unknown" } } }
                        td { (m.status) }
                        td { (needs(m.needs)) }
                        td { @if acts {
                            @let action = format!("/meetings/{}", m.meeting_id);
                            @match m.needs {
                                Needs::Link | Needs::Confirm => {
                                    form.inline method="post" action=(format!("{action}/link")) {
                                        (csrf(signed))
                                        input name="prospect_id" placeholder="prospect id" required
                                            value=[m.prospect_id.as_deref()];
                                        button { @if m.needs == Needs::Confirm { "Confirm" } @else { "Link" } }
                                    }
                                }
                                Needs::Attendance => {
                                    form.inline method="post" action=(format!("{action}/outcome")) {
                                        (csrf(signed))
                                        button name="outcome" value="held" { "Held" }
                                        button name="outcome" value="no_show" { "No-show" }
                                    }
                                }
                                Needs::Decision => {
                                    form.inline method="post" action=(format!("{action}/outcome")) {
                                        (csrf(signed))
                                        select name="tier" aria-label="tier sold" {
                                            @for t in TIERS {
                                                option value=(t) selected[m.suggested_tier.as_deref() == Some(t)] { (t) }
                                            }
                                        }
                                        button name="outcome" value="won" { "Won" }
                                    }
                                    form.inline method="post" action=(format!("{action}/outcome")) {
                                        (csrf(signed))
                                        input name="reason" placeholder="why lost" maxlength="500" required;
                                        button name="outcome" value="lost" { "Lost" }
                                    }
                                }
                            }
                        } @else { span.muted { "operators act" } } }
                    }
                }
            } }
        }
    }
}

fn replies(signed: &Signed, rows: &[followups::Reply], acts: bool) -> Markup {
    html! {
        @if !rows.is_empty() {
            h2 { "Replies to answer (" (rows.len()) ")" }
            div.wrap { table {
                tr { th { "Prospect" } th { "Replied" } th { "Reach them" } th { "Action" } }
                @for r in rows {
                    tr id=(format!("reply-{}", r.prospect_id)) {
                        td { a href=(format!("/prospects/{}", super::layout::url_path(&r.prospect_id))) { (r.prospect) } }
                        td { (when(r.replied_at)) }
                        td { @if let Some(e) = &r.email { a href=(format!("mailto:{e}")) { (e) } br; }
                             @if let Some(p) = &r.phone { a href=(format!("tel:{p}")) { (p) } } }
                        td { @if acts {
                            form.inline method="post" action=(format!("/prospects/{}/answered", super::layout::url_path(&r.prospect_id))) {
                                (csrf(signed)) button { "Answered" }
                            }
                        } @else { span.muted { "operators act" } } }
                    }
                }
            } }
        }
    }
}

fn unknown(signed: &Signed, rows: &[followups::UnknownMessage], acts: bool) -> Markup {
    html! {
        @if !rows.is_empty() {
            h2 { "Messages that may not have gone out (" (rows.len()) ")" }
            div.wrap { table {
                tr { th { "Prospect" } th { "Step" } th { "Why unknown" } th { "Action" } }
                @for m in rows {
                    tr id=(format!("message-{}", m.id)) {
                        td { (m.prospect) }
                        td { (m.step) " · " (m.channel) }
                        td { (m.reason.as_deref().unwrap_or_default()) }
                        td { @if acts {
                            form.inline method="post" action=(format!("/messages/{}/resolve", super::layout::url_path(&m.id))) {
                                (csrf(signed))
                                button name="how" value="sent" { "It went out" }
                                button name="how" value="resend" { "Send again" }
                                button name="how" value="drop" { "Drop" }
                            }
                        } @else { span.muted { "operators act" } } }
                    }
                }
            } }
        }
    }
}

fn overdue(signed: &Signed, rows: &[onboarding::store::OverdueTask], acts: bool) -> Markup {
    html! {
        @if !rows.is_empty() {
            h2 { "Onboarding tasks past due (" (rows.len()) ")" }
            div.wrap { table {
                tr { th { "Client" } th { "Task" } th { "Due" } th { "Action" } }
                @for t in rows {
                    tr id=(format!("onboarding-{}", t.id)) {
                        td { a href=(format!("/clients/{}", super::layout::url_path(&t.client_id))) { (t.business_name) } }
                        td { (t.name) }
                        td { (when(t.due_at)) }
                        td { @if acts {
                            form.inline method="post" action=(format!("/onboarding-tasks/{}/done", super::layout::url_path(&t.id))) {
                                (csrf(signed)) button { "Done" }
                            }
                        } @else { span.muted { "operators act" } } }
                    }
                }
            } }
        }
    }
}

fn needs(n: Needs) -> &'static str {
    match n {
        Needs::Link => "link to a prospect",
        Needs::Confirm => "confirm the email match",
        Needs::Attendance => "held or no-show",
        Needs::Decision => "won or lost",
    }
}

fn person_tasks(signed: &Signed, rows: &[tasks::OpenTask], acts: bool) -> Markup {
    html! {
        @if !rows.is_empty() {
            h2 { "Calls, LinkedIn and texts (" (rows.len()) ")" }
            div.wrap { table {
                tr { th { "Prospect" } th { "Channel" } th { "Script" } th { "Action" } }
                @for t in rows {
                    tr id=(format!("task-{}", t.id)) {
                        td { (t.prospect) @if let Some(p) = &t.phone { br; a href=(format!("tel:{p}")) { (p) } } }
                        td { (t.channel) }
                        td { @if let Some(b) = &t.body { pre { (b) } } }
                        td { @if acts {
                            form.inline method="post" action=(format!("/tasks/{}/done", t.id)) {
                                (csrf(signed))
                                button name="outcome" value="done" { "Done" }
                                button name="outcome" value="replied" { "Replied" }
                                button name="outcome" value="opted_out" { "Opted out" }
                            }
                        } @else { span.muted { "operators act" } } }
                    }
                }
            } }
        }
    }
}

fn posts(signed: &Signed, rows: &[optimization::store::PostRow], acts: bool) -> Markup {
    html! {
        @if !rows.is_empty() {
            h2 { "Posts to approve (" (rows.len()) ")" }
            div.wrap { table {
                tr { th { "Client" } th { "For" } th { "Text" } th { "Action" } }
                @for p in rows {
                    tr id=(format!("post-{}", p.id)) {
                        td { (p.business_name) }
                        td { (when(p.scheduled_for)) }
                        td { pre { (p.body) } }
                        td { @if acts {
                            form.inline method="post" action=(format!("/posts/{}/approve", p.id)) {
                                (csrf(signed))
                                button { "Approve" }
                            }
                        } @else { span.muted { "operators act" } } }
                    }
                }
            } }
        }
    }
}

fn invoices(signed: &Signed, rows: &[finance::store::Overdue], acts: bool) -> Markup {
    html! {
        @if !rows.is_empty() {
            h2 { "Invoices past due (" (rows.len()) ")" }
            div.wrap { table {
                tr { th { "Client" } th { "Period" } th { "Total" } th { "Due" } th { "Action" } }
                @for i in rows {
                    tr id=(format!("invoice-{}", i.id)) {
                        td { (i.business_name) }
                        td { (i.period) }
                        td { (cep_shared::format::dollars(i.total_cents)) }
                        td { (when(i.due_at)) }
                        td { @if acts {
                            form.inline method="post" action=(format!("/invoices/{}/paid", i.id)) {
                                (csrf(signed))
                                button { "Mark paid" }
                            }
                        } @else { span.muted { "operators act" } } }
                    }
                }
            } }
        }
    }
}

/// Back to the inbox after an action (post, redirect, get).
fn back() -> Response {
    use axum::response::IntoResponse;
    Redirect::to("/inbox").into_response()
}

#[derive(Deserialize)]
pub struct OutcomeForm {
    csrf: String,
    outcome: String,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /meetings/{id}/outcome`: held, no-show, won (with the tier) or lost (with a
/// reason), as `cep meeting` records it.
pub async fn meeting_outcome(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<OutcomeForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let outcome = match f.outcome.as_str() {
        "held" => Outcome::Held,
        "no_show" => Outcome::NoShow,
        "won" => Outcome::Won {
            tier: f.tier.unwrap_or_default(),
        },
        "lost" => Outcome::Lost {
            reason: f.reason.unwrap_or_default(),
        },
        other => {
            return Err(JobError::Invalid(format!(
                "`{other}` is not an outcome: held, no_show, won or lost"
            ))
            .into());
        }
    };
    let r = booking::outcome::record(&ctx, &id, outcome, Reporter::Operator).await?;
    if r.changed {
        let action = format!("meeting.{}", r.state);
        audit::record(
            &ctx,
            &signed.user.email,
            &action,
            &id,
            Some(json!({ "state": r.previous })),
            Some(json!({ "state": r.state, "tier": r.tier, "lost_reason": r.lost_reason })),
        )
        .await?;
    }
    Ok(back())
}

#[derive(Deserialize)]
pub struct LinkForm {
    csrf: String,
    prospect_id: String,
}

/// `POST /meetings/{id}/link`: ties a meeting to its prospect, or confirms a match.
pub async fn meeting_link(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<LinkForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let prospect = f.prospect_id.trim();
    let linked = booking::link(&ctx, &id, prospect).await?;
    audit::record(
        &ctx,
        &signed.user.email,
        "meeting.link",
        &id,
        None,
        Some(serde_json::to_value(&linked).map_err(JobError::from)?),
    )
    .await?;
    Ok(back())
}

#[derive(Deserialize)]
pub struct TaskForm {
    csrf: String,
    outcome: String,
}

/// `POST /tasks/{id}/done`: a call, LinkedIn message or text done, replied or opted out.
pub async fn task_done(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<TaskForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let outcome: TaskOutcome = f.outcome.parse().map_err(JobError::Invalid)?;
    if !tasks::is_message(&ctx, &id).await? {
        return Err(JobError::Invalid(format!("no outreach task `{id}`")).into());
    }
    tasks::complete(&ctx, &id, outcome, ctx.now()).await?;
    audit::record(
        &ctx,
        &signed.user.email,
        "task.done",
        &id,
        Some(json!({ "status": "task" })),
        Some(json!({ "outcome": outcome })),
    )
    .await?;
    Ok(back())
}

/// `POST /posts/{id}/approve`.
pub async fn post_approve(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    if optimization::store::approve(&ctx, &id, &signed.user.email).await? {
        audit::record(
            &ctx,
            &signed.user.email,
            "post.approve",
            &id,
            Some(json!({ "approved": false })),
            Some(json!({ "approved": true })),
        )
        .await?;
    }
    Ok(back())
}

/// `POST /invoices/{id}/paid`.
pub async fn invoice_paid(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    if finance::record_payment(&ctx, &id, ctx.now()).await? {
        audit::record(
            &ctx,
            &signed.user.email,
            "invoice.paid",
            &id,
            Some(json!({ "paid": false })),
            Some(json!({ "paid": true })),
        )
        .await?;
    }
    Ok(back())
}

/// `POST /prospects/{id}/answered`: someone answered the prospect's reply.
pub async fn reply_answered(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    if followups::answered(&ctx, &id, &signed.user.email).await? {
        audit::record(
            &ctx,
            &signed.user.email,
            "reply.answered",
            &id,
            Some(json!({ "answered": false })),
            Some(json!({ "answered": true })),
        )
        .await?;
    }
    Ok(back())
}

#[derive(Deserialize)]
pub struct ResolveForm {
    csrf: String,
    how: String,
}

/// `POST /messages/{id}/resolve`: a message of unknown outcome marked sent, sent again
/// or dropped.
pub async fn message_resolve(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<ResolveForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let how: Resolution = f.how.parse().map_err(JobError::Invalid)?;
    let to = followups::resolve(&ctx, &id, how).await?;
    audit::record(
        &ctx,
        &signed.user.email,
        "message.resolve",
        &id,
        Some(json!({ "status": "unknown" })),
        Some(json!({ "status": to, "how": how })),
    )
    .await?;
    Ok(back())
}

/// `POST /onboarding-tasks/{id}/done`: an onboarding task done (its dependency first).
pub async fn onboarding_done(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let done = onboarding::complete_task(&ctx, &id, ctx.now()).await?;
    audit::record(
        &ctx,
        &signed.user.email,
        "onboarding_task.done",
        &id,
        Some(json!({ "done": false })),
        Some(json!({ "done": true, "client_state": done.state, "live": done.live })),
    )
    .await?;
    Ok(back())
}
