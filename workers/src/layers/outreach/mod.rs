//! Layer 3: each prospect's sequence (email, LinkedIn, SMS, phone) as delayed jobs, with
//! per-mailbox daily caps, the prospect's local send window, a suppression list and
//! RFC 8058 one-click unsubscribe on every email.
//!
//! A message is sent at most once. Its row moves `pending → sending → sent | recorded`
//! and the move to `sending` is claimed in the same transaction as the day's cap, so a
//! redelivered job finds the row past `pending` and never sends again. A row a dead
//! worker left in `sending` becomes `unknown`: flagged for a person, never resent.

pub mod inbound;
pub mod tasks;
pub mod twilio;
pub mod window;

use crate::clients::provider;
use crate::clients::smtp::{self, Composed, Mailer};
use crate::layers::params;
use crate::{Ctx, JobError};
use cep_shared::clock::HOUR;
use cep_shared::config::Provider;
use cep_shared::ids::stable_id;
use cep_shared::jobs::{FollowUp, FollowUpJob, OutreachJob, OutreachWork};
use cep_shared::queue::NewJob;
use cep_shared::store::Event;
use cep_shared::{JobKind, Layer};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

/// Prospect states after which no further message goes out.
pub const STOPPED: [&str; 4] = ["replied", "booked", "client", "stopped"];

/// The seed API's `OutreachResult` for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutreachResult {
    pub message_id: String,
    pub prospect_id: String,
    pub step: u32,
    pub channel: String,
    pub status: String,
    pub reason: Option<String>,
    pub next_step_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Prospect {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    status: String,
    utc_offset_minutes: i64,
}

/// The pitch a step sends.
pub struct PitchRow {
    pub id: String,
    pub subject: Option<String>,
    pub body: String,
    /// Append the booking link (a follow-up text carries its own wording).
    pub with_link: bool,
}

/// Who a step goes to.
pub struct Recipient<'a> {
    pub prospect_id: &'a str,
    pub name: &'a str,
    pub address: Option<&'a str>,
}

pub fn message_row_id(prospect_id: &str, step: u32) -> String {
    stable_id("msg", &[prospect_id, &step.to_string()])
}

/// The token of a one-click unsubscribe link: HMAC-SHA256 of the message id under the
/// unsubscribe key. Without a key (dry run only) links are marked `unsigned` and the
/// endpoint refuses them.
pub fn unsubscribe_token(key: Option<&str>, message_id: &str) -> String {
    match key {
        Some(key) => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                .expect("HMAC takes any key length");
            mac.update(message_id.as_bytes());
            hex::encode(&mac.finalize().into_bytes()[..16])
        }
        None => "unsigned".into(),
    }
}

/// Constant-time check of an unsubscribe token.
pub fn verify_unsubscribe_token(key: &str, message_id: &str, token: &str) -> bool {
    let Ok(given) = hex::decode(token) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(message_id.as_bytes());
    mac.verify_truncated_left(&given).is_ok() && given.len() == 16
}

/// The booking link of a pitch, tagged so a booking maps back to prospect and pitch.
pub fn booking_link(base: &str, channel: &str, prospect_id: &str, pitch_id: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!(
        "{base}{sep}utm_source=cep&utm_medium={channel}&utm_campaign={}&utm_content={}",
        url_escape(prospect_id),
        url_escape(pitch_id)
    )
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or(address)
}

