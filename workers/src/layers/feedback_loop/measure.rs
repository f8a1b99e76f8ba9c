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
    let started = n(EventKind::Started).await?;
    let confidence = scalar(
        ctx,
        "SELECT AVG(confidence) FROM pitches WHERE created_at >= $1 AND created_at < $2",
        from,
        to,
    )
    .await?;
    let (held, meetings): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN status = $3 THEN 1 ELSE 0 END), 0), COUNT(*)
           FROM meetings WHERE start_at >= $1 AND start_at < $2",
    )
    .bind(from)
    .bind(to)
    .bind(MeetingState::Scheduled.as_str())
    .fetch_one(ctx.store.pool())
    .await?;
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
        let client = v["client"].as_str().unwrap_or_default().to_owned();
        *per_client.entry(client).or_default() += v["score_gain"].as_f64().unwrap_or(0.0);
    }
    let score_gain = (!per_client.is_empty())
        .then(|| per_client.values().sum::<f64>() / per_client.len() as f64);
    Ok(Counts {
        found,
        contacted,
        replied,
        bookings,
        started,
        pitch_confidence: confidence,
        meetings_held: held as f64,
        meetings: meetings as f64,
        score_gain,
    })
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
