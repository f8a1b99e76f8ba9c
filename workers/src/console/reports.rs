//! Client reports in the console: the month's reports with how each was delivered
//! (`GET /reports`), a report with its notes, deliveries and links (`/reports/{id}`),
//! the report alone (`/html`) and as a PDF (`/pdf`); an operator writes the notes,
//! sends or resends it, makes a no-login link or revokes one.

use super::audit;
use super::layout::{self, url_path, when};
use super::session::{CsrfForm, Refusal, Signed};
use crate::layers::reporting::{self, AGENCY, delivery, links};
use crate::{Ctx, JobError};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use cep_shared::vocabulary::Role;
use maud::html;
use serde_json::json;

/// The most reports one listing shows.
const LIST_LIMIT: i64 = 500;

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    period: Option<String>,
}

/// `GET /reports`: one month's client reports (the latest by default), each with its
/// last delivery.
pub async fn list(
    State(ctx): State<Ctx>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response, Refusal> {
    let pool = ctx.store.pool();
    let period = match q.period.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            let p = cep_shared::period::Period::parse(p).map_err(JobError::Invalid)?;
            Some(p.span_millis().0)
        }
        None => {
            let (latest,): (Option<i64>,) = sqlx::query_as(
                "SELECT MAX(period_start) FROM reports WHERE report_type = 'monthly' AND client_id <> 'agency'",
            )
            .fetch_one(pool)
            .await
            .map_err(JobError::from)?;
            latest
        }
    };
    type Row = (String, String, String, Option<String>, Option<i64>);
    let rows: Vec<Row> = match period {
        Some(start) => sqlx::query_as(
            "SELECT r.id, c.business_name, c.email,
                    (SELECT d.status FROM report_deliveries d WHERE d.report_id = r.id
                      ORDER BY d.round DESC, d.updated_at DESC LIMIT 1),
                    (SELECT MAX(d.updated_at) FROM report_deliveries d WHERE d.report_id = r.id)
               FROM reports r JOIN clients c ON c.id = r.client_id
              WHERE r.report_type = 'monthly' AND r.period_start = $1
              ORDER BY c.business_name, r.id LIMIT $2",
        )
        .bind(start)
        .bind(LIST_LIMIT)
        .fetch_all(pool)
        .await
        .map_err(JobError::from)?,
        None => Vec::new(),
    };
    let month = period.map(|p| {
        cep_shared::clock::from_millis(p)
            .format("%Y-%m")
            .to_string()
    });
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        form method="get" action="/reports" {
            label { "Month " input type="month" name="period" value=[month.as_deref()]; }
            " " button { "Show" }
        }
        @match &month {
            None => p.muted { "No client report has been written yet: the month's close writes them." },
            Some(m) => {
                p { (rows.len()) @if rows.len() as i64 == LIST_LIMIT { "+" } " client reports of " (m) "." }
                div.wrap { table {
                    tr { th { "Client" } th { "Email" } th { "Delivery" } th { "When" } }
                    @for (id, business, email, status, at) in &rows {
                        tr {
                            td { a href=(format!("/reports/{}", url_path(id))) { (business) } }
                            td { (email) }
                            td { (status.as_deref().unwrap_or("not sent")) }
                            td { @if let Some(at) = at { (when(*at)) } }
                        }
                    }
                } }
            }
        }
    };
    Ok(layout::page(
        signed.shown(),
        "/reports",
        "Reports",
        nav,
        body,
    ))
}

#[derive(sqlx::FromRow)]
struct Report {
    id: String,
    client_id: String,
    report_type: String,
    period_start: i64,
    period_end: i64,
    notes: Option<String>,
    notes_by: Option<String>,
    notes_at: Option<i64>,
}