/// Builds the message a step sends: for email the full RFC 5322 headers with RFC 8058
/// one-click unsubscribe and the postal address; for the other channels the text a
/// person works from.
pub fn compose(
    ctx: &Ctx,
    row_id: &str,
    channel: &str,
    to: &Recipient<'_>,
    pitch: &PitchRow,
    now: i64,
) -> Composed {
    let o = &ctx.settings.layers.outreach;
    let link = booking_link(
        &ctx.settings.layers.booking.scheduling_url,
        channel,
        to.prospect_id,
        &pitch.id,
    );
    if channel != "email" {
        return Composed {
            message_id: None,
            headers: Vec::new(),
            body: if pitch.with_link {
                format!("{}\n\nBooking link: {link}", pitch.body)
            } else {
                pitch.body.clone()
            },
        };
    }
    let domain = domain_of(&o.from_address);
    let message_id = format!("<{row_id}@{domain}>");
    let token = unsubscribe_token(ctx.secrets.unsubscribe_key.as_deref(), row_id);
    let unsubscribe_url = format!(
        "{}/unsubscribe/{row_id}?token={token}",
        ctx.settings.server.public_url.trim_end_matches('/')
    );
    let date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now)
        .map(|t| t.to_rfc2822())
        .unwrap_or_default();
    let headers = vec![
        (
            "From".into(),
            format!("\"{}\" <{}>", o.from_name, o.from_address),
        ),
        (
            "To".into(),
            format!("\"{}\" <{}>", to.name, to.address.unwrap_or_default()),
        ),
        (
            "Subject".into(),
            pitch
                .subject
                .clone()
                .unwrap_or_else(|| "A quick idea for your listing".into()),
        ),
        ("Date".into(), date),
        ("Message-ID".into(), message_id.clone()),
        (
            "List-Unsubscribe".into(),
            format!(
                "<{unsubscribe_url}>, <mailto:unsubscribe@{domain}?subject=unsubscribe%20{row_id}>"
            ),
        ),
        (
            "List-Unsubscribe-Post".into(),
            "List-Unsubscribe=One-Click".into(),
        ),
        ("MIME-Version".into(), "1.0".into()),
        ("Content-Type".into(), "text/plain; charset=utf-8".into()),
    ];
    let body = format!(
        "{}\n\nPick a time that suits you: {link}\n\n-- \n{}\n{}\nNot interested? Unsubscribe with one click: {unsubscribe_url}\n",
        pitch.body, o.from_name, o.postal_address
    );
    Composed {
        message_id: Some(message_id),
        headers,
        body,
    }
}

async fn load_prospect(ctx: &Ctx, id: &str) -> Result<Prospect, JobError> {
    sqlx::query_as(
        "SELECT name, email, phone, status, utc_offset_minutes FROM prospects WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(ctx.store.pool())
    .await?
    .ok_or_else(|| JobError::Invalid(format!("no prospect `{id}`")))
}

async fn load_pitch(ctx: &Ctx, prospect_id: &str, channel: &str) -> Result<PitchRow, JobError> {
    let row: Option<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT id, subject, body FROM pitches WHERE prospect_id = $1 AND channel = $2",
    )
    .bind(prospect_id)
    .bind(channel)
    .fetch_optional(ctx.store.pool())
    .await?;
    let (id, subject, body) = row.ok_or_else(|| {
        JobError::Invalid(format!(
            "prospect `{prospect_id}` has no {channel} pitch; pitch generation must run first"
        ))
    })?;
    Ok(PitchRow {
        id,
        subject,
        body,
        with_link: true,
    })
}

async fn is_suppressed(ctx: &Ctx, address: &str) -> Result<bool, JobError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT reason FROM suppressions WHERE address = $1")
            .bind(address.to_lowercase())
            .fetch_optional(ctx.store.pool())
            .await?;
    Ok(row.is_some())
}

