//! A client's report delivered by email: written again from the freshest figures,
//! printed as a PDF, given a no-login link, and sent to each of the client's report
//! recipients through the SMTP transport — claimed before it goes, so a retry never
//! sends it twice. While outreach is in dry run each email is recorded, not sent, and
//! neither a link nor a PDF is made for it.

use super::{client, links, template};
use crate::clients::smtp::SendFailure;
use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
use cep_shared::jobs::DeliveryJob;
use cep_shared::queue::NewJob;
use lettre::message::{Attachment, Mailbox, Message, MultiPart, SinglePart, header::ContentType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryResult {
    pub report_id: String,
    pub round: u32,
    /// Each recipient and what became of its email.
    pub recipients: Vec<(String, String)>,
    pub pdf_bytes: Option<usize>,
    /// Why nothing was sent, when nothing was.
    pub reason: Option<String>,
}

/// The report's client: (id, name, business, email, recipients, canceled).
type ClientRow = (String, String, String, String, Option<String>, Option<i64>);

/// Who gets a client's reports: its `report_recipients`, or its own email.
pub fn recipients(email: &str, listed: Option<&str>) -> Vec<String> {
    let listed: Vec<String> = listed
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if listed.is_empty() {
        vec![email.to_owned()]
    } else {
        listed
    }
}

/// Asks for the report to be sent (again) now, by `by`: the next round after any made
/// (round 1 is the month's close's own, which may still be waiting); the round.
pub async fn request(ctx: &Ctx, report_id: &str, by: &str) -> Result<u32, JobError> {
    let (round,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(round) FROM report_deliveries WHERE report_id = $1")
            .bind(report_id)
            .fetch_one(ctx.store.pool())
            .await?;
    let round = round.unwrap_or(0).max(1) as u32 + 1;
    let job = DeliveryJob {
        report_id: report_id.to_owned(),
        round,
        requested_by: by.to_owned(),
    };
    ctx.queue.push(NewJob::of(&job, ctx.now())).await?;
    Ok(round)
}

/// The report as a PDF, written again from the store first.
pub async fn pdf(ctx: &Ctx, report_id: &str) -> Result<Vec<u8>, JobError> {
    let html = super::rewrite(ctx, report_id).await?;
    ctx.pdf.print(&html).await
}

pub async fn deliver(ctx: &Ctx, job: DeliveryJob) -> Result<DeliveryResult, JobError> {
    let mut result = DeliveryResult {
        report_id: job.report_id.clone(),
        round: job.round,
        recipients: Vec::new(),
        pdf_bytes: None,
        reason: None,
    };
    let row: Option<ClientRow> = sqlx::query_as(
        "SELECT c.id, c.client_name, c.business_name, c.email, c.report_recipients, c.canceled_at
           FROM reports r JOIN clients c ON c.id = r.client_id WHERE r.id = $1",
    )
    .bind(&job.report_id)
    .fetch_optional(ctx.store.pool())
    .await?;
    let Some((client_id, name, business, email, listed, canceled)) = row else {
        return Err(JobError::Invalid(format!(
            "no client report `{}`",
            job.report_id
        )));
    };
    if canceled.is_some() && job.requested_by == "schedule" {
        result.reason = Some("the client has canceled".into());
        return Ok(result);
    }
    let to = recipients(&email, listed.as_deref());
    // What is still to send: a recipient already sent, recorded or of unknown outcome
    // is never sent again in this round; a claim left by a crash becomes unknown.
    let mut todo = Vec::new();
    for address in &to {
        let id = delivery_id(&job, address);
        let status: Option<(String,)> =
            sqlx::query_as("SELECT status FROM report_deliveries WHERE id = $1")
                .bind(&id)
                .fetch_optional(ctx.store.pool())
                .await?;
        match status.as_ref().map(|(s,)| s.as_str()) {
            None | Some("failed") => todo.push(address.clone()),
            Some("sending") => {
                set(
                    ctx,
                    &id,
                    "unknown",
                    None,
                    Some("the send was interrupted: it may have gone out"),
                )
                .await?;
                result.recipients.push((address.clone(), "unknown".into()));
            }
            Some(s) => result.recipients.push((address.clone(), s.to_owned())),
        }
    }
    if todo.is_empty() {
        return Ok(result);
    }
    // The figures as they are now, the page, the PDF and the link.
    if let Some(location) = super::store::location(ctx, &client_id).await? {
        crate::layers::optimization::performance::pull(ctx, &client_id, &location).await?;
    }
    let templates = template::Templates::load(&ctx.settings.reports)?;
    let (html, gathered) = super::rewrite_with(ctx, &templates, &job.report_id).await?;
    // In a dry run nothing leaves the machine: no link, no PDF, each email recorded.
    let Some(mailer) = &ctx.mailer else {
        for address in todo {
            let id = delivery_id(&job, &address);
            claim(ctx, &id, &job, &address, None).await?;
            set(
                ctx,
                &id,
                "dry_run",
                None,
                Some("outreach is in dry run: recorded, not sent"),
            )
            .await?;
            result.recipients.push((address, "dry_run".into()));
        }
        return Ok(result);
    };
    // A worker without Chromium still sends the link; the record says the PDF is
    // missing and why. A print that failed for a passing reason is tried again.
    let pdf = match ctx.pdf.print(&html).await {
        Ok(pdf) => Some(pdf),
        Err(JobError::Invalid(why)) => {
            tracing::warn!(report = %job.report_id, %why, "report sent without its PDF");
            result.reason = Some(format!("sent without the PDF: {why}"));
            None
        }
        Err(e) => return Err(e),
    };
    result.pdf_bytes = pdf.as_ref().map(Vec::len);
    let link = links::create(ctx, &job.report_id, &job.requested_by).await?;
    let expires = cep_shared::clock::from_millis(link.expires_at)
        .format("%-d %B %Y")
        .to_string();
    let text = templates.email_text(&gathered, &name, &link.url, &expires, pdf.is_some())?;
    let subject = format!("{business}: your {} profile report", gathered.period);
    for address in todo {
        let id = delivery_id(&job, &address);
        claim(ctx, &id, &job, &address, Some(&link.id)).await?;
        let message_id =
            crate::layers::outreach::compose::new_message_id(&ctx.settings.reports.from)
                .map_err(|e| JobError::Transient(format!("no randomness: {e}")))?;
        let message = match build(
            ctx,
            &address,
            &subject,
            &text,
            pdf.as_deref(),
            &gathered,
            &message_id,
        ) {
            Ok(m) => m,
            Err(why) => {
                set(ctx, &id, "failed", None, Some(&why)).await?;
                result.recipients.push((address, "failed".into()));
                continue;
            }
        };
        match mailer.send_message(message).await {
            Ok(()) => {
                set(
                    ctx,
                    &id,
                    "sent",
                    Some(&message_id),
                    result.reason.as_deref(),
                )
                .await?;
                result.recipients.push((address, "sent".into()));
            }
            Err(SendFailure::Rejected(why)) => {
                set(ctx, &id, "failed", None, Some(&why)).await?;
                result.recipients.push((address, "failed".into()));
            }
            // Never taken: free for the job's retry.
            Err(SendFailure::NotSent(why)) => {
                set(ctx, &id, "failed", None, Some(&why)).await?;
                return Err(JobError::Transient(why));
            }
            Err(SendFailure::Unknown(why)) => {
                set(ctx, &id, "unknown", Some(&message_id), Some(&why)).await?;
                result.recipients.push((address, "unknown".into()));
            }
        }
    }
    Ok(result)
}

fn delivery_id(job: &DeliveryJob, address: &str) -> String {
    stable_id(
        "rdl",
        &[
            &job.report_id,
            &job.round.to_string(),
            &address.to_lowercase(),
        ],
    )
}

/// Claims a recipient's email before it goes (or takes back a failed one).
async fn claim(
    ctx: &Ctx,
    id: &str,
    job: &DeliveryJob,
    address: &str,
    link_id: Option<&str>,
) -> Result<(), JobError> {
    let now = ctx.now();
    sqlx::query(
        "INSERT INTO report_deliveries (id, report_id, round, recipient, link_id, status, requested_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'sending', $6, $7, $7)
         ON CONFLICT (id) DO UPDATE SET status = 'sending', link_id = $5, detail = NULL, updated_at = $7",
    )
    .bind(id)
    .bind(&job.report_id)
    .bind(i64::from(job.round))
    .bind(address)
    .bind(link_id)
    .bind(&job.requested_by)
    .bind(now)
    .execute(ctx.store.pool())
    .await?;
    Ok(())
}

async fn set(
    ctx: &Ctx,
    id: &str,
    status: &str,
    message_id: Option<&str>,
    detail: Option<&str>,
) -> Result<(), JobError> {
    sqlx::query(
        "UPDATE report_deliveries SET status = $2, message_id = COALESCE($3, message_id), detail = $4, updated_at = $5
          WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(message_id)
    .bind(detail.map(|d| d.chars().take(500).collect::<String>()))
    .bind(ctx.now())
    .execute(ctx.store.pool())
    .await?;
    Ok(())
}

/// The email: the text with the link, and the PDF attached.
fn build(
    ctx: &Ctx,
    to: &str,
    subject: &str,
    text: &str,
    pdf: Option<&[u8]>,
    report: &client::ClientReport,
    message_id: &str,
) -> Result<Message, String> {
    let r = &ctx.settings.reports;
    let from = Mailbox::new(
        Some(r.brand.agency_name.clone()),
        r.from
            .parse()
            .map_err(|e| format!("reports.from `{}` is not an address: {e}", r.from))?,
    );
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("the recipient `{to}` is not an address: {e}"))?;
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ctx.now().max(0) as u64);
    let body = SinglePart::plain(text.to_owned());
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .date(date)
        .message_id(Some(message_id.to_owned()));
    let built = match pdf {
        Some(pdf) => {
            let name = format!(
                "{}-{}.pdf",
                super::render::file_name(&report.client),
                report.period.replace(' ', "-")
            );
            let content_type = ContentType::parse("application/pdf").map_err(|e| e.to_string())?;
            builder.multipart(
                MultiPart::mixed()
                    .singlepart(body)
                    .singlepart(Attachment::new(name).body(pdf.to_vec(), content_type)),
            )
        }
        None => builder.singlepart(body),
    };
    built.map_err(|e| format!("the email does not build: {e}"))
}
