//! What a client's report says, gathered from the store: the profile's performance
//! against the period before (as Google reported it, day by day), the last six
//! periods, its reviews, its score with the signals behind it, the work done, what
//! comes next and the agency's notes. Every number is formatted here, as a person reads
//! it; an unknown one says so.

use crate::layers::optimization::performance::DAILY_METRICS;
use crate::{Ctx, JobError};
use cep_shared::format::thousands;
use cep_shared::period::{Kind, Period};
use cep_shared::signals::{ProfileSignals, Signal};
use serde::Serialize;
use std::collections::BTreeMap;

/// A headline figure: the sum of some daily metrics.
pub struct Headline {
    pub name: &'static str,
    pub label: &'static str,
    pub metrics: &'static [&'static str],
}

pub const HEADLINES: [Headline; 5] = [
    Headline {
        name: "views",
        label: "Profile views",
        metrics: &[
            "BUSINESS_IMPRESSIONS_DESKTOP_MAPS",
            "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH",
            "BUSINESS_IMPRESSIONS_MOBILE_MAPS",
            "BUSINESS_IMPRESSIONS_MOBILE_SEARCH",
        ],
    },
    Headline {
        name: "search_views",
        label: "Views from Google Search",
        metrics: &[
            "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH",
            "BUSINESS_IMPRESSIONS_MOBILE_SEARCH",
        ],
    },
    Headline {
        name: "calls",
        label: "Calls",
        metrics: &["CALL_CLICKS"],
    },
    Headline {
        name: "directions",
        label: "Direction requests",
        metrics: &["BUSINESS_DIRECTION_REQUESTS"],
    },
    Headline {
        name: "website_clicks",
        label: "Website clicks",
        metrics: &["WEBSITE_CLICKS"],
    },
];

/// Where views came from, by platform and device.
const BREAKDOWN: [(&str, &str); 4] = [
    ("BUSINESS_IMPRESSIONS_MOBILE_SEARCH", "Search, on phones"),
    (
        "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH",
        "Search, on computers",
    ),
    ("BUSINESS_IMPRESSIONS_MOBILE_MAPS", "Maps, on phones"),
    ("BUSINESS_IMPRESSIONS_DESKTOP_MAPS", "Maps, on computers"),
];

/// One period's stored performance: each metric's sum, and how many of its days
/// Google's figures are stored for.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub sums: BTreeMap<String, i64>,
    pub days: i64,
    /// The days the period has.
    pub expected: i64,
}

impl Stored {
    pub fn whole(&self) -> bool {
        self.expected > 0 && self.days >= self.expected
    }
    fn sum(&self, h: &Headline) -> Option<i64> {
        (self.days > 0).then(|| h.metrics.iter().map(|m| self.sums[*m]).sum())
    }
}

/// The period's label as a client reads it: "February 2026", "week of 2 February 2026",
/// "2 February 2026".
pub fn label(p: &Period) -> String {
    match p.kind {
        Kind::Month => p.first.format("%B %Y").to_string(),
        Kind::Week => format!("week of {}", p.first.format("%-d %B %Y")),
        Kind::Day => p.first.format("%-d %B %Y").to_string(),
    }
}

fn short_label(p: &Period) -> String {
    match p.kind {
        Kind::Month => p.first.format("%b %Y").to_string(),
        _ => p.first.format("%-d %b").to_string(),
    }
}

/// The stored daily figures of `p` (a period under way has only its settled days).
pub async fn stored(ctx: &Ctx, client_id: &str, p: &Period) -> Result<Stored, JobError> {
    let expected = (p.end() - p.first).num_days();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT metric, CAST(SUM(value) AS BIGINT), COUNT(*) FROM profile_metrics
          WHERE client_id = $1 AND day >= $2 AND day < $3 GROUP BY metric",
    )
    .bind(client_id)
    .bind(day(p.first))
    .bind(day(p.end()))
    .fetch_all(ctx.store.pool())
    .await?;
    let mut s = Stored {
        expected,
        ..Stored::default()
    };
    for m in DAILY_METRICS {
        s.sums.insert(m.to_owned(), 0);
    }
    for (metric, sum, days) in rows {
        s.sums.insert(metric, sum);
        s.days = s.days.max(days);
    }
    Ok(s)
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub label: String,
    pub value: String,
    pub previous: String,
    /// "+12.5 %", or why there is no change to show.
    pub change: String,
    /// up | down | flat | "" (no change shown).
    pub direction: String,
}

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

/// Everything a client's report shows, formatted.
#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    pub client: String,
    pub category: String,
    pub period: String,
    pub period_kind: String,
    pub previous_period: String,
    pub from: String,
    pub to: String,
    /// "Google's figures cover 25 of 28 days so far." when not whole.
    pub coverage_note: Option<String>,
    pub linked: bool,
    pub headline: Vec<Figure>,
    pub breakdown: Vec<(String, String)>,
    pub keywords: Vec<Keyword>,
    pub keywords_month: String,
    pub reviews: Option<Reviews>,
    pub score: Option<Score>,
    pub edits: Vec<Edit>,
    pub posts_published: Vec<Post>,
    pub reviews_answered: i64,
    pub proposed: Vec<String>,
    pub posts_planned: Vec<Post>,
    pub owed: Vec<String>,
    pub notes: Option<String>,
    /// The last six periods' stored figures, oldest first: (label, views, calls,
    /// directions, website clicks, whole), `None` where nothing is stored.
    #[serde(skip)]
    pub history: Vec<HistoryPoint>,
}