/// The send window in force: the feedback loop's `send_hours`, else the configuration.
async fn send_hours(ctx: &Ctx) -> Result<(u32, u32), JobError> {
    let o = &ctx.settings.layers.outreach;
    let hours: Option<SendHours> = params::get(ctx, params::SEND_HOURS).await?;
    Ok(hours
        .filter(|h| h.start < h.end && h.end <= 24)
        .map(|h| (h.start, h.end))
        .unwrap_or((o.send_start_hour, o.send_end_hour)))
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SendHours {
    pub start: u32,
    pub end: u32,
}

fn cap_for(ctx: &Ctx, channel: &str) -> u32 {
    let c = &ctx.settings.layers.outreach.daily_caps;
    match channel {
        "email" => c.email,
        "linkedin" => c.linkedin,
        "phone" => c.phone,
        _ => c.sms,
    }
}

async fn set_status(
    ctx: &Ctx,
    row_id: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<(), JobError> {
    sqlx::query("UPDATE messages SET status = $2, reason = $3, updated_at = $4 WHERE id = $1")
        .bind(row_id)
        .bind(status)
        .bind(reason)
        .bind(ctx.now())
        .execute(ctx.store.pool())
        .await?;
    Ok(())
}

pub async fn handle(ctx: &Ctx, work: OutreachWork) -> Result<OutreachResult, JobError> {
    match work {
        OutreachWork::Step(job) => sequence_step(ctx, job).await,
        OutreachWork::FollowUp(job) => follow_up(ctx, job).await,
    }
}

/// Why a message will not go out, and whether the sequence goes on without it.
struct Skip {
    reason: String,
    go_on: bool,
}

fn skip(reason: impl Into<String>, go_on: bool) -> Option<Skip> {
    Some(Skip {
        reason: reason.into(),
        go_on,
    })
}

/// One message to deliver.
struct Delivery<'a> {
    prospect_id: &'a str,
    step: u32,
    channel: &'a str,
    prospect: Prospect,
    pitch: PitchRow,
    /// Where it goes: an email address or a phone number (none for LinkedIn).
    address: Option<String>,
    /// The sequence job to chain the next step from; none for a follow-up.
    chain: Option<&'a OutreachJob>,
    skip: Option<Skip>,
}

async fn sequence_step(ctx: &Ctx, job: OutreachJob) -> Result<OutreachResult, JobError> {
    let rules = &ctx.settings.layers.outreach;
    let step = rules.sequence.get(job.step as usize).ok_or_else(|| {
        JobError::Invalid(format!(
            "step {} is past the end of the {}-step sequence",
            job.step,
            rules.sequence.len()
        ))
    })?;
    let channel = step.channel.as_str();
    let prospect = load_prospect(ctx, &job.prospect_id).await?;
    let pitch = load_pitch(ctx, &job.prospect_id, channel).await?;
    let address = match channel {
        "email" => prospect.email.clone(),
        "sms" | "phone" => prospect.phone.clone(),
        _ => None,
    };
    // The sequence stops at the first reply, booking, bounce or opt-out.
    let skip = if STOPPED.contains(&prospect.status.as_str()) {
        skip(
            format!("sequence stopped: the prospect is {}", prospect.status),
            false,
        )
    } else if channel == "email" {
        match address.as_deref() {
            None => skip("the prospect has no email address", true),
            Some(a) if is_suppressed(ctx, a).await? => {
                skip(format!("{a} is on the suppression list"), false)
            }
            Some(_) => None,
        }
    } else if channel == "sms" {
        // No cold SMS: texts go only to prospects who replied or booked (follow-ups),
        // and those have left the sequence already.
        skip("no cold SMS: the prospect has not replied or booked", true)
    } else {
        None
    };
    deliver(
        ctx,
        Delivery {
            prospect_id: &job.prospect_id,
            step: job.step,
            channel,
            prospect,
            pitch,
            address,
            chain: Some(&job),
            skip,
        },
    )
    .await
}

/// The step number a follow-up's message row carries: past any sequence.
pub fn follow_up_step(f: FollowUp) -> u32 {
    match f {
        FollowUp::Booked => 100,
        FollowUp::Replied => 101,
    }
}

/// A warm text: a booking's confirmation, or the booking link after a reply.
async fn follow_up(ctx: &Ctx, job: FollowUpJob) -> Result<OutreachResult, JobError> {
    let prospect = load_prospect(ctx, &job.prospect_id).await?;
    let o = &ctx.settings.layers.outreach;
    let first = prospect.name.split_whitespace().next().unwrap_or("there");
    let body = match job.follow_up {
        FollowUp::Booked => format!(
            "Hi {first}, thanks for booking time with {}. We look forward to talking about your Google listing. Reply STOP to opt out.",
            o.from_name
        ),
        FollowUp::Replied => format!(
            "Hi {first}, thanks for your reply! Pick a time that suits you: {} (from {}). Reply STOP to opt out.",
            booking_link(
                &ctx.settings.layers.booking.scheduling_url,
                "sms",
                &job.prospect_id,
                &format!("follow-up:{}", job.follow_up.as_str())
            ),
            o.from_name
        ),
    };
    let status = prospect.status.as_str();
    let warm = match job.follow_up {
        FollowUp::Booked => matches!(status, "booked" | "client"),
        FollowUp::Replied => status == "replied",
    };
    let address = prospect.phone.clone();
    let skip = if !warm {
        skip(
            format!(
                "no cold SMS: a {} follow-up needs a prospect who {}, this one is {status}",
                job.follow_up.as_str(),
                job.follow_up.as_str()
            ),
            false,
        )
    } else {
        match address.as_deref() {
            None => skip("the prospect has no phone number", false),
            Some(a) if is_suppressed(ctx, a).await? => {
                skip(format!("{a} is on the suppression list"), false)
            }
            Some(_) => None,
        }
    };
    deliver(
        ctx,
        Delivery {
            prospect_id: &job.prospect_id,
            step: follow_up_step(job.follow_up),
            channel: "sms",
            prospect,
            pitch: PitchRow {
                id: format!("follow-up:{}", job.follow_up.as_str()),
                subject: None,
                body,
                with_link: false,
            },
            address,
            chain: None,
            skip,
        },
    )
    .await
}

/// The job for a follow-up text, keyed so each prospect gets each kind once.
pub fn follow_up_job(prospect_id: &str, follow_up: FollowUp, run_at: i64) -> NewJob {
    NewJob::new(
        JobKind::Layer(Layer::Outreach),
        &FollowUpJob {
            prospect_id: prospect_id.to_owned(),
            follow_up,
        },
        run_at,
    )
    .key(format!("outreach:{prospect_id}:{}", follow_up.as_str()))
}

/// Whether follow-up texts are worth enqueueing at all: the SMS cap is on.
pub fn texts_on(ctx: &Ctx) -> bool {
    ctx.settings.layers.outreach.daily_caps.sms > 0
}

/// How a message goes out: by machine, as a task for a person, or only recorded.
enum Route<'a> {
    Record,
    Task,
    Smtp(&'a Mailer),
    Twilio { to: &'a str },
}

fn route<'a>(ctx: &'a Ctx, channel: &str, address: Option<&'a str>) -> Route<'a> {
    if ctx.settings.layers.outreach.dry_run {
        return Route::Record;
    }
    match (channel, &ctx.mailer, address) {
        ("email", Some(mailer), _) => Route::Smtp(mailer),
        ("sms", _, Some(to)) if twilio::configured(ctx) => Route::Twilio { to },
        // LinkedIn, calls, and texts without an SMS account: work for a person.
        _ => Route::Task,
    }
}

async fn deliver(ctx: &Ctx, d: Delivery<'_>) -> Result<OutreachResult, JobError> {
    let rules = &ctx.settings.layers.outreach;
    let channel = d.channel;
    let row_id = message_row_id(d.prospect_id, d.step);
    let now = ctx.now();
    let pool = ctx.store.pool();

    sqlx::query(
        "INSERT INTO messages (id, prospect_id, pitch_id, step, channel, mailbox, status, due_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&row_id)
    .bind(d.prospect_id)
    .bind(&d.pitch.id)
    .bind(i64::from(d.step))
    .bind(channel)
    .bind(&rules.mailbox)
    .bind(now)
    .execute(pool)
    .await?;
    let (status,): (String,) = sqlx::query_as("SELECT status FROM messages WHERE id = $1")
        .bind(&row_id)
        .fetch_one(pool)
        .await?;
    let result = |status: &str, reason: Option<String>, next: Option<i64>| OutreachResult {
        message_id: row_id.clone(),
        prospect_id: d.prospect_id.to_owned(),
        step: d.step,
        channel: channel.to_owned(),
        status: status.to_owned(),
        reason,
        next_step_at: next,
    };

    match status.as_str() {
        // Already done by an earlier delivery: make sure the next step is chained.
        "sent" | "recorded" | "unknown" | "task" | "done" => {
            let next = chain_next(ctx, d.chain, now).await?;
            return Ok(result(&status, None, next));
        }
        "skipped" | "bounced" => return Ok(result(&status, None, None)),
        "sending" => {
            // The attempt that claimed this message died before recording the outcome:
            // it may or may not have gone out. Never resend blindly.
            let reason = "the worker stopped mid-send; whether it went out is unknown";
            flag_unknown(ctx, &row_id, channel, reason).await?;
            let next = chain_next(ctx, d.chain, now).await?;
            return Ok(result("unknown", Some(reason.into()), next));
        }
        _ => {}
    }

    let cap = cap_for(ctx, channel);
    let skip = d.skip.or_else(|| {
        (cap == 0).then(|| Skip {
            reason: format!("{channel} is switched off (daily cap 0)"),
            go_on: true,
        })
    });
    if let Some(Skip { reason, go_on }) = skip {
        set_status(ctx, &row_id, "skipped", Some(&reason)).await?;
        let next = if go_on {
            chain_next(ctx, d.chain, now).await?
        } else {
            None
        };
        return Ok(result("skipped", Some(reason), next));
    }

    // From here on the message is due: it counts in the sales container's efficiency.
    ctx.store
        .record_event(
            pool,
            Event {
                layer: Layer::Outreach,
                kind: "due",
                subject: &row_id,
                data: serde_json::json!({ "channel": channel }),
                occurred_at: now,
            },
        )
        .await?;

    let (start, end) = send_hours(ctx).await?;
    let open = window::next_open(
        now,
        d.prospect.utc_offset_minutes,
        &rules.send_days,
        start,
        end,
    );
    if open > now {
        let reason = format!("outside the prospect's send window ({start}:00–{end}:00 local)");
        set_status(ctx, &row_id, "deferred", Some(&reason)).await?;
        return Err(JobError::deferred(open, reason));
    }
    let route = route(ctx, channel, d.address.as_deref());
    if matches!(route, Route::Twilio { .. }) {
        provider::take_budget(ctx, Provider::Twilio, "").await?;
    }

    // Claim one unit of today's cap and the message in one transaction.
    let day = window::cap_day(now);
    let mut tx = pool.begin().await?;
    let claimed: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO send_counters (mailbox, channel, day, sent) VALUES ($1, $2, $3, 1)
         ON CONFLICT (mailbox, channel, day) DO UPDATE SET sent = send_counters.sent + 1
         WHERE send_counters.sent < $4
         RETURNING sent",
    )
    .bind(&rules.mailbox)
    .bind(channel)
    .bind(&day)
    .bind(i64::from(cap))
    .fetch_optional(&mut *tx)
    .await?;
    if claimed.is_none() {
        tx.rollback().await?;
        let reason = format!(
            "daily {channel} cap of {cap} reached for mailbox `{}`",
            rules.mailbox
        );
        set_status(ctx, &row_id, "deferred", Some(&reason)).await?;
        return Err(JobError::deferred(window::next_utc_midnight(now), reason));
    }
    let moved = sqlx::query(
        "UPDATE messages SET status = 'sending', sent_day = $2, reason = NULL, updated_at = $3
          WHERE id = $1 AND status IN ('pending', 'deferred')",
    )
    .bind(&row_id)
    .bind(&day)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        // Another delivery of this job got here first.
        tx.rollback().await?;
        return Err(JobError::Transient(format!(
            "message {row_id} is being sent by another attempt"
        )));
    }
    tx.commit().await?;

    let composed = compose(
        ctx,
        &row_id,
        channel,
        &Recipient {
            prospect_id: d.prospect_id,
            name: &d.prospect.name,
            address: d.address.as_deref(),
        },
        &d.pitch,
        now,
    );
    let sent = match route {
        Route::Smtp(mailer) => mailer.send(&composed, now).await.map(|()| ("sent", None)),
        Route::Twilio { to } => twilio::send(ctx, to, &composed.body)
            .await
            .map(|sid| ("sent", Some(sid))),
        Route::Task => Ok(("task", None)),
        Route::Record => Ok(("recorded", None)),
    };
    let (final_status, provider_id) = match sent {
        Ok(done) => done,
        Err(failure) => {
            return after_failed_send(ctx, &row_id, channel, &day, failure, d.chain)
                .await
                .map(|(status, reason, next)| result(status, Some(reason), next));
        }
    };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE messages SET status = $2, sent_at = $3, message_id = $4, headers = $5, body = $6, updated_at = $3
          WHERE id = $1 AND status = 'sending'",
    )
    .bind(&row_id)
    .bind(final_status)
    .bind(now)
    .bind(composed.message_id.as_ref().or(provider_id.as_ref()))
    .bind(serde_json::to_string(&composed.headers)?)
    .bind(&composed.body)
    .execute(&mut *tx)
    .await?;
    ctx.store
        .record_event(
            &mut *tx,
            Event {
                layer: Layer::Outreach,
                kind: "delivered",
                subject: &row_id,
                data: serde_json::json!({ "channel": channel, "step": d.step }),
                occurred_at: now,
            },
        )
        .await?;
    if d.chain.is_some() {
        ctx.store
            .record_event(
                &mut *tx,
                Event {
                    layer: Layer::Outreach,
                    kind: "contacted",
                    subject: d.prospect_id,
                    data: serde_json::json!({ "channel": channel, "step": d.step }),
                    occurred_at: now,
                },
            )
            .await?;
        sqlx::query(
            "UPDATE prospects SET status = 'contacted', updated_at = $2 WHERE id = $1 AND status IN ('new', 'pitched')",
        )
        .bind(d.prospect_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let next = chain_next(ctx, d.chain, now).await?;
    Ok(result(final_status, None, next))
}

/// What a send that did not succeed leaves behind. Refused for good: the message
/// bounced and its address is suppressed. Never taken: the message and its unit of the
/// day's cap go back, and the job retries. Unknown: flagged, never resent.
async fn after_failed_send(
    ctx: &Ctx,
    row_id: &str,
    channel: &str,
    day: &str,
    failure: smtp::SendFailure,
    chain: Option<&OutreachJob>,
) -> Result<(&'static str, String, Option<i64>), JobError> {
    let now = ctx.now();
    let pool = ctx.store.pool();
    let mailbox = &ctx.settings.layers.outreach.mailbox;
    match failure {
        smtp::SendFailure::NotSent(reason) => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE messages SET status = 'pending', reason = $2, updated_at = $3 WHERE id = $1 AND status = 'sending'",
            )
            .bind(row_id)
            .bind(&reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE send_counters SET sent = sent - 1 WHERE mailbox = $1 AND channel = $2 AND day = $3 AND sent > 0",
            )
            .bind(mailbox)
            .bind(channel)
            .bind(day)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Err(JobError::Transient(reason))
        }
        smtp::SendFailure::Rejected(reason) => {
            bounce(ctx, row_id, &reason, now).await?;
            Ok(("bounced", reason, None))
        }
        smtp::SendFailure::Unknown(reason) => {
            flag_unknown(ctx, row_id, channel, &reason).await?;
            let next = chain_next(ctx, chain, now).await?;
            Ok(("unknown", reason, next))
        }
    }
}

