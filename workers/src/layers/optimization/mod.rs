//! Layer 6: profile (GBP) optimization. A run completes the default optimizations a
//! client does not have yet (+5 points each, visibility 0.8 × the gain) and keeps a
//! rolling content calendar of posts, weeks ahead. A client linked to its Business
//! Profile gets the edits made there too ([`crate::layers::optimization::gbp`]).

pub mod gbp;

use crate::{Ctx, JobError};
use cep_shared::Layer;
use cep_shared::clock::{DAY, HOUR};
use cep_shared::config::OptimizationRules;
use cep_shared::ids::stable_id;
use cep_shared::jobs::OptimizationJob;
use cep_shared::store::Event;
use gbp::GbpSync;
use serde::{Deserialize, Serialize};

/// Score after `completed` optimizations, capped at 100.
pub fn score_after(before: u32, completed: u32, r: &OptimizationRules) -> u32 {
    (before + r.points_per_optimization * completed).min(100)
}

pub fn visibility_gain(score_gain: u32, r: &OptimizationRules) -> f64 {
    r.visibility_per_point * f64::from(score_gain)
}

pub fn posts_per_week(category: &str, r: &OptimizationRules) -> u32 {
    match category {
        "dental" => r.posts_per_week_dental,
        "hvac" => r.posts_per_week_hvac,
        "restaurant" => r.posts_per_week_restaurant,
        _ => r.posts_per_week_other,
    }
}

