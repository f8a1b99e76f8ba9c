//! What the store says of a client's period beyond Google's figures: its searches,
//! reviews, the profile score as last read, the work done on the profile, what comes
//! next and the agency's notes — each formatted as the report shows it.

use crate::{Ctx, JobError};
use cep_shared::format::thousands;
use cep_shared::period::Period;
use cep_shared::signals::{ProfileSignals, Signal};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Keyword {
    pub keyword: String,
    pub searches: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reviews {
    pub new: String,
    pub new_average: String,
    pub total: String,
    pub average: String,
    pub answered: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Score {
    pub score: u32,
    pub coverage: String,
    pub read_on: String,
    pub change: String,
    pub signals: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Edit {
    pub on: String,
    pub what: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Post {
    pub on: String,
    pub topic: String,
    pub text: String,
    pub status: String,
}

pub fn day_of(ms: i64) -> String {
    cep_shared::clock::from_millis(ms)
        .format("%-d %B %Y")
        .to_string()
}

/// The searches that showed the profile in the period's month (the latest month whose
/// keywords are stored, for a week or a day), most first.
pub async fn keywords(
    ctx: &Ctx,
    client_id: &str,
    p: &Period,
) -> Result<(String, Vec<Keyword>), JobError> {
    let month = p.first.format("%Y-%m").to_string();
    let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT keyword, impressions, below FROM profile_keywords
          WHERE client_id = $1 AND month = $2 AND keyword <> ''
          ORDER BY COALESCE(impressions, 0) DESC, keyword LIMIT 10",
    )
    .bind(client_id)
    .bind(&month)
    .fetch_all(ctx.store.pool())
    .await?;
    let list = rows
        .into_iter()
        .map(|(keyword, n, below)| Keyword {
            keyword,
            searches: match (n, below) {
                (Some(n), _) => thousands(n),
                (None, Some(b)) => format!("fewer than {}", thousands(b)),
                (None, None) => "not known".into(),
            },
        })
        .collect();
    Ok((p.first.format("%B %Y").to_string(), list))
}

pub async fn reviews(ctx: &Ctx, client_id: &str, from: i64, to: i64) -> Result<Reviews, JobError> {
    let (new, new_stars, new_rated, new_answered): (i64, Option<i64>, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(SUM(stars) AS BIGINT), COUNT(stars),
                COUNT(CASE WHEN replied_at IS NOT NULL AND replied_at < $3 THEN 1 END)
           FROM profile_reviews WHERE client_id = $1 AND created_at >= $2 AND created_at < $3",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_one(ctx.store.pool())
    .await?;
    let (total, stars, rated): (i64, Option<i64>, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(SUM(stars) AS BIGINT), COUNT(stars) FROM profile_reviews
          WHERE client_id = $1 AND created_at < $2",
    )
    .bind(client_id)
    .bind(to)
    .fetch_one(ctx.store.pool())
    .await?;
    let mean = |sum: Option<i64>, n: i64| match sum {
        Some(s) if n > 0 => format!("{:.1} stars over {}", s as f64 / n as f64, thousands(n)),
        _ => "no ratings".into(),
    };
    Ok(Reviews {
        new: thousands(new),
        new_average: mean(new_stars, new_rated),
        total: thousands(total),
        average: mean(stars, rated),
        answered: if new == 0 {
            "no new reviews to answer".into()
        } else {
            format!(
                "{new_answered} of {new} ({:.0} %)",
                new_answered as f64 / new as f64 * 100.0
            )
        },
    })
}

/// What the report knows of the profile by a time: the last reading through the
/// client's account (`at`), else what prospecting found before it joined (no `at`).
pub struct Reading {
    pub at: Option<i64>,
    pub score: i64,
    pub coverage: f64,
    pub signals: ProfileSignals,
}

/// The last reading through the client's account before `before`.
async fn observation(ctx: &Ctx, client_id: &str, before: i64) -> Result<Option<Reading>, JobError> {
    let row: Option<(i64, i64, f64, String)> = sqlx::query_as(
        "SELECT observed_at, score, coverage, signals FROM profile_observations
          WHERE client_id = $1 AND observed_at < $2 ORDER BY observed_at DESC, id LIMIT 1",
    )
    .bind(client_id)
    .bind(before)
    .fetch_optional(ctx.store.pool())
    .await?;
    Ok(row.map(|(at, score, coverage, signals)| Reading {
        at: Some(at),
        score,
        coverage,
        signals: serde_json::from_str(&signals).unwrap_or_default(),
    }))
}

/// The profile as last known before `before`: read, or found by prospecting; none for
/// a client sold outside the pipeline whose profile was never read.
pub async fn last_reading(
    ctx: &Ctx,
    client_id: &str,
    before: i64,
) -> Result<Option<Reading>, JobError> {
    if let Some(read) = observation(ctx, client_id, before).await? {
        return Ok(Some(read));
    }
    let found: Option<(i64, f64, String)> = sqlx::query_as(
        "SELECT p.gbp_score, p.coverage, p.signals FROM clients c
           JOIN prospects p ON p.id = c.prospect_id WHERE c.id = $1",
    )
    .bind(client_id)
    .fetch_optional(ctx.store.pool())
    .await?;
    Ok(found.map(|(score, coverage, signals)| Reading {
        at: None,
        score,
        coverage,
        signals: serde_json::from_str(&signals).unwrap_or_default(),
    }))
}

/// The score as `reading` shows it, and what changed in the period from `from`.
pub async fn score(
    ctx: &Ctx,
    client_id: &str,
    from: i64,
    reading: &Reading,
) -> Result<Score, JobError> {
    let (read_on, change) = match reading.at {
        // Never read through the client's account: what prospecting found, said so.
        None => (
            "when we first looked at your listing, before you joined".to_owned(),
            "your profile has not been read through your account yet".to_owned(),
        ),
        Some(at) => {
            let before = observation(ctx, client_id, from).await?;
            let change = match before {
                Some(b) if at >= from => {
                    format!(
                        "{:+} points since the period began",
                        reading.score - b.score
                    )
                }
                Some(_) => "not read again this period".into(),
                None => "first reading".into(),
            };
            (day_of(at), change)
        }
    };
    let s = &reading.signals;
    Ok(Score {
        score: reading.score.clamp(0, 100) as u32,
        coverage: format!("{:.0} %", reading.coverage * 100.0),
        read_on,
        change,
        signals: Signal::ALL
            .iter()
            .map(|sig| {
                (
                    sig.label().to_owned(),
                    s.shown(*sig).unwrap_or_else(|| "unknown".into()),
                )
            })
            .collect(),
    })
}

/// Profile fields the agency filled in the period: empty before, the new value after.
pub async fn edits(ctx: &Ctx, client_id: &str, from: i64, to: i64) -> Result<Vec<Edit>, JobError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT updated_at, target, request FROM gbp_edits
          WHERE client_id = $1 AND kind = 'profile' AND status = 'applied'
            AND updated_at >= $2 AND updated_at < $3 ORDER BY updated_at, id",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_all(ctx.store.pool())
    .await?;
    let mut out = Vec::new();
    for (at, target, request) in rows {
        let body: serde_json::Value = serde_json::from_str(&request).unwrap_or_default();
        for field in target.split(',') {
            let (what, after) = match field {
                "profile.description" => ("Description", &body["profile"]["description"]),
                "websiteUri" => ("Website link", &body["websiteUri"]),
                other => (other, &body[other]),
            };
            out.push(Edit {
                on: day_of(at),
                what: what.into(),
                before: "empty".into(),
                after: after
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            });
        }
    }
    Ok(out)
}

pub async fn published(
    ctx: &Ctx,
    client_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Post>, JobError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT published_at, topic, body FROM posts
          WHERE client_id = $1 AND published_at >= $2 AND published_at < $3
          ORDER BY published_at, id",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, topic, body)| Post {
            on: day_of(at),
            topic,
            text: body.chars().take(200).collect(),
            status: "published".into(),
        })
        .collect())
}