/// A message that may or may not have gone out: flagged for a person, never resent.
async fn flag_unknown(
    ctx: &Ctx,
    row_id: &str,
    channel: &str,
    reason: &str,
) -> Result<(), JobError> {
    set_status(ctx, row_id, "unknown", Some(reason)).await?;
    ctx.store
        .record_event(
            ctx.store.pool(),
            Event {
                layer: Layer::Outreach,
                kind: "send_unknown",
                subject: row_id,
                data: serde_json::json!({ "channel": channel, "reason": reason }),
                occurred_at: ctx.now(),
            },
        )
        .await?;
    tracing::warn!(message = %row_id, %reason, "message outcome unknown; flagged, not resent");
    Ok(())
}

/// A hard bounce (refused at send time or reported later): the message bounced and its
/// address is suppressed.
pub async fn bounce(ctx: &Ctx, row_id: &str, reason: &str, at: i64) -> Result<(), JobError> {
    sqlx::query(
        "UPDATE messages SET status = 'bounced', reason = $2, updated_at = $3 WHERE id = $1",
    )
    .bind(row_id)
    .bind(reason)
    .bind(at)
    .execute(ctx.store.pool())
    .await?;
    if let Some(address) = recipient_of(ctx, row_id).await? {
        suppress(ctx, &address, &format!("hard bounce: {reason}"), at).await?;
    }
    Ok(())
}

