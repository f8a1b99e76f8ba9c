//! Pitch generation's SQL: the prospect a pitch is written for, the pitches it already
//! has, and a prospect's pitches saved with its new status and event.

use super::writer::{Channel, Pitch, PitchDraft};
use crate::{Ctx, JobError};
use cep_shared::signals::ProfileSignals;
use cep_shared::vocabulary::LeadClass;
use cep_shared::vocabulary::{EventKind, ProspectStatus};

/// What a pitch is written from.
pub struct Prospect {
    pub name: String,
    pub category: String,
    pub location: String,
    pub signals: ProfileSignals,
    pub gbp_score: u32,
    pub revenue_lost: u64,
    pub opportunities: Vec<String>,
    pub website: Option<String>,
}

type Row = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    String,
);

pub async fn prospect(ctx: &Ctx, id: &str) -> Result<Prospect, JobError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT name, category, location, signals, gbp_score, revenue_lost, opportunities, website, lead_class
           FROM prospects WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(ctx.store.pool())
    .await?;
    let Some((
        name,
        category,
        location,
        signals,
        score,
        revenue_lost,
        opportunities,
        website,
        class,
    )) = row
    else {
        return Err(JobError::Invalid(format!("no prospect `{id}`")));
    };
    if class == LeadClass::NeedsData.as_str() {
        return Err(JobError::Invalid(format!(
            "prospect `{id}` needs data: too few of its profile's signals are known to pitch it"
        )));
    }
    Ok(Prospect {
        name,
        category,
        location,
        signals: serde_json::from_str(&signals)?,
        gbp_score: score as u32,
        revenue_lost: revenue_lost as u64,
        opportunities: serde_json::from_str(&opportunities)?,
        website,
    })
}

/// The pitches a prospect already has, all four channels, or none.
pub async fn written(ctx: &Ctx, prospect_id: &str) -> Result<Option<Vec<PitchDraft>>, JobError> {
    let rows: Vec<(String, String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT channel, tone, variant, subject, body FROM pitches WHERE prospect_id = $1",
    )
    .bind(prospect_id)
    .fetch_all(ctx.store.pool())
    .await?;
    let mut drafts = Vec::new();
    for &channel in Channel::ALL {
        let Some((_, tone, variant, subject, body)) = rows.iter().find(|r| r.0 == channel.as_str())
        else {
            return Ok(None);
        };
        drafts.push(PitchDraft {
            channel,
            tone: tone.clone(),
            variant: variant.clone(),
            subject: subject.clone(),
            body: body.clone(),
        });
    }
    Ok(Some(drafts))
}

/// A prospect's pitches with their tones (kept as first written), its move to `pitched` and the
/// `pitched` event, in one transaction.
pub async fn save(
    ctx: &Ctx,
    prospect_id: &str,
    pitches: &[(Pitch, String)],
    written_by: &str,
    variant: &str,
) -> Result<(), JobError> {
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    for (p, tone) in pitches {
        sqlx::query(
            "INSERT INTO pitches (id, prospect_id, channel, tone, variant, subject, body, word_count, confidence, created_at, writer)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&p.id)
        .bind(prospect_id)
        .bind(p.channel.as_str())
        .bind(tone)
        .bind(&p.variant)
        .bind(&p.subject)
        .bind(&p.body)
        .bind(p.word_count as i64)
        .bind(p.confidence)
        .bind(now)
        .bind(written_by)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE prospects SET status = $3, updated_at = $2 WHERE id = $1 AND status = $4")
        .bind(prospect_id)
        .bind(now)
        .bind(ProspectStatus::Pitched.as_str())
        .bind(ProspectStatus::New.as_str())
        .execute(&mut *tx)
        .await?;
    let data = serde_json::json!({ "variant": variant });
    ctx.store
        .record_event(&mut *tx, EventKind::Pitched, prospect_id, data, now)
        .await?;
    tx.commit().await?;
    Ok(())
}