async fn report(ctx: &Ctx, id: &str) -> Result<Report, JobError> {
    sqlx::query_as(
        "SELECT id, client_id, report_type, period_start, period_end, notes, notes_by, notes_at
           FROM reports WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(ctx.store.pool())
    .await?
    .ok_or_else(|| JobError::Invalid(format!("no report `{id}`")))
}

/// `GET /reports/{id}`: the report, with its notes and (operator) the form to write them.
pub async fn report_page(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let r = report(&ctx, &id).await?;
    let acts = signed.user.role >= Role::Operator;
    let deliveries: Vec<(i64, String, String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT round, recipient, status, requested_by, updated_at, detail FROM report_deliveries
          WHERE report_id = $1 ORDER BY round DESC, recipient LIMIT 100",
    )
    .bind(&r.id)
    .fetch_all(ctx.store.pool())
    .await
    .map_err(JobError::from)?;
    let links = links::of_report(&ctx, &r.id).await?;
    let (email, listed): (String, Option<String>) = if r.client_id == AGENCY {
        (String::new(), None)
    } else {
        sqlx::query_as("SELECT email, report_recipients FROM clients WHERE id = $1")
            .bind(&r.client_id)
            .fetch_one(ctx.store.pool())
            .await
            .map_err(JobError::from)?
    };
    let to = delivery::recipients(&email, listed.as_deref());
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        p { a href=(format!("/clients/{}", url_path(&r.client_id))) { "The client" }
            " · " (r.report_type) " · " (when(r.period_start)) " to " (when(r.period_end))
            " · " a href=(format!("/reports/{}/html", url_path(&r.id))) { "open the report alone" } }
        h2 { "The agency's notes" }
        @if let Some(n) = &r.notes {
            pre { (n) }
            p.muted { "by " (r.notes_by.as_deref().unwrap_or("?")) @if let Some(at) = r.notes_at { ", " (when(at)) } }
        } @else { p.muted { "None yet." } }
        @if acts {
            form method="post" action=(format!("/reports/{}/notes", url_path(&r.id))) {
                input type="hidden" name="csrf" value=(signed.csrf);
                textarea name="notes" rows="5" maxlength=(MAX_NOTES) style="width:100%" aria-label="notes" { (r.notes.as_deref().unwrap_or_default()) }
                button { "Save notes" }
            }
        }
        @if r.client_id != AGENCY {
            h2 { "Delivery" }
            p { "Sent to " strong { (to.join(", ")) } " · " a href=(format!("/reports/{}/pdf", url_path(&r.id))) { "Download the PDF" } }
            @if acts {
                form method="post" action=(format!("/clients/{}/report-recipients", url_path(&r.client_id))) {
                    input type="hidden" name="csrf" value=(signed.csrf);
                    label { "Report recipients (comma-separated; empty: the client's email) "
                        input type="text" name="recipients" value=(listed.as_deref().unwrap_or_default()) maxlength="1000" style="width:100%"; }
                    button { "Save recipients" }
                }
            }
            @if acts {
                form.inline method="post" action=(format!("/reports/{}/send", url_path(&r.id))) {
                    input type="hidden" name="csrf" value=(signed.csrf);
                    button { @if deliveries.is_empty() { "Send to the client" } @else { "Send again" } }
                }
                " "
                form.inline method="post" action=(format!("/reports/{}/links", url_path(&r.id))) {
                    input type="hidden" name="csrf" value=(signed.csrf);
                    button { "Make a link" }
                }
            }
            @if deliveries.is_empty() { p.muted { "Not sent yet." } } @else {
                div.wrap { table {
                    tr { th { "Round" } th { "To" } th { "Status" } th { "Asked by" } th { "When" } th { "Detail" } }
                    @for d in &deliveries {
                        tr { td { (d.0) } td { (d.1) } td { (d.2) } td { (d.3) } td { (when(d.4)) } td { (d.5.as_deref().unwrap_or("")) } }
                    }
                } }
            }
            h3 { "Links" }
            @if links.is_empty() { p.muted { "No link made yet." } } @else {
                div.wrap { table {
                    tr { th { "Made" } th { "By" } th { "Works until" } th { "" } }
                    @for (id, made, by, expires, revoked) in &links {
                        tr {
                            td { (when(*made)) } td { (by) } td { (when(*expires)) }
                            td {
                                @if revoked.is_some() { "revoked" }
                                @else if *expires <= ctx.now() { "expired" }
                                @else if acts {
                                    form.inline method="post" action=(format!("/report-links/{}/revoke", url_path(id))) {
                                        input type="hidden" name="csrf" value=(signed.csrf);
                                        button { "Revoke" }
                                    }
                                } @else { "open" }
                            }
                        }
                    }
                } }
            }
        }
        iframe src=(format!("/reports/{}/html", url_path(&r.id))) title="the report" sandbox=""
            style="width:100%;height:70vh;border:1px solid #e2e8f0;background:#fff" {}
    };
    Ok(layout::page(
        signed.shown(),
        "/reports",
        "Report",
        nav,
        body,
    ))
}

