//! A linked profile's performance, read from Google's Business Profile Performance API:
//! daily views by platform and device, calls, website clicks and direction requests
//! (`fetchMultiDailyMetricsTimeSeries`), and the month's search keywords. Each day is
//! read once, when Google's figures have settled, and stored whole; the reviews the
//! weekly reading saw are kept too. Reads spend the `gbp` budget like every other call.

use super::gbp::{SeenReview, parse_location, read, token};
use crate::{Ctx, JobError};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

/// The daily metrics a report reads, as Google names them.
pub const DAILY_METRICS: [&str; 7] = [
    "BUSINESS_IMPRESSIONS_DESKTOP_MAPS",
    "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH",
    "BUSINESS_IMPRESSIONS_MOBILE_MAPS",
    "BUSINESS_IMPRESSIONS_MOBILE_SEARCH",
    "CALL_CLICKS",
    "WEBSITE_CLICKS",
    "BUSINESS_DIRECTION_REQUESTS",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Multi {
    #[serde(default)]
    multi_daily_metric_time_series: Vec<MultiSeries>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MultiSeries {
    #[serde(default)]
    daily_metric_time_series: Vec<MetricSeries>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricSeries {
    daily_metric: String,
    #[serde(default)]
    time_series: TimeSeries,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeSeries {
    #[serde(default)]
    dated_values: Vec<DatedValue>,
}

#[derive(Debug, Deserialize)]
struct DatedValue {
    date: GoogleDate,
    /// An int64 as a string; absent when zero.
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GoogleDate {
    year: i32,
    month: u32,
    day: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keywords {
    #[serde(default)]
    search_keywords_counts: Vec<KeywordCount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeywordCount {
    search_keyword: String,
    #[serde(default)]
    insights_value: InsightsValue,
}

#[derive(Debug, Default, Deserialize)]
struct InsightsValue {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    threshold: Option<String>,
}

/// One day's value of one metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyValue {
    pub day: NaiveDate,
    pub metric: String,
    pub value: i64,
}

/// The answer to `fetchMultiDailyMetricsTimeSeries` as day × metric values: every date
/// Google listed, a missing value as 0 (the API leaves zeros out). A metric it never
/// listed, or a value that is not a count, is refused: a day must be stored whole.
fn daily_values(body: Multi) -> Result<Vec<DailyValue>, JobError> {
    let mut out = Vec::new();
    for series in body
        .multi_daily_metric_time_series
        .into_iter()
        .flat_map(|m| m.daily_metric_time_series)
    {
        if !DAILY_METRICS.contains(&series.daily_metric.as_str()) {
            continue;
        }
        for v in series.time_series.dated_values {
            let day = NaiveDate::from_ymd_opt(v.date.year, v.date.month, v.date.day).ok_or_else(
                || {
                    JobError::Transient(format!(
                        "the Performance API answered a date that does not exist: {}-{}-{}",
                        v.date.year, v.date.month, v.date.day
                    ))
                },
            )?;
            let value = match v.value.as_deref() {
                None => 0,
                Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    JobError::Transient(format!(
                        "the Performance API answered `{s}` for {} on {day}: not a count",
                        series.daily_metric
                    ))
                })?,
            };
            out.push(DailyValue {
                day,
                metric: series.daily_metric.clone(),
                value,
            });
        }
    }
    Ok(out)
}

/// `<performance_url>/v1/locations/<l><path>` for a location `accounts/a/locations/l`.
fn endpoint(ctx: &Ctx, location: &str, path: &str) -> Result<url::Url, JobError> {
    let (_, loc) = parse_location(location).map_err(JobError::Invalid)?;
    let base = ctx
        .settings
        .providers
        .gbp
        .performance_url
        .trim_end_matches('/');
    url::Url::parse(&format!("{base}/v1/locations/{loc}{path}"))
        .map_err(|e| JobError::Invalid(format!("providers.gbp.performance_url: {e}")))
}

/// The daily metrics of `[from, to]` (whole days, both included).
async fn fetch_daily(
    ctx: &Ctx,
    location: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DailyValue>, JobError> {
    let mut url = endpoint(ctx, location, ":fetchMultiDailyMetricsTimeSeries")?;
    {
        let mut q = url.query_pairs_mut();
        for m in DAILY_METRICS {
            q.append_pair("dailyMetrics", m);
        }
        for (end, d) in [("start_date", from), ("end_date", to)] {
            q.append_pair(&format!("dailyRange.{end}.year"), &d.year().to_string());
            q.append_pair(&format!("dailyRange.{end}.month"), &d.month().to_string());
            q.append_pair(&format!("dailyRange.{end}.day"), &d.day().to_string());
        }
    }
    daily_values(read(ctx, url.as_str()).await?)
}

/// A month's search keywords: (keyword, impressions, or "fewer than" threshold).
async fn fetch_keywords(
    ctx: &Ctx,
    location: &str,
    month: NaiveDate,
) -> Result<Vec<(String, Option<i64>, Option<i64>)>, JobError> {
    let mut url = endpoint(ctx, location, "/searchkeywords/impressions/monthly")?;
    {
        let mut q = url.query_pairs_mut();
        for end in ["start_month", "end_month"] {
            q.append_pair(
                &format!("monthlyRange.{end}.year"),
                &month.year().to_string(),
            );
            q.append_pair(
                &format!("monthlyRange.{end}.month"),
                &month.month().to_string(),
            );
        }
        q.append_pair("pageSize", "100");
    }
    let body: Keywords = read(ctx, url.as_str()).await?;
    let count = |s: Option<String>| s.and_then(|s| s.parse::<i64>().ok());
    Ok(body
        .search_keywords_counts
        .into_iter()
        .map(|k| {
            (
                k.search_keyword.chars().take(200).collect(),
                count(k.insights_value.value),
                count(k.insights_value.threshold),
            )
        })
        .collect())
}

/// What one pull stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pulled {
    pub days: usize,
    pub keyword_months: usize,
}

/// Reads what a linked profile's performance store lacks, through the last settled day:
/// the days after the last one stored (on the first pull, the configured history), and
/// the search keywords of each whole month since. Nothing without an access token.
pub async fn pull(ctx: &Ctx, client_id: &str, location: &str) -> Result<Pulled, JobError> {
    if token(ctx).is_none() {
        return Ok(Pulled::default());
    }
    let g = &ctx.settings.providers.gbp;
    let today = cep_shared::clock::from_millis(ctx.now()).date_naive();
    let settled = today - chrono::Days::new(u64::from(g.performance_lag_days).max(1));
    let last: Option<(Option<String>,)> =
        sqlx::query_as("SELECT MAX(day) FROM profile_metrics WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    let last = last
        .and_then(|(d,)| d)
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    let from = match last {
        Some(d) => d + chrono::Days::new(1),
        None => today - chrono::Days::new(u64::from(g.performance_history_days)),
    };
    let mut pulled = Pulled::default();
    if from <= settled {
        let values = fetch_daily(ctx, location, from, settled).await?;
        pulled.days = store_days(ctx, client_id, from, settled, &values).await?;
    }
    // Whole months whose keywords are not stored, newest first, at most the history's.
    let stored: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT month FROM profile_keywords WHERE client_id = $1")
            .bind(client_id)
            .fetch_all(ctx.store.pool())
            .await?;
    let stored: std::collections::HashSet<String> = stored.into_iter().map(|(m,)| m).collect();
    let mut month = first_of_month(settled);
    // The month under way is not whole yet.
    if settled
        .succ_opt()
        .is_some_and(|d| d.month() == settled.month())
    {
        month = previous_month(month);
    }
    let oldest = first_of_month(today - chrono::Days::new(u64::from(g.performance_history_days)));
    let mut asked = 0;
    while month >= oldest && asked < 18 {
        let key = month.format("%Y-%m").to_string();
        if stored.contains(&key) {
            break;
        }
        let keywords = fetch_keywords(ctx, location, month).await?;
        store_keywords(ctx, client_id, &key, &keywords).await?;
        pulled.keyword_months += 1;
        asked += 1;
        month = previous_month(month);
    }
    Ok(pulled)
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn previous_month(d: NaiveDate) -> NaiveDate {
    first_of_month(first_of_month(d) - chrono::Days::new(1))
}

/// Stores `[from, to]` whole: each metric of each day, 0 where Google listed nothing.
/// Returns the days stored.
async fn store_days(
    ctx: &Ctx,
    client_id: &str,
    from: NaiveDate,
    to: NaiveDate,
    values: &[DailyValue],
) -> Result<usize, JobError> {
    let mut by_key: std::collections::HashMap<(NaiveDate, &str), i64> = Default::default();
    for v in values {
        by_key.insert((v.day, v.metric.as_str()), v.value);
    }
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    let mut days = 0;
    for day in from.iter_days().take_while(|d| *d <= to) {
        let key = day.format("%Y-%m-%d").to_string();
        for m in DAILY_METRICS {
            sqlx::query(
                "INSERT INTO profile_metrics (client_id, day, metric, value, fetched_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (client_id, day, metric) DO UPDATE SET value = $4, fetched_at = $5",
            )
            .bind(client_id)
            .bind(&key)
            .bind(m)
            .bind(by_key.get(&(day, m)).copied().unwrap_or(0))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        days += 1;
    }
    tx.commit().await?;
    Ok(days)
}

async fn store_keywords(
    ctx: &Ctx,
    client_id: &str,
    month: &str,
    keywords: &[(String, Option<i64>, Option<i64>)],
) -> Result<(), JobError> {
    let mut tx = ctx.store.pool().begin().await?;
    // A month Google had no keywords for is stored as read, with an empty keyword.
    let none = [(String::new(), None, None)];
    let rows = if keywords.is_empty() {
        &none[..]
    } else {
        keywords
    };
    for (k, value, below) in rows {
        sqlx::query(
            "INSERT INTO profile_keywords (client_id, month, keyword, impressions, below)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id, month, keyword) DO NOTHING",
        )
        .bind(client_id)
        .bind(month)
        .bind(k)
        .bind(value)
        .bind(below)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Keeps the reviews a reading saw (stars and dates; the text stays with Google).
pub async fn keep_reviews(
    ctx: &Ctx,
    client_id: &str,
    reviews: &[SeenReview],
) -> Result<(), JobError> {
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    for r in reviews {
        sqlx::query(
            "INSERT INTO profile_reviews (client_id, review_id, stars, created_at, replied_at, seen_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (client_id, review_id) DO UPDATE
               SET stars = $3, replied_at = COALESCE($5, profile_reviews.replied_at), seen_at = $6",
        )
        .bind(client_id)
        .bind(&r.review_id)
        .bind(r.stars)
        .bind(r.created_at)
        .bind(r.replied_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_left_out_are_zeros_and_a_bad_count_is_refused() {
        let body: Multi = serde_json::from_value(serde_json::json!({
            "multiDailyMetricTimeSeries": [{ "dailyMetricTimeSeries": [
                { "dailyMetric": "CALL_CLICKS", "timeSeries": { "datedValues": [
                    { "date": { "year": 2026, "month": 2, "day": 28 }, "value": "4" },
                    { "date": { "year": 2026, "month": 3, "day": 1 } }
                ] } },
                { "dailyMetric": "BUSINESS_FOOD_ORDERS", "timeSeries": { "datedValues": [
                    { "date": { "year": 2026, "month": 3, "day": 1 }, "value": "9" }
                ] } }
            ] }]
        }))
        .unwrap();
        let v = daily_values(body).unwrap();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].value, 4);
        assert_eq!(v[1].value, 0);
        assert_eq!(v[1].day, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        let bad: Multi = serde_json::from_value(serde_json::json!({
            "multiDailyMetricTimeSeries": [{ "dailyMetricTimeSeries": [
                { "dailyMetric": "CALL_CLICKS", "timeSeries": { "datedValues": [
                    { "date": { "year": 2026, "month": 2, "day": 30 }, "value": "4" }
                ] } }
            ] }]
        }))
        .unwrap();
        assert!(
            daily_values(bad)
                .unwrap_err()
                .to_string()
                .contains("2026-2-30")
        );
    }

    #[test]
    fn months_step_back_across_the_year() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 17).unwrap();
        assert_eq!(
            previous_month(d),
            NaiveDate::from_ymd_opt(2025, 12, 1).unwrap()
        );
        assert_eq!(
            previous_month(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()),
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
        );
    }
}
