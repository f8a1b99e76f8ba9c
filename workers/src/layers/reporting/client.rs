//! What a client's report says, gathered from the store: the profile's performance
//! against the period before (as Google reported it, day by day), the last six
//! periods, its reviews, its score with the signals behind it, the work done, what
//! comes next and the agency's notes. Every number is formatted here, as a person reads
//! it; an unknown one says so.

use super::facts::{self, Edit, Keyword, Post, Reviews, Score, day_of};
use crate::layers::optimization::performance::DAILY_METRICS;
use crate::{Ctx, JobError};
use cep_shared::format::thousands;
use cep_shared::period::{Kind, Period};
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
    let reading = facts::last_reading(ctx, client_id, to).await?;
    let (keywords_month, keywords) = facts::keywords(ctx, client_id, p).await?;
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
            Some(facts::reviews(ctx, client_id, from, to).await?)
        } else {
            None
        },
        score: match &reading {
            Some(r) => Some(facts::score(ctx, client_id, from, r).await?),
            None => None,
        },
        edits: facts::edits(ctx, client_id, from, to).await?,
        posts_published: facts::published(ctx, client_id, from, to).await?,
        reviews_answered: facts::answered(ctx, client_id, from, to).await?,
        proposed: facts::next_steps(ctx, client_id, reading.as_ref()).await?,
        posts_planned: facts::planned(ctx, client_id, to).await?,
        owed: facts::owed(ctx, client_id).await?,
        notes: facts::notes(ctx, report_id).await?,
        history,
    })
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