/// `GET /reports/{id}/html`: the report as written, allowed nothing but its own styles.
pub async fn report_html(
    State(ctx): State<Ctx>,
    _signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let (html,): (String,) = sqlx::query_as("SELECT html FROM reports WHERE id = $1")
        .bind(&id)
        .fetch_optional(ctx.store.pool())
        .await
        .map_err(JobError::from)?
        .ok_or_else(|| JobError::Invalid(format!("no report `{id}`")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, reporting::PAGE_POLICY),
        ],
        html,
    )
        .into_response())
}

/// The longest notes kept.
pub const MAX_NOTES: usize = 5000;

#[derive(serde::Deserialize)]
pub struct NotesForm {
    csrf: String,
    notes: String,
}

/// `POST /reports/{id}/notes`.
pub async fn save_notes(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<NotesForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let notes = f.notes.trim();
    if notes.chars().count() > MAX_NOTES {
        return Err(
            JobError::Invalid(format!("notes are longer than {MAX_NOTES} characters")).into(),
        );
    }
    let before = report(&ctx, &id).await?;
    let notes = (!notes.is_empty()).then_some(notes);
    sqlx::query("UPDATE reports SET notes = $2, notes_by = $3, notes_at = $4 WHERE id = $1")
        .bind(&id)
        .bind(notes)
        .bind(&signed.user.email)
        .bind(ctx.now())
        .execute(ctx.store.pool())
        .await
        .map_err(JobError::from)?;
    audit::record(
        &ctx,
        &signed.user.email,
        "report.notes",
        &id,
        Some(json!({ "notes": before.notes })),
        Some(json!({ "notes": notes })),
    )
    .await?;
    // The client's page carries the notes: written again with them.
    if before.client_id != AGENCY {
        reporting::rewrite(&ctx, &id).await?;
    }
    Ok(Redirect::to(&format!("/reports/{}", url_path(&id))).into_response())
}

/// `GET /reports/{id}/pdf`: the report printed now.
pub async fn pdf(
    State(ctx): State<Ctx>,
    _signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let r = report(&ctx, &id).await?;
    if r.client_id == AGENCY {
        return Err(JobError::Invalid("the agency's report has no PDF".into()).into());
    }
    let pdf = delivery::pdf(&ctx, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}.pdf\"",
                    reporting::render::file_name(&id)
                ),
            ),
        ],
        pdf,
    )
        .into_response())
}

/// `POST /reports/{id}/send`: the report goes to the client's recipients (again).
pub async fn send(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let r = report(&ctx, &id).await?;
    if r.client_id == AGENCY {
        return Err(JobError::Invalid("the agency's report is not sent".into()).into());
    }
    let round = delivery::request(&ctx, &id, &signed.user.email).await?;
    audit::record(
        &ctx,
        &signed.user.email,
        "report.send",
        &id,
        None,
        Some(json!({ "round": round })),
    )
    .await?;
    Ok(Redirect::to(&format!("/reports/{}", url_path(&id))).into_response())
}

