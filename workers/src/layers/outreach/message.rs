//! A message's status machine and its delivery. A row moves
//! `pending → sending → sent | recorded | task`; the move to `sending` is claimed in the
//! same transaction as the day's cap, so a redelivered job finds the row past `pending`
//! and never sends again. A row a dead worker left in `sending` becomes `unknown`:
//! flagged for a person, never resent. Replies and bounces settle it from outside.

use super::compose::{PitchRow, Recipient, compose, new_message_id};
use super::rules::{Skip, texts_on};
use super::sequence::chain_next;
use super::store::{self, Prospect};
use super::suppression::{recipient_of, suppress};
use super::{twilio, window};
use crate::clients::provider;
use crate::clients::smtp::{Mailer, SendFailure};
use crate::{Ctx, JobError};
use cep_shared::config::Provider;
use cep_shared::ids::stable_id;
use cep_shared::jobs::{FollowUp, FollowUpJob, OutreachJob};
use cep_shared::queue::NewJob;
use cep_shared::vocabulary::{Channel, EventKind, MessageStatus, ProspectStatus};

/// The id of a prospect's message row for one step.
pub fn message_row_id(prospect_id: &str, step: u32) -> String {
    stable_id("msg", &[prospect_id, &step.to_string()])
}

/// Where a delivery left its message, and when the next step is due.
pub struct Settled {
    pub status: MessageStatus,
    pub reason: Option<String>,
    pub next_step_at: Option<i64>,
}

/// One message to deliver.
pub struct Delivery<'a> {
    pub prospect_id: &'a str,
    pub step: u32,
    pub channel: Channel,
    pub prospect: Prospect,
    pub pitch: PitchRow,
    /// Where it goes: an email address or a phone number (none for LinkedIn).
    pub address: Option<String>,
    /// The sequence job to chain the next step from; none for a follow-up.
    pub chain: Option<&'a OutreachJob>,
    pub skip: Option<Skip>,
}