#[derive(Debug, Clone)]
pub struct HistoryPoint {
    pub label: String,
    pub views: Option<i64>,
    pub actions: Option<[i64; 3]>,
    pub whole: bool,
}

fn day_of(ms: i64) -> String {
    cep_shared::clock::from_millis(ms)
        .format("%-d %B %Y")
        .to_string()
}

/// A change between two whole periods, as a person reads it.
fn change(value: i64, previous: i64) -> (String, String) {
    if previous == 0 {
        return if value == 0 {
            ("no change".into(), "flat".into())
        } else {
            ("new this period".into(), "up".into())
        };
    }
    let c = (value - previous) as f64 / previous as f64 * 100.0;
    let dir = if c > 0.5 {
        "up"
    } else if c < -0.5 {
        "down"
    } else {
        "flat"
    };
    (format!("{c:+.1} %"), dir.into())
}

fn headline(current: &Stored, previous: &Stored) -> Vec<Figure> {
    HEADLINES
        .iter()
        .map(|h| {
            let value = current.sum(h);
            let before = previous.sum(h);
            let (change, direction) = match (value, before) {
                (Some(v), Some(p)) if current.whole() && previous.whole() => change(v, p),
                (Some(_), Some(_)) => ("not comparable: a period is not whole".into(), "".into()),
                (Some(_), None) => ("nothing recorded before".into(), "".into()),
                _ => (String::new(), String::new()),
            };
            Figure {
                name: h.name.into(),
                label: h.label.into(),
                value: value.map_or_else(|| "not known".into(), thousands),
                previous: before.map_or_else(|| "not recorded".into(), thousands),
                change,
                direction,
            }
        })
        .collect()
}

/// A client's report of `p`, as the store has it at `now`.
pub async fn gather(
    ctx: &Ctx,
    client_id: &str,
    p: &Period,
    report_id: &str,
    now: i64,
) -> Result<ClientReport, JobError> {
    let pool = ctx.store.pool();
    let (name, category, location): (String, String, Option<String>) = sqlx::query_as(
        "SELECT business_name, business_type, gbp_location FROM clients WHERE id = $1",
    )
    .bind(client_id)
    .fetch_one(pool)
    .await?;
    let (from, end) = p.span_millis();
    let to = end.min(now);
    let linked = location.is_some();
    // The last six periods, oldest first; the last two are this one and the one before.
    let mut periods = vec![*p];
    for _ in 1..6 {
        let before = periods[periods.len() - 1].previous();
        periods.push(before);
    }
    periods.reverse();
    let mut six = Vec::with_capacity(6);
    for q in &periods {
        six.push(stored(ctx, client_id, q).await?);
    }
    let prev_period = p.previous();
    let (previous, current) = (&six[4], &six[5]);
    let coverage_note = (linked && !current.whole()).then(|| {
        if current.days == 0 {
            "Google has not reported this period's figures yet.".to_owned()
        } else {
            format!(
                "Google's figures cover {} of the period's {} days so far.",
                current.days, current.expected
            )
        }
    });
    let history = periods
        .iter()
        .zip(&six)
        .map(|(q, s)| HistoryPoint {
            label: short_label(q),
            views: s.sum(&HEADLINES[0]),
            actions: (s.days > 0).then(|| {
                [
                    s.sums["CALL_CLICKS"],
                    s.sums["BUSINESS_DIRECTION_REQUESTS"],
                    s.sums["WEBSITE_CLICKS"],
                ]
            }),
            whole: s.whole(),
        })
        .collect();
    let breakdown = if current.days > 0 {
        BREAKDOWN
            .iter()
            .map(|(m, l)| ((*l).to_owned(), thousands(current.sums[*m])))
            .collect()
    } else {
        Vec::new()
    };
    let (keywords_month, keywords) = keywords(ctx, client_id, p).await?;
    Ok(ClientReport {
        client: name,
        category,
        period: label(p),
        period_kind: p.kind.report_type().into(),
        previous_period: label(&prev_period),
        from: day_of(from),
        to: day_of(to - 1),
        coverage_note,
        linked,
        headline: if linked {
            headline(current, previous)
        } else {
            Vec::new()
        },
        breakdown,
        keywords,
        keywords_month,
        reviews: if linked {
            Some(reviews(ctx, client_id, from, to).await?)
        } else {
            None
        },
        score: score(ctx, client_id, from, to).await?,
        edits: edits(ctx, client_id, from, to).await?,
        posts_published: published(ctx, client_id, from, to).await?,
        reviews_answered: answered(ctx, client_id, from, to).await?,
        proposed: next_steps(ctx, client_id, to).await?,
        posts_planned: planned(ctx, client_id, to).await?,
        owed: owed(ctx, client_id).await?,
        notes: notes(ctx, report_id).await?,
        history,
    })
}