pub async fn answered(ctx: &Ctx, client_id: &str, from: i64, to: i64) -> Result<i64, JobError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM gbp_edits WHERE client_id = $1 AND kind = 'review_reply'
            AND status = 'applied' AND updated_at >= $2 AND updated_at < $3",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_one(ctx.store.pool())
    .await?;
    Ok(n)
}

/// The work on the profile that comes next: what its last reading shows missing; for a
/// profile never read, the optimizations proposed for it.
pub async fn next_steps(
    ctx: &Ctx,
    client_id: &str,
    reading: Option<&Reading>,
) -> Result<Vec<String>, JobError> {
    if let Some(r) = reading {
        // Ten of each, as the score counts them.
        return Ok(r.signals.gaps(10, 10));
    }
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT kind FROM optimizations WHERE client_id = $1 ORDER BY kind",
    )
    .bind(client_id)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}

pub async fn planned(ctx: &Ctx, client_id: &str, after: i64) -> Result<Vec<Post>, JobError> {
    let rows: Vec<(i64, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT scheduled_for, topic, body, approved_at FROM posts
          WHERE client_id = $1 AND published_at IS NULL AND scheduled_for >= $2
          ORDER BY scheduled_for, id LIMIT 8",
    )
    .bind(client_id)
    .bind(after)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, topic, body, approved)| Post {
            on: day_of(at),
            topic,
            text: body.chars().take(200).collect(),
            status: if approved.is_some() {
                "approved".into()
            } else {
                "draft, awaiting approval".into()
            },
        })
        .collect())
}

pub async fn owed(ctx: &Ctx, client_id: &str) -> Result<Vec<String>, JobError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM documents WHERE client_id = $1 AND received_at IS NULL ORDER BY name",
    )
    .bind(client_id)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

pub async fn notes(ctx: &Ctx, report_id: &str) -> Result<Option<String>, JobError> {
    let row: Option<(Option<String>,)> = sqlx::query_as("SELECT notes FROM reports WHERE id = $1")
        .bind(report_id)
        .fetch_optional(ctx.store.pool())
        .await?;
    Ok(row.and_then(|(n,)| n).filter(|n| !n.trim().is_empty()))
}