/// How a message goes out: by machine, as a task for a person, or only recorded.
enum Route<'a> {
    Record,
    Task,
    Smtp(&'a Mailer),
    Twilio { to: &'a str },
}

fn route<'a>(ctx: &'a Ctx, channel: Channel, address: Option<&'a str>) -> Route<'a> {
    if ctx.settings.layers.outreach.dry_run {
        return Route::Record;
    }
    match (channel, &ctx.mailer, address) {
        (Channel::Email, Some(mailer), _) => Route::Smtp(mailer),
        (Channel::Sms, _, Some(to)) if twilio::configured(ctx) => Route::Twilio { to },
        // LinkedIn, calls, and texts without an SMS account: work for a person.
        _ => Route::Task,
    }
}

pub async fn deliver(ctx: &Ctx, d: Delivery<'_>) -> Result<Settled, JobError> {
    let rules = &ctx.settings.layers.outreach;
    let channel = d.channel;
    let row_id = message_row_id(d.prospect_id, d.step);
    let now = ctx.now();
    let pool = ctx.store.pool();

    sqlx::query(
        "INSERT INTO messages (id, prospect_id, pitch_id, step, channel, mailbox, status, due_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $8, $7, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&row_id)
    .bind(d.prospect_id)
    .bind(&d.pitch.id)
    .bind(i64::from(d.step))
    .bind(channel.as_str())
    .bind(&rules.mailbox)
    .bind(now)
    .bind(MessageStatus::Pending.as_str())
    .execute(pool)
    .await?;
    let (status,): (String,) = sqlx::query_as("SELECT status FROM messages WHERE id = $1")
        .bind(&row_id)
        .fetch_one(pool)
        .await?;
    let status: MessageStatus = status
        .parse()
        .map_err(|e| JobError::Invalid(format!("message {row_id}: {e}")))?;
    let result = |status, reason, next_step_at| Settled {
        status,
        reason,
        next_step_at,
    };

    match status {
        // Already done by an earlier delivery: make sure the next step is chained.
        s if s.delivered() => {
            let next = chain_next(ctx, d.chain, now).await?;
            return Ok(result(status, None, next));
        }
        MessageStatus::Skipped | MessageStatus::Bounced => return Ok(result(status, None, None)),
        MessageStatus::Sending => {
            // The attempt that claimed this message died before recording the outcome:
            // it may or may not have gone out. Never resend blindly.
            let reason = "the worker stopped mid-send; whether it went out is unknown";
            flag_unknown(ctx, &row_id, channel, reason).await?;
            let next = chain_next(ctx, d.chain, now).await?;
            return Ok(result(MessageStatus::Unknown, Some(reason.into()), next));
        }
        _ => {}
    }

    let cap = rules.daily_caps.get(channel);
    let skip = d.skip.or_else(|| {
        (cap == 0).then(|| Skip {
            reason: format!("{channel} is switched off (daily cap 0)"),
            go_on: true,
        })
    });
    if let Some(Skip { reason, go_on }) = skip {
        store::set_status(ctx, &row_id, MessageStatus::Skipped, Some(&reason)).await?;
        let next = if go_on {
            chain_next(ctx, d.chain, now).await?
        } else {
            None
        };
        return Ok(result(MessageStatus::Skipped, Some(reason), next));
    }

    // From here on the message is due: it counts in the sales container's efficiency.
    ctx.store
        .record_event(
            pool,
            EventKind::Due,
            &row_id,
            serde_json::json!({ "channel": channel }),
            now,
        )
        .await?;

    let (start, end) = store::send_hours(ctx).await?;
    let open = window::next_open(
        now,
        d.prospect.utc_offset_minutes,
        &rules.send_days,
        start,
        end,
    );
    if open > now {
        let reason = format!("outside the prospect's send window ({start}:00–{end}:00 local)");
        store::set_status(ctx, &row_id, MessageStatus::Deferred, Some(&reason)).await?;
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
    .bind(channel.as_str())
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
        store::set_status(ctx, &row_id, MessageStatus::Deferred, Some(&reason)).await?;
        return Err(JobError::deferred(window::next_utc_midnight(now), reason));
    }
    // The Message-ID and the address are kept from the claim on, so a reply to a mail
    // whose outcome is unknown still finds it.
    let message_id = new_message_id(&rules.from_address)
        .map_err(|e| JobError::Transient(format!("no random Message-ID: {e}")))?;
    let address = d.address.as_deref().map(|a| match channel {
        Channel::Email => a.trim().to_lowercase(),
        _ => a.to_owned(),
    });
    let moved = sqlx::query(
        "UPDATE messages SET status = $4, sent_day = $2, reason = NULL, updated_at = $3,
                message_id = $7, address = $8
          WHERE id = $1 AND status IN ($5, $6)",
    )
    .bind(&row_id)
    .bind(&day)
    .bind(now)
    .bind(MessageStatus::Sending.as_str())
    .bind(MessageStatus::Pending.as_str())
    .bind(MessageStatus::Deferred.as_str())
    .bind((channel == Channel::Email).then_some(&message_id))
    .bind(&address)
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
        &message_id,
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
        Route::Smtp(mailer) => mailer
            .send(&composed, now)
            .await
            .map(|()| (MessageStatus::Sent, None)),
        Route::Twilio { to } => twilio::send(ctx, to, &composed.body)
            .await
            .map(|sid| (MessageStatus::Sent, Some(sid))),
        Route::Task => Ok((MessageStatus::Task, None)),
        Route::Record => Ok((MessageStatus::Recorded, None)),
    };
    let (final_status, provider_id) = match sent {
        Ok(done) => done,
        Err(failure) => {
            return after_failed_send(ctx, &row_id, channel, &day, failure, d.chain).await;
        }
    };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE messages SET status = $2, sent_at = $3, message_id = $4, headers = $5, body = $6, updated_at = $3
          WHERE id = $1 AND status = $7",
    )
    .bind(&row_id)
    .bind(final_status.as_str())
    .bind(now)
    .bind(composed.message_id.as_ref().or(provider_id.as_ref()))
    .bind(serde_json::to_string(&composed.headers)?)
    .bind(&composed.body)
    .bind(MessageStatus::Sending.as_str())
    .execute(&mut *tx)
    .await?;
    ctx.store
        .record_event(
            &mut *tx,
            EventKind::Delivered,
            &row_id,
            serde_json::json!({ "channel": channel, "step": d.step }),
            now,
        )
        .await?;
    if d.chain.is_some() {
        ctx.store
            .record_event(
                &mut *tx,
                EventKind::Contacted,
                d.prospect_id,
                serde_json::json!({ "channel": channel, "step": d.step }),
                now,
            )
            .await?;
        sqlx::query(
            "UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status IN ($4, $5)",
        )
        .bind(d.prospect_id)
        .bind(now)
        .bind(ProspectStatus::Contacted.as_str())
        .bind(ProspectStatus::New.as_str())
        .bind(ProspectStatus::Pitched.as_str())
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
    channel: Channel,
    day: &str,
    failure: SendFailure,
    chain: Option<&OutreachJob>,
) -> Result<Settled, JobError> {
    let now = ctx.now();
    let pool = ctx.store.pool();
    let mailbox = &ctx.settings.layers.outreach.mailbox;
    match failure {
        SendFailure::NotSent(reason) => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE messages SET status = $4, reason = $2, updated_at = $3 WHERE id = $1 AND status = $5",
            )
            .bind(row_id)
            .bind(&reason)
            .bind(now)
            .bind(MessageStatus::Pending.as_str())
            .bind(MessageStatus::Sending.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE send_counters SET sent = sent - 1 WHERE mailbox = $1 AND channel = $2 AND day = $3 AND sent > 0",
            )
            .bind(mailbox)
            .bind(channel.as_str())
            .bind(day)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Err(JobError::Transient(reason))
        }
        SendFailure::Rejected(reason) => {
            bounce(ctx, row_id, &reason, now).await?;
            Ok(Settled {
                status: MessageStatus::Bounced,
                reason: Some(reason),
                next_step_at: None,
            })
        }
        SendFailure::Unknown(reason) => {
            flag_unknown(ctx, row_id, channel, &reason).await?;
            let next_step_at = chain_next(ctx, chain, now).await?;
            Ok(Settled {
                status: MessageStatus::Unknown,
                reason: Some(reason),
                next_step_at,
            })
        }
    }
}