/// `POST /reports/{id}/links`: a new no-login link, shown this once.
pub async fn make_link(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let link = links::create(&ctx, &id, &signed.user.email).await?;
    audit::record(
        &ctx,
        &signed.user.email,
        "report.link",
        &id,
        None,
        Some(json!({ "link": link.id, "expires_at": link.expires_at })),
    )
    .await?;
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        p { "Anyone with this address can read the report until " (when(link.expires_at)) ", or until it is revoked. It is shown only now: copy it." }
        p { input type="text" readonly value=(link.url) style="width:100%" aria-label="the link"; }
        form.inline method="post" action=(format!("/report-links/{}/revoke", url_path(&link.id))) {
            input type="hidden" name="csrf" value=(signed.csrf);
            button { "Revoke it" }
        }
        p { a href=(format!("/reports/{}", url_path(&id))) { "Back to the report" } }
    };
    Ok(layout::page(
        signed.shown(),
        "/reports",
        "A link to the report",
        nav,
        body,
    ))
}

/// `POST /report-links/{id}/revoke`.
pub async fn revoke_link(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(link): Path<String>,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let row: Option<(String,)> = sqlx::query_as("SELECT report_id FROM report_links WHERE id = $1")
        .bind(&link)
        .fetch_optional(ctx.store.pool())
        .await
        .map_err(JobError::from)?;
    let (report_id,) = row.ok_or_else(|| JobError::Invalid(format!("no report link `{link}`")))?;
    if links::revoke(&ctx, &link, &signed.user.email).await? {
        audit::record(
            &ctx,
            &signed.user.email,
            "report.link_revoke",
            &link,
            Some(json!({ "revoked": false })),
            Some(json!({ "revoked": true, "report": report_id })),
        )
        .await?;
    }
    Ok(Redirect::to(&format!("/reports/{}", url_path(&report_id))).into_response())
}

#[derive(serde::Deserialize)]
pub struct RecipientsForm {
    csrf: String,
    recipients: String,
}

/// The most addresses a client's reports go to.
const MAX_RECIPIENTS: usize = 10;

/// `POST /clients/{id}/report-recipients`: who gets the client's reports; each must
/// be an address, and an empty list means the client's own email.
pub async fn save_recipients(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(client): Path<String>,
    axum::Form(f): axum::Form<RecipientsForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Operator, &f.csrf)?;
    let listed = delivery::recipients("", Some(&f.recipients));
    let listed: Vec<String> = listed.into_iter().filter(|a| !a.is_empty()).collect();
    if listed.len() > MAX_RECIPIENTS {
        return Err(JobError::Invalid(format!(
            "at most {MAX_RECIPIENTS} report recipients, got {}",
            listed.len()
        ))
        .into());
    }
    if let Some(bad) = listed
        .iter()
        .find(|a| a.parse::<lettre::message::Mailbox>().is_err())
    {
        return Err(JobError::Invalid(format!("`{bad}` is not an email address")).into());
    }
    let before: Option<(Option<String>,)> =
        sqlx::query_as("SELECT report_recipients FROM clients WHERE id = $1")
            .bind(&client)
            .fetch_optional(ctx.store.pool())
            .await
            .map_err(JobError::from)?;
    let (before,) = before.ok_or_else(|| JobError::Invalid(format!("no client `{client}`")))?;
    let after = (!listed.is_empty()).then(|| listed.join(", "));
    sqlx::query("UPDATE clients SET report_recipients = $2 WHERE id = $1")
        .bind(&client)
        .bind(&after)
        .execute(ctx.store.pool())
        .await
        .map_err(JobError::from)?;
    audit::record(
        &ctx,
        &signed.user.email,
        "client.report_recipients",
        &client,
        Some(json!({ "recipients": before })),
        Some(json!({ "recipients": after })),
    )
    .await?;
    let back = match sqlx::query_as::<_, (String,)>(
        "SELECT id FROM reports WHERE client_id = $1 ORDER BY period_start DESC, id LIMIT 1",
    )
    .bind(&client)
    .fetch_optional(ctx.store.pool())
    .await
    .map_err(JobError::from)?
    {
        Some((report,)) => format!("/reports/{}", url_path(&report)),
        None => format!("/clients/{}", url_path(&client)),
    };
    Ok(Redirect::to(&back).into_response())
}
