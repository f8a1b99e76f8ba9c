//! What the simulated profiles did, as Google's Performance API would tell it: daily
//! views, calls, website clicks and direction requests that grow with how complete the
//! profile is, searches that found it, and reviews its customers leave week by week.
//! Every figure is drawn from a hash of the location and the day, so a rerun answers
//! the same.

use cep_shared::clock::DAY;
use cep_shared::ids::stable_hash;
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};

/// A number in [0, 1) drawn from the parts.
fn draw(parts: &[&str]) -> f64 {
    (stable_hash(parts) >> 11) as f64 / (1u64 << 53) as f64
}

/// A review a customer left: its stars, when, and when the owner answered.
#[derive(Debug, Clone, Default)]
pub(super) struct Review {
    pub(super) stars: u8,
    pub(super) created: i64,
    pub(super) replied: Option<i64>,
}

/// What the figures of a profile grow with: how complete it is (0 to 1), whether it
/// links a website, and its line of work.
pub(super) struct Shape<'a> {
    pub(super) completeness: f64,
    pub(super) website: bool,
    pub(super) category: &'a str,
}

/// Customers leave reviews week by week, more often on a fuller profile; the owner has
/// not answered them yet.
pub(super) fn leave_reviews(
    loc: &str,
    reviews: &mut Vec<Review>,
    reviewed_to: &mut i64,
    completeness: f64,
    now: i64,
) {
    let week = 7 * DAY;
    while *reviewed_to + week <= now {
        let start = *reviewed_to;
        let key = start.to_string();
        let chance = 0.35 + 0.55 * completeness;
        if draw(&[loc, &key, "review"]) < chance {
            let roll = draw(&[loc, &key, "stars"]);
            let stars = match roll {
                r if r < 0.03 => 1,
                r if r < 0.07 => 2,
                r if r < 0.15 => 3,
                r if r < 0.40 => 4,
                _ => 5,
            };
            let created = start + (draw(&[loc, &key, "when"]) * week as f64) as i64;
            reviews.push(Review {
                stars,
                created,
                replied: None,
            });
        }
        *reviewed_to += week;
    }
}

/// `fetchMultiDailyMetricsTimeSeries` for the range and metrics `query` asks, in the
/// API's shape (a zero is left out, as Google does).
pub(super) fn daily(loc: &str, p: &Shape<'_>, query: &str) -> Value {
    let mut metrics = Vec::new();
    let mut range = [[0i64; 3]; 2];
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "dailyMetrics" {
            metrics.push(v.into_owned());
            continue;
        }
        let end = usize::from(k.contains("end_date") || k.contains("endDate"));
        let part = match k.rsplit('.').next() {
            Some("year") => 0,
            Some("month") => 1,
            Some("day") => 2,
            _ => continue,
        };
        range[end][part] = v.parse().unwrap_or(0);
    }
    let date = |r: [i64; 3]| NaiveDate::from_ymd_opt(r[0] as i32, r[1] as u32, r[2] as u32);
    let (Some(from), Some(to)) = (date(range[0]), date(range[1])) else {
        return json!({ "error": { "code": 400, "message": "dailyRange is required" } });
    };
    let series: Vec<Value> = metrics
        .iter()
        .map(|m| {
            let values: Vec<Value> = from
                .iter_days()
                .take_while(|d| *d <= to)
                .take(600)
                .map(|d| {
                    let n = value(loc, p, m, d);
                    let mut v =
                        json!({ "date": { "year": d.year(), "month": d.month(), "day": d.day() } });
                    if n > 0 {
                        v["value"] = json!(n.to_string());
                    }
                    v
                })
                .collect();
            json!({ "dailyMetric": m, "timeSeries": { "datedValues": values } })
        })
        .collect();
    json!({ "multiDailyMetricTimeSeries": [{ "dailyMetricTimeSeries": series }] })
}

/// One day's figure of one metric.
fn value(loc: &str, p: &Shape<'_>, metric: &str, day: NaiveDate) -> i64 {
    let done = p.completeness;
    let key = day.to_string();
    let weekend = matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
    let noise = 0.75 + 0.5 * draw(&[loc, &key, metric]);
    let views = (20.0 + 160.0 * done) * if weekend { 0.7 } else { 1.0 };
    let share = match metric {
        "BUSINESS_IMPRESSIONS_MOBILE_MAPS" => 0.40,
        "BUSINESS_IMPRESSIONS_MOBILE_SEARCH" => 0.30,
        "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH" => 0.20,
        "BUSINESS_IMPRESSIONS_DESKTOP_MAPS" => 0.10,
        "CALL_CLICKS" => 0.030,
        "WEBSITE_CLICKS" if p.website => 0.025,
        "BUSINESS_DIRECTION_REQUESTS" => 0.020,
        _ => 0.0,
    };
    (views * share * noise).round() as i64
}

/// The month's searches that showed the profile; small counts withheld as Google does.
pub(super) fn keywords(loc: &str, p: &Shape<'_>) -> Value {
    let what = p.category.to_lowercase();
    let counts: Vec<Value> = [
        format!("{what} near me"),
        format!("best {what}"),
        format!("{what} open now"),
        format!("emergency {what}"),
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| {
        let n = ((400.0 / (i as f64 + 1.0)) * (0.5 + draw(&[loc, k]))).round() as i64;
        if n < 15 {
            json!({ "searchKeyword": k, "insightsValue": { "threshold": "15" } })
        } else {
            json!({ "searchKeyword": k, "insightsValue": { "value": n.to_string() } })
        }
    })
    .collect();
    json!({ "searchKeywordsCounts": counts })
}