/// A message that may or may not have gone out: flagged for a person, never resent.
async fn flag_unknown(
    ctx: &Ctx,
    row_id: &str,
    channel: Channel,
    reason: &str,
) -> Result<(), JobError> {
    store::set_status(ctx, row_id, MessageStatus::Unknown, Some(reason)).await?;
    ctx.store
        .record_event(
            ctx.store.pool(),
            EventKind::SendUnknown,
            row_id,
            serde_json::json!({ "channel": channel, "reason": reason }),
            ctx.now(),
        )
        .await?;
    tracing::warn!(message = %row_id, %reason, "message outcome unknown; flagged, not resent");
    Ok(())
}

/// A hard bounce (refused at send time or reported later): the message bounced and its
/// address is suppressed.
pub async fn bounce(ctx: &Ctx, row_id: &str, reason: &str, at: i64) -> Result<(), JobError> {
    sqlx::query("UPDATE messages SET status = $4, reason = $2, updated_at = $3 WHERE id = $1")
        .bind(row_id)
        .bind(reason)
        .bind(at)
        .bind(MessageStatus::Bounced.as_str())
        .execute(ctx.store.pool())
        .await?;
    if let Some(address) = recipient_of(ctx, row_id).await? {
        suppress(ctx, &address, &format!("hard bounce: {reason}"), at).await?;
    }
    Ok(())
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
        "UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status IN ($4, $5, $6)",
    )
    .bind(&prospect_id)
    .bind(at)
    .bind(ProspectStatus::Replied.as_str())
    .bind(ProspectStatus::New.as_str())
    .bind(ProspectStatus::Pitched.as_str())
    .bind(ProspectStatus::Contacted.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    ctx.store
        .record_event(
            &mut *tx,
            EventKind::Replied,
            &prospect_id,
            serde_json::json!({ "message": message_row_id }),
            at,
        )
        .await?;
    store::close_open(&mut *tx, &prospect_id, "closed: the prospect replied", at).await?;
    tx.commit().await?;
    if first && texts_on(&ctx.settings.layers.outreach) {
        ctx.queue
            .push(NewJob::of(
                &FollowUpJob {
                    prospect_id: prospect_id.clone(),
                    follow_up: FollowUp::Replied,
                },
                at,
            ))
            .await?;
    }
    Ok(true)
}