/// The job for one step of a prospect's sequence, keyed so each step is enqueued once.
pub fn step_job(prospect_id: &str, step: u32, run_at: i64) -> NewJob {
    NewJob::new(
        JobKind::Layer(Layer::Outreach),
        &OutreachJob {
            prospect_id: prospect_id.to_owned(),
            step,
        },
        run_at,
    )
    .key(format!("outreach:{prospect_id}:{step}"))
}

/// Enqueues the sequence's next step, timed from the first send; keyed so a redelivery
/// enqueues it once. A follow-up (no sequence job) chains nothing.
async fn chain_next(
    ctx: &Ctx,
    job: Option<&OutreachJob>,
    now: i64,
) -> Result<Option<i64>, JobError> {
    let Some(job) = job else {
        return Ok(None);
    };
    let seq = &ctx.settings.layers.outreach.sequence;
    let next = job.step + 1;
    let Some(step) = seq.get(next as usize) else {
        return Ok(None);
    };
    let first: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT sent_at FROM messages WHERE prospect_id = $1 AND step = 0")
            .bind(&job.prospect_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    let base = first.and_then(|(t,)| t).unwrap_or(now);
    let run_at = (base + i64::from(step.offset_hours) * HOUR).max(now);
    ctx.queue
        .push(step_job(&job.prospect_id, next, run_at))
        .await?;
    Ok(Some(run_at))
}

/// A reply to one of our messages: the prospect leaves the sequence. Returns false when
/// the message is unknown.
pub async fn record_reply(ctx: &Ctx, message_row_id: &str, at: i64) -> Result<bool, JobError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT prospect_id FROM messages WHERE id = $1")
        .bind(message_row_id)
        .fetch_optional(ctx.store.pool())
        .await?;
    let Some((prospect_id,)) = row else {
        return Ok(false);
    };
    let mut tx = ctx.store.pool().begin().await?;
    let first = sqlx::query(
        "UPDATE prospects SET status = 'replied', updated_at = $2 WHERE id = $1 AND status IN ('new', 'pitched', 'contacted')",
    )
    .bind(&prospect_id)
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    ctx.store
        .record_event(
            &mut *tx,
            Event {
                layer: Layer::Outreach,
                kind: "replied",
                subject: &prospect_id,
                data: serde_json::json!({ "message": message_row_id }),
                occurred_at: at,
            },
        )
        .await?;
    tx.commit().await?;
    if first && texts_on(ctx) {
        ctx.queue
            .push(follow_up_job(&prospect_id, FollowUp::Replied, at))
            .await?;
    }
    Ok(true)
}