/// The searches that showed the profile in the period's month (the latest month whose
/// keywords are stored, for a week or a day), most first.
async fn keywords(
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

async fn reviews(ctx: &Ctx, client_id: &str, from: i64, to: i64) -> Result<Reviews, JobError> {
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

async fn score(ctx: &Ctx, client_id: &str, from: i64, to: i64) -> Result<Option<Score>, JobError> {
    let rows: Vec<(i64, i64, f64, String)> = sqlx::query_as(
        "SELECT observed_at, score, coverage, signals FROM profile_observations
          WHERE client_id = $1 AND observed_at < $2 ORDER BY observed_at DESC, id LIMIT 1",
    )
    .bind(client_id)
    .bind(to)
    .fetch_all(ctx.store.pool())
    .await?;
    let Some((at, score, coverage, signals)) = rows.into_iter().next() else {
        return Ok(None);
    };
    // The reading before the period, to say what changed in it.
    let before: Option<(i64,)> = sqlx::query_as(
        "SELECT score FROM profile_observations WHERE client_id = $1 AND observed_at < $2
          ORDER BY observed_at DESC, id LIMIT 1",
    )
    .bind(client_id)
    .bind(from)
    .fetch_optional(ctx.store.pool())
    .await?;
    let s: ProfileSignals = serde_json::from_str(&signals).unwrap_or_default();
    Ok(Some(Score {
        score: score.clamp(0, 100) as u32,
        coverage: format!("{:.0} %", coverage * 100.0),
        read_on: day_of(at),
        change: match before {
            Some((b,)) if at >= from => format!("{:+} points since the period began", score - b),
            Some(_) => "not read again this period".into(),
            None => "first reading".into(),
        },
        signals: Signal::ALL
            .iter()
            .map(|sig| {
                (
                    sig.label().to_owned(),
                    s.shown(*sig).unwrap_or_else(|| "unknown".into()),
                )
            })
            .collect(),
    }))
}

/// Profile fields the agency filled in the period: empty before, the new value after.
async fn edits(ctx: &Ctx, client_id: &str, from: i64, to: i64) -> Result<Vec<Edit>, JobError> {
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

async fn published(ctx: &Ctx, client_id: &str, from: i64, to: i64) -> Result<Vec<Post>, JobError> {
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

async fn answered(ctx: &Ctx, client_id: &str, from: i64, to: i64) -> Result<i64, JobError> {
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
async fn next_steps(ctx: &Ctx, client_id: &str, to: i64) -> Result<Vec<String>, JobError> {
    let read: Option<(String,)> = sqlx::query_as(
        "SELECT signals FROM profile_observations WHERE client_id = $1 AND observed_at < $2
          ORDER BY observed_at DESC, id LIMIT 1",
    )
    .bind(client_id)
    .bind(to)
    .fetch_optional(ctx.store.pool())
    .await?;
    if let Some((signals,)) = read {
        let s: ProfileSignals = serde_json::from_str(&signals).unwrap_or_default();
        // Ten of each, as the score counts them.
        return Ok(s.gaps(10, 10));
    }
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT kind FROM optimizations WHERE client_id = $1 ORDER BY kind",
    )
    .bind(client_id)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}

async fn planned(ctx: &Ctx, client_id: &str, after: i64) -> Result<Vec<Post>, JobError> {
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

async fn owed(ctx: &Ctx, client_id: &str) -> Result<Vec<String>, JobError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM documents WHERE client_id = $1 AND received_at IS NULL ORDER BY name",
    )
    .bind(client_id)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

async fn notes(ctx: &Ctx, report_id: &str) -> Result<Option<String>, JobError> {
    let row: Option<(Option<String>,)> = sqlx::query_as("SELECT notes FROM reports WHERE id = $1")
        .bind(report_id)
        .fetch_optional(ctx.store.pool())
        .await?;
    Ok(row.and_then(|(n,)| n).filter(|n| !n.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_a_person_says_them() {
        assert_eq!(change(110, 100), ("+10.0 %".into(), "up".into()));
        assert_eq!(change(90, 100), ("-10.0 %".into(), "down".into()));
        assert_eq!(change(0, 0), ("no change".into(), "flat".into()));
        assert_eq!(change(5, 0), ("new this period".into(), "up".into()));
    }

    #[test]
    fn a_period_not_whole_is_not_compared() {
        let mut whole = Stored {
            days: 28,
            expected: 28,
            ..Stored::default()
        };
        for m in DAILY_METRICS {
            whole.sums.insert(m.into(), 10);
        }
        let mut part = whole.clone();
        part.days = 20;
        part.expected = 31;
        let f = headline(&part, &whole);
        assert_eq!(f[0].value, "40");
        assert_eq!(f[0].previous, "40");
        assert!(f[0].change.starts_with("not comparable"), "{:?}", f[0]);
        let f = headline(&whole, &Stored::default());
        assert_eq!(f[2].change, "nothing recorded before");
        assert_eq!(f[2].previous, "not recorded");
    }
}
