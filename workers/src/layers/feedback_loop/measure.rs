//! What the feedback loop measures, read from the store: the window's counts, reply
//! rates by pitch variant or category, and by the hour of the send.

use super::rules::Counts;
use crate::{Ctx, JobError};
use cep_shared::Layer;
use cep_shared::clock::{DAY, HOUR, MINUTE};
use cep_shared::phi::ratio;
use cep_shared::vocabulary::{Channel, EventKind, MeetingState, ProspectStatus};
use std::collections::BTreeMap;

async fn scalar(ctx: &Ctx, sql: &'static str, from: i64, to: i64) -> Result<Option<f64>, JobError> {
    let (v,): (Option<f64>,) = sqlx::query_as(sql)
        .bind(from)
        .bind(to)
        .fetch_one(ctx.store.pool())
        .await?;
    Ok(v)
}

/// What `[from, to)` recorded, counted for the measures.
pub async fn counts(ctx: &Ctx, from: i64, to: i64) -> Result<Counts, JobError> {
    let s = &ctx.store;
    let n = |kind| async move { s.count_events(kind, from, to).await.map(|n| n as f64) };
    let found = n(EventKind::ProspectFound).await?;
    let contacted = n(EventKind::Contacted).await?;
    let replied = n(EventKind::Replied).await?;
    let bookings = (n(EventKind::Booked).await? - n(EventKind::Canceled).await?).max(0.0);
    let confidence = scalar(
        ctx,
        "SELECT AVG(confidence) FROM pitches WHERE created_at >= $1 AND created_at < $2",
        from,
        to,
    )
    .await?;
    let m = meeting_outcomes(ctx, from, to).await?;
    let gains: Vec<(String,)> = sqlx::query_as(
        "SELECT data FROM events WHERE layer = $3 AND kind = $4
           AND occurred_at >= $1 AND occurred_at < $2",
    )
    .bind(from)
    .bind(to)
    .bind(EventKind::Optimized.layer().as_str())
    .bind(EventKind::Optimized.as_str())
    .fetch_all(ctx.store.pool())
    .await?;
    let mut per_client: BTreeMap<String, f64> = BTreeMap::new();
    for (data,) in gains {
        let v: serde_json::Value = serde_json::from_str(&data)?;
        // Only measured gains count; a run that measured nothing says null.
        if let Some(gain) = v["score_gain"].as_f64() {
            let client = v["client"].as_str().unwrap_or_default().to_owned();
            *per_client.entry(client).or_default() += gain;
        }
    }
    let score_gain = (!per_client.is_empty())
        .then(|| per_client.values().sum::<f64>() / per_client.len() as f64);
    Ok(Counts {
        found,
        contacted,
        replied,
        bookings,
        pitch_confidence: confidence,
        held: m.held as f64,
        no_show: m.no_show as f64,
        won: m.won as f64,
        score_gain,
    })
}

/// What came of the meetings that started in `[from, to)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeetingOutcomes {
    /// Took place: won, lost or not decided yet.
    pub held: i64,
    pub no_show: i64,
    pub won: i64,
}

impl MeetingOutcomes {
    /// Held ÷ (held + no-show), with its sample.
    pub fn show_rate(&self) -> (Option<f64>, i64) {
        let n = self.held + self.no_show;
        (ratio(self.held as f64, n as f64), n)
    }

    /// Won ÷ held, with its sample.
    pub fn close_rate(&self) -> (Option<f64>, i64) {
        (ratio(self.won as f64, self.held as f64), self.held)
    }
}

pub async fn meeting_outcomes(ctx: &Ctx, from: i64, to: i64) -> Result<MeetingOutcomes, JobError> {
    let (held, no_show, won): (i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN status IN ($3, $4, $5) THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN status = $6 THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN status = $4 THEN 1 ELSE 0 END), 0)
           FROM meetings WHERE start_at >= $1 AND start_at < $2",
    )
    .bind(from)
    .bind(to)
    .bind(MeetingState::Held.as_str())
    .bind(MeetingState::Won.as_str())
    .bind(MeetingState::Lost.as_str())
    .bind(MeetingState::NoShow.as_str())
    .fetch_one(ctx.store.pool())
    .await?;
    Ok(MeetingOutcomes { held, no_show, won })
}

/// Reply rate per pitch variant over the window: `(replied, contacted)` by variant.
pub async fn replies_by(
    ctx: &Ctx,
    column: &'static str,
    from: i64,
    to: i64,
) -> Result<BTreeMap<String, (f64, f64)>, JobError> {
    let sql = format!(
        "SELECT {column}, e.kind FROM events e JOIN prospects p ON p.id = e.subject
           JOIN pitches pi ON pi.prospect_id = p.id AND pi.channel = $3
          WHERE e.layer = $4 AND e.kind IN ($5, $6)
            AND e.occurred_at >= $1 AND e.occurred_at < $2"
    );
    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .bind(Channel::Email.as_str())
        .bind(Layer::Outreach.as_str())
        .bind(EventKind::Contacted.as_str())
        .bind(EventKind::Replied.as_str())
        .fetch_all(ctx.store.pool())
        .await?;
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (key, kind) in rows {
        let e = out.entry(key).or_default();
        if kind == EventKind::Replied.as_str() {
            e.0 += 1.0;
        } else {
            e.1 += 1.0;
        }
    }
    Ok(out)
}

/// Reply rate of email sends whose prospect-local hour was in `[start, end)`.
pub async fn replies_in_hours(
    ctx: &Ctx,
    from: i64,
    to: i64,
    start: u32,
    end: u32,
) -> Result<Option<f64>, JobError> {
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT m.sent_at, p.utc_offset_minutes, p.status FROM messages m JOIN prospects p ON p.id = m.prospect_id
          WHERE m.channel = $3 AND m.step = 0 AND m.sent_at >= $1 AND m.sent_at < $2",
    )
    .bind(from)
    .bind(to)
    .bind(Channel::Email.as_str())
    .fetch_all(ctx.store.pool())
    .await?;
    let mut sent = 0.0;
    let mut replied = 0.0;
    for (at, offset, status) in rows {
        let hour = ((at + offset * MINUTE).rem_euclid(DAY) / HOUR) as u32;
        if (start..end).contains(&hour) {
            sent += 1.0;
            if status
                .parse::<ProspectStatus>()
                .is_ok_and(ProspectStatus::has_replied)
            {
                replied += 1.0;
            }
        }
    }
    Ok(ratio(replied, sent))
}