/// An opt-out or hard bounce: the address goes on the suppression list every later send
/// checks, and its prospects leave the sequence.
pub async fn suppress(ctx: &Ctx, address: &str, reason: &str, at: i64) -> Result<(), JobError> {
    let address = address.trim().to_lowercase();
    let mut tx = ctx.store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO suppressions (address, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING",
    )
    .bind(&address)
    .bind(reason)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE prospects SET status = 'stopped', updated_at = $2
          WHERE (LOWER(email) = $1 OR phone = $1) AND status IN ('new', 'pitched', 'contacted', 'replied')",
    )
    .bind(&address)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    ctx.store
        .record_event(
            &mut *tx,
            Event {
                layer: Layer::Outreach,
                kind: "suppressed",
                subject: &address,
                data: serde_json::json!({ "reason": reason }),
                occurred_at: at,
            },
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The address a message went to (an email address, or a phone number for texts and
/// calls), for the unsubscribe endpoint and bounces.
pub async fn recipient_of(ctx: &Ctx, message_row_id: &str) -> Result<Option<String>, JobError> {
    let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT m.channel, p.email, p.phone FROM messages m JOIN prospects p ON p.id = m.prospect_id WHERE m.id = $1",
    )
    .bind(message_row_id)
    .fetch_optional(ctx.store.pool())
    .await?;
    Ok(
        row.and_then(|(channel, email, phone)| match channel.as_str() {
            "sms" | "phone" => phone,
            _ => email,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_tokens_verify_only_for_their_message_and_key() {
        let t = unsubscribe_token(Some("k1"), "msg_1");
        assert_eq!(t.len(), 32);
        assert!(verify_unsubscribe_token("k1", "msg_1", &t));
        assert!(!verify_unsubscribe_token("k1", "msg_2", &t));
        assert!(!verify_unsubscribe_token("k2", "msg_1", &t));
        assert!(!verify_unsubscribe_token("k1", "msg_1", "unsigned"));
        assert!(!verify_unsubscribe_token("k1", "msg_1", &t[..8]));
    }

    #[test]
    fn booking_links_carry_prospect_and_pitch() {
        let l = booking_link(
            "https://cal.example/x",
            "email",
            "dir:miami-fl:dental:001",
            "pitch_1",
        );
        assert_eq!(
            l,
            "https://cal.example/x?utm_source=cep&utm_medium=email&utm_campaign=dir%3Amiami-fl%3Adental%3A001&utm_content=pitch_1"
        );
    }
}