/// What a post is about, rotating so consecutive posts differ.
fn topic(category: &str, n: usize) -> (&'static str, String) {
    const TOPICS: [&str; 6] = [
        "seasonal offer",
        "team spotlight",
        "customer question answered",
        "behind the scenes",
        "service highlight",
        "local event",
    ];
    let t = TOPICS[n % TOPICS.len()];
    let body = match t {
        "seasonal offer" => format!(
            "This month only: a {category} check-up at a friendly price. Message us to book."
        ),
        "team spotlight" => {
            format!("Meet the people behind our {category} work: local, trained and glad to help.")
        }
        "customer question answered" => format!(
            "You asked how often a {category} visit is worth it. Here is our honest answer."
        ),
        "behind the scenes" => {
            format!("A look at how we prepare every {category} job before we arrive.")
        }
        "service highlight" => {
            format!("One {category} service people often miss, and why it saves money later.")
        }
        _ => format!(
            "We will be at this weekend's neighbourhood fair: come say hello to our {category} team."
        ),
    };
    (t, body)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizationResult {
    pub client_id: String,
    pub period: String,
    pub optimizations_completed: Vec<String>,
    pub score_before: u32,
    pub score_after: u32,
    pub visibility_gain: f64,
    pub posts_scheduled: usize,
    pub reason: Option<String>,
    /// The edits on the client's Business Profile, when it is linked.
    pub gbp: Option<GbpSync>,
}

/// The client as a run needs it; `website` from the prospect it was won from.
#[derive(sqlx::FromRow)]
struct ClientRow {
    business_type: String,
    gbp_score: i64,
    canceled_at: Option<i64>,
    gbp_location: Option<String>,
    business_name: String,
    website: Option<String>,
}

pub async fn handle(ctx: &Ctx, job: OptimizationJob) -> Result<OptimizationResult, JobError> {
    let r = &ctx.settings.layers.optimization;
    let pool = ctx.store.pool();
    let row: Option<ClientRow> = sqlx::query_as(
        "SELECT c.business_type, c.gbp_score, c.canceled_at, c.gbp_location, c.business_name, p.website
           FROM clients c LEFT JOIN prospects p ON p.id = c.prospect_id WHERE c.id = $1",
    )
    .bind(&job.client_id)
    .fetch_optional(pool)
    .await?;
    let Some(ClientRow {
        business_type: category,
        gbp_score: score,
        canceled_at,
        gbp_location,
        business_name,
        website,
    }) = row
    else {
        return Err(JobError::Invalid(format!("no client `{}`", job.client_id)));
    };
    let before = score.clamp(0, 100) as u32;
    let mut result = OptimizationResult {
        client_id: job.client_id.clone(),
        period: job.period.clone(),
        optimizations_completed: Vec::new(),
        score_before: before,
        score_after: before,
        visibility_gain: 0.0,
        posts_scheduled: 0,
        reason: None,
        gbp: None,
    };
    if canceled_at.is_some() {
        result.reason = Some("the client has canceled".into());
        return Ok(result);
    }
    let done: Vec<(String,)> =
        sqlx::query_as("SELECT kind FROM optimizations WHERE client_id = $1")
            .bind(&job.client_id)
            .fetch_all(pool)
            .await?;
    let done: std::collections::HashSet<String> = done.into_iter().map(|(k,)| k).collect();
    let todo: Vec<&String> = r.kinds[..r.default_run]
        .iter()
        .filter(|k| !done.contains(*k))
        .collect();
    let after = score_after(before, todo.len() as u32, r);
    let now = ctx.now();

    let mut tx = pool.begin().await?;
    for kind in &todo {
        sqlx::query(
            "INSERT INTO optimizations (id, client_id, period, kind, score_before, score_after, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(stable_id("opt", &[&job.client_id, kind]))
        .bind(&job.client_id)
        .bind(&job.period)
        .bind(kind.as_str())
        .bind(i64::from(before))
        .bind(i64::from(after))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE clients SET gbp_score = $2 WHERE id = $1")
        .bind(&job.client_id)
        .bind(i64::from(after))
        .execute(&mut *tx)
        .await?;
    // The content calendar: `calendar_weeks` of posts from this run, spread over each
    // week; ids per (client, day, slot) so weekly runs extend it without duplicates.
    let per_week = posts_per_week(&category, r);
    let week_start = now.div_euclid(DAY) * DAY;
    let mut posts = 0;
    for week in 0..r.calendar_weeks {
        for slot in 0..per_week {
            let day = week_start
                + i64::from(week) * 7 * DAY
                + i64::from(slot) * (7 * DAY / i64::from(per_week.max(1)));
            let date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(day)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let n = (day / DAY) as usize + slot as usize;
            let (t, body) = topic(&category, n);
            let inserted = sqlx::query(
                "INSERT INTO posts (id, client_id, scheduled_for, topic, body) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(stable_id("post", &[&job.client_id, &date, &slot.to_string()]))
            .bind(&job.client_id)
            .bind(day + 10 * HOUR)
            .bind(t)
            .bind(body)
            .execute(&mut *tx)
            .await?;
            posts += inserted.rows_affected() as usize;
        }
    }
    let gain = after - before;
    ctx.store
        .record_event(
            &mut *tx,
            Event {
                layer: Layer::Optimization,
                kind: "optimized",
                subject: &stable_id("optrun", &[&job.client_id, &job.period]),
                data: serde_json::json!({
                    "client": job.client_id, "completed": todo.len(),
                    "score_gain": gain, "visibility_gain": visibility_gain(gain, r),
                }),
                occurred_at: now,
            },
        )
        .await?;
    tx.commit().await?;
    result.optimizations_completed = todo.into_iter().cloned().collect();
    result.score_after = after;
    result.visibility_gain = visibility_gain(gain, r);
    result.posts_scheduled = posts;
    if let Some(location) = gbp_location {
        let client = gbp::Client {
            id: &job.client_id,
            business_name: &business_name,
            category: &category,
            website: website.as_deref(),
            location: &location,
        };
        result.gbp = Some(gbp::sync(ctx, &client).await?);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_optimizations_add_25_points_capped_at_100() {
        let r = OptimizationRules::default();
        assert_eq!(score_after(40, 5, &r), 65);
        assert_eq!(score_after(90, 5, &r), 100);
        assert!((visibility_gain(25, &r) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn posts_per_week_by_category() {
        let r = OptimizationRules::default();
        assert_eq!(posts_per_week("dental", &r), 2);
        assert_eq!(posts_per_week("hvac", &r), 1);
        assert_eq!(posts_per_week("restaurant", &r), 3);
        assert_eq!(posts_per_week("spa", &r), 1);
    }
}
