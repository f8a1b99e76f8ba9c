//! Layer 7: a report per client (and one for the agency) a person reads: HTML with a
//! chart, each metric's trend against the previous report *as recorded*, insights and
//! at most five recommendations. Reporting chains finance.

pub mod render;

use crate::layers::finance;
use crate::{Ctx, JobError};
use cep_shared::clock::DAY;
use cep_shared::config::ReportingRules;
use cep_shared::ids::stable_id;
use cep_shared::jobs::PeriodJob;
use cep_shared::queue::NewJob;
use cep_shared::{JobKind, Layer};
use render::html_escape;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const AGENCY: &str = "agency";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Up,
    Down,
    Flat,
}

/// Change in percent against the previous value; `None` without a previous value
/// (or from zero, where a percentage means nothing).
pub fn change_percent(current: f64, previous: Option<f64>) -> Option<f64> {
    let p = previous?;
    (p != 0.0).then(|| (current - p) / p.abs() * 100.0)
}

pub fn trend(change: Option<f64>, r: &ReportingRules) -> Option<Trend> {
    change.map(|c| {
        if c > r.trend_percent {
            Trend::Up
        } else if c < -r.trend_percent {
            Trend::Down
        } else {
            Trend::Flat
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A metric is worse than `share` of its target, respecting direction: for "lower is
/// better" metrics (cost, days) worse means above `target ÷ share`.
pub fn below_target(value: f64, target: f64, better: Better, share: f64) -> bool {
    match better {
        Better::Higher => value < share * target,
        Better::Lower => value > target / share,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub previous: Option<f64>,
    pub change_percent: Option<f64>,
    pub trend: Option<Trend>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub id: String,
    pub client_id: String,
    pub title: String,
    pub report_type: String,
    pub period_start: i64,
    pub period_end: i64,
    pub metrics: Vec<Metric>,
    pub insights: Vec<String>,
    pub recommendations: Vec<String>,
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportingResult {
    pub period: String,
    pub reports: Vec<Report>,
}

/// Targets a metric is held to, and which way is better.
fn target_of(name: &str, r: &ReportingRules) -> Option<(f64, Better)> {
    match name {
        "conversion_percent" => Some((r.target_conversion_percent, Better::Higher)),
        "gbp_score" => Some((r.target_gbp_score, Better::Higher)),
        "onboarding_days" => Some((r.target_onboarding_days, Better::Lower)),
        "acquisition_cost" => Some((r.target_acquisition_cost, Better::Lower)),
        _ => None,
    }
}

const SALES: [&str; 3] = ["bookings", "conversion_percent", "contacted"];
const FINANCE: [&str; 2] = ["revenue", "mrr"];

/// Insights and recommendations for a set of metrics, in a stable order.
pub fn assess(metrics: &[Metric], r: &ReportingRules) -> (Vec<String>, Vec<String>) {
    let mut insights = Vec::new();
    let mut recs = Vec::new();
    for m in metrics {
        let ch = m.change_percent;
        if SALES.contains(&m.name.as_str()) && ch.is_some_and(|c| c > r.insight_sales_up_percent) {
            insights.push(format!(
                "{} rose {:.0} % on the previous period",
                label(&m.name),
                ch.unwrap_or_default()
            ));
        }
        if FINANCE.contains(&m.name.as_str())
            && ch.is_some_and(|c| c < -r.insight_finance_down_percent)
        {
            insights.push(format!(
                "{} fell {:.0} % on the previous period",
                label(&m.name),
                -ch.unwrap_or_default()
            ));
        }
        if m.name == "gbp_score" && m.value < r.insight_gbp_below {
            insights.push(format!(
                "The profile scores {:.0}, below {:.0}: customers comparing listings see a thin profile",
                m.value, r.insight_gbp_below
            ));
        }
        if let Some((target, better)) = target_of(&m.name, r)
            && below_target(m.value, target, better, r.recommend_below_share)
        {
            recs.push(recommendation(&m.name, m.value, target));
        }
    }
    recs.truncate(r.max_recommendations);
    (insights, recs)
}

fn label(name: &str) -> &str {
    match name {
        "gbp_score" => "Profile score",
        "score_gain" => "Score gained",
        "visibility_gain" => "Visibility gained",
        "posts_scheduled" => "Posts scheduled",
        "onboarding_days" => "Days to go live",
        "prospects_found" => "Prospects found",
        "contacted" => "Prospects contacted",
        "bookings" => "Bookings",
        "conversion_percent" => "Conversion (%)",
        "new_clients" => "New clients",
        "acquisition_cost" => "Acquisition cost ($)",
        "revenue" => "Revenue ($)",
        "mrr" => "Monthly recurring revenue ($)",
        other => other,
    }
}

fn recommendation(name: &str, value: f64, target: f64) -> String {
    match name {
        "conversion_percent" => format!(
            "Conversion is {value:.1} % against a {target:.0} % target: test a new pitch variant and follow up faster on replies."
        ),
        "gbp_score" => format!(
            "The profile scores {value:.0} against {target:.0}: add photos, answer reviews and keep the weekly posts going."
        ),
        "onboarding_days" => format!(
            "Going live takes {value:.1} days against {target:.0}: collect documents on the first call."
        ),
        "acquisition_cost" => format!(
            "Each new client costs ${value:.0} against ${target:.0}: focus campaigns on the categories that book."
        ),
        _ => format!(
            "{} is behind its target ({value:.1} vs {target:.1}).",
            label(name)
        ),
    }
}

/// An inline SVG bar chart: one bar per (label, value), an optional target line.
pub fn bar_chart(title: &str, bars: &[(String, f64)], target: Option<f64>) -> String {
    let w = 560.0;
    let h = 220.0;
    let max = bars
        .iter()
        .map(|b| b.1)
        .chain(target)
        .fold(1.0_f64, f64::max);
    let n = bars.len().max(1) as f64;
    let slot = (w - 40.0) / n;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{t}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <title>{t}</title>",
        t = html_escape(title)
    );
    for (i, (name, v)) in bars.iter().enumerate() {
        let bh = (v / max) * (h - 50.0);
        let x = 30.0 + i as f64 * slot + slot * 0.15;
        let y = h - 30.0 - bh;
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"#2b6cb0\"><title>{n}: {v:.1}</title></rect>\
             <text x=\"{tx:.1}\" y=\"{ly:.1}\" font-size=\"11\" text-anchor=\"middle\">{n}</text>\
             <text x=\"{tx:.1}\" y=\"{vy:.1}\" font-size=\"11\" text-anchor=\"middle\">{v:.0}</text>",
            bw = slot * 0.7,
            n = html_escape(name),
            tx = x + slot * 0.35,
            ly = h - 12.0,
            vy = y - 4.0,
        ));
    }
    if let Some(t) = target {
        let y = h - 30.0 - (t / max) * (h - 50.0);
        svg.push_str(&format!(
            "<line x1=\"20\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#c53030\" stroke-dasharray=\"4\"/>\
             <text x=\"{x2}\" y=\"{ty:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#c53030\">target {t:.0}</text>",
            x2 = w - 10.0,
            ty = y - 4.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn fmt_change(m: &Metric) -> String {
    match (m.change_percent, m.trend) {
        (Some(c), Some(t)) => format!(
            "{c:+.1} % ({})",
            match t {
                Trend::Up => "up",
                Trend::Down => "down",
                Trend::Flat => "flat",
            }
        ),
        _ => "no earlier report".into(),
    }
}

pub fn render(report: &Report, chart: &str) -> String {
    let day = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let mut rows = String::new();
    for m in &report.metrics {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
            html_escape(label(&m.name)),
            m.value,
            m.previous
                .map(|p| format!("{p:.1}"))
                .unwrap_or_else(|| "–".into()),
            fmt_change(m)
        ));
    }
    let list = |items: &[String], empty: &str| {
        if items.is_empty() {
            format!("<p>{empty}</p>")
        } else {
            format!(
                "<ul>{}</ul>",
                items
                    .iter()
                    .map(|i| format!("<li>{}</li>", html_escape(i)))
                    .collect::<String>()
            )
        }
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:720px;margin:2em auto;color:#1a202c}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #e2e8f0;padding:.4em;text-align:left}}</style>\
         </head><body><h1>{title}</h1><p>{kind} report, {from} to {to}</p>{chart}\
         <h2>Metrics</h2><table><tr><th>Metric</th><th>This period</th><th>Previous</th><th>Change</th></tr>{rows}</table>\
         <h2>Insights</h2>{insights}<h2>Recommendations</h2>{recs}</body></html>",
        title = html_escape(&report.title),
        kind = html_escape(&report.report_type),
        from = day(report.period_start),
        to = day(report.period_end),
        insights = list(&report.insights, "Nothing stood out this period."),
        recs = list(
            &report.recommendations,
            "Every tracked metric is on target."
        ),
    )
}

async fn previous_metrics(
    ctx: &Ctx,
    client_id: &str,
    report_type: &str,
    before: i64,
) -> Result<BTreeMap<String, f64>, JobError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT metrics FROM reports WHERE client_id = $1 AND report_type = $2 AND period_end <= $3
          ORDER BY period_end DESC LIMIT 1",
    )
    .bind(client_id)
    .bind(report_type)
    .bind(before)
    .fetch_optional(ctx.store.pool())
    .await?;
    match row {
        Some((json,)) => {
            let ms: Vec<Metric> = serde_json::from_str(&json)?;
            Ok(ms.into_iter().map(|m| (m.name, m.value)).collect())
        }
        None => Ok(BTreeMap::new()),
    }
}

async fn client_values(
    ctx: &Ctx,
    client_id: &str,
    from: i64,
    to: i64,
) -> Result<(String, Vec<(String, f64)>, Vec<(String, f64)>), JobError> {
    let pool = ctx.store.pool();
    let (name, score, started, live): (String, i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT business_name, gbp_score, started_at, live_at FROM clients WHERE id = $1",
    )
    .bind(client_id)
    .fetch_one(pool)
    .await?;
    let runs: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT period, MIN(score_before), MAX(score_after) FROM optimizations WHERE client_id = $1
          GROUP BY period ORDER BY period",
    )
    .bind(client_id)
    .fetch_all(pool)
    .await?;
    let (gain,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(MAX(score_after) - MIN(score_before), 0) AS BIGINT) FROM optimizations
          WHERE client_id = $1 AND created_at >= $2 AND created_at < $3",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    let (posts,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM posts WHERE client_id = $1 AND scheduled_for >= $2 AND scheduled_for < $3",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    let r = &ctx.settings.layers.optimization;
    let mut values = vec![
        ("gbp_score".to_string(), score as f64),
        ("score_gain".into(), gain as f64),
        (
            "visibility_gain".into(),
            r.visibility_per_point * gain as f64,
        ),
        ("posts_scheduled".into(), posts as f64),
    ];
    if let Some(live) = live {
        values.push((
            "onboarding_days".into(),
            (live - started) as f64 / DAY as f64,
        ));
    }
    let mut bars: Vec<(String, f64)> = match runs.first() {
        Some((_, before, _)) => vec![("start".into(), *before as f64)],
        None => Vec::new(),
    };
    bars.extend(runs.into_iter().map(|(p, _, after)| (p, after as f64)));
    bars.push(("now".into(), score as f64));
    Ok((name, values, bars))
}

async fn agency_values(ctx: &Ctx, from: i64, to: i64) -> Result<Vec<(String, f64)>, JobError> {
    let s = &ctx.store;
    let found = s
        .count_events(Layer::Prospecting, "prospect_found", from, to)
        .await? as f64;
    let contacted = s
        .count_events(Layer::Outreach, "contacted", from, to)
        .await? as f64;
    let bookings = (s.count_events(Layer::Booking, "booked", from, to).await?
        - s.count_events(Layer::Booking, "canceled", from, to).await?)
        .max(0) as f64;
    let m = finance::metrics(ctx, to).await?;
    let mut v = vec![
        ("prospects_found".to_string(), found),
        ("contacted".into(), contacted),
        ("bookings".into(), bookings),
    ];
    if contacted > 0.0 {
        v.push(("conversion_percent".into(), bookings / contacted * 100.0));
    }
    v.push(("new_clients".into(), m.new_clients as f64));
    if let Some(cac) = m.cac_cents {
        v.push(("acquisition_cost".into(), cac as f64 / 100.0));
    }
    v.push(("revenue".into(), m.revenue_cents as f64 / 100.0));
    v.push(("mrr".into(), m.mrr_cents as f64 / 100.0));
    Ok(v)
}

/// Where report files go: `<data_dir>/reports/<period>/`.
pub fn report_dir(ctx: &Ctx, period: &str) -> std::path::PathBuf {
    ctx.settings.data_dir.join("reports").join(period)
}

/// client id, title, metric values, chart
type Subject = (String, String, Vec<(String, f64)>, String);

pub async fn handle(ctx: &Ctx, job: PeriodJob) -> Result<ReportingResult, JobError> {
    let r = &ctx.settings.layers.reporting;
    let now = ctx.now();
    let days = r.monthly_days;
    let from = now - i64::from(days) * DAY;
    let clients: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM clients WHERE started_at < $1 AND (canceled_at IS NULL OR canceled_at >= $2) ORDER BY id",
    )
    .bind(now)
    .bind(from)
    .fetch_all(ctx.store.pool())
    .await?;
    let mut subjects: Vec<Subject> = Vec::new();
    let agency = agency_values(ctx, from, now).await?;
    let funnel: Vec<(String, f64)> = agency
        .iter()
        .filter(|(n, _)| {
            ["prospects_found", "contacted", "bookings", "new_clients"].contains(&n.as_str())
        })
        .map(|(n, v)| (label(n).to_string(), *v))
        .collect();
    subjects.push((
        AGENCY.into(),
        "Agency pipeline".into(),
        agency,
        bar_chart("Pipeline this period", &funnel, None),
    ));
    for (id,) in clients {
        let (name, values, bars) = client_values(ctx, &id, from, now).await?;
        let chart = bar_chart("Profile score", &bars, Some(r.target_gbp_score));
        subjects.push((id, format!("{name}: local profile report"), values, chart));
    }

    let dir = report_dir(ctx, &job.period);
    std::fs::create_dir_all(&dir).map_err(|e| {
        JobError::Transient(format!(
            "cannot create report directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut reports = Vec::new();
    for (client_id, title, values, chart) in subjects {
        let prev = previous_metrics(ctx, &client_id, "monthly", from + DAY).await?;
        let metrics: Vec<Metric> = values
            .into_iter()
            .map(|(name, value)| {
                let previous = prev.get(&name).copied();
                let change = change_percent(value, previous);
                Metric {
                    trend: trend(change, r),
                    change_percent: change,
                    previous,
                    value,
                    name,
                }
            })
            .collect();
        let (insights, recommendations) = assess(&metrics, r);
        let id = stable_id("rpt", &[&client_id, &job.period, "monthly"]);
        let path = dir.join(format!("{}.html", file_name(&client_id)));
        let mut report = Report {
            id: id.clone(),
            client_id: client_id.clone(),
            title,
            report_type: "monthly".into(),
            period_start: from,
            period_end: now,
            metrics,
            insights,
            recommendations,
            path: Some(path.display().to_string()),
        };
        let html = render(&report, &chart);
        std::fs::write(&path, &html).map_err(|e| {
            JobError::Transient(format!("cannot write report {}: {e}", path.display()))
        })?;
        let mut tx = ctx.store.pool().begin().await?;
        sqlx::query(
            "INSERT INTO reports (id, client_id, report_type, period_start, period_end, metrics, html, created_at)
             VALUES ($1, $2, 'monthly', $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(&client_id)
        .bind(from)
        .bind(now)
        .bind(serde_json::to_string(&report.metrics)?)
        .bind(&html)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for text in &report.insights {
            sqlx::query(
                "INSERT INTO insights (id, source, period, subject, metric, details, created_at)
                 VALUES ($1, 'reporting', $2, $3, 'report', $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(stable_id(
                "ins",
                &["reporting", &job.period, &client_id, text],
            ))
            .bind(&job.period)
            .bind(&client_id)
            .bind(text)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        report.path = Some(path.display().to_string());
        reports.push(report);
    }
    // Reporting → finance.
    ctx.queue
        .push(
            NewJob::new(
                JobKind::Layer(Layer::Finance),
                &PeriodJob {
                    period: job.period.clone(),
                },
                now,
            )
            .key(format!("finance:{}", job.period)),
        )
        .await?;
    Ok(ReportingResult {
        period: job.period,
        reports,
    })
}

fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_use_the_recorded_previous_value() {
        let r = ReportingRules::default();
        assert_eq!(change_percent(110.0, Some(100.0)), Some(10.0));
        assert_eq!(trend(Some(10.0), &r), Some(Trend::Up));
        assert_eq!(trend(Some(-5.0), &r), Some(Trend::Flat));
        assert_eq!(trend(Some(-5.1), &r), Some(Trend::Down));
        // Nothing recorded before: no trend, never an invented one.
        assert_eq!(change_percent(110.0, None), None);
        assert_eq!(trend(None, &r), None);
    }

    #[test]
    fn worse_respects_direction() {
        // conversion 11 % vs 15 %: 11 < 12 → worse
        assert!(below_target(11.0, 15.0, Better::Higher, 0.8));
        assert!(!below_target(12.5, 15.0, Better::Higher, 0.8));
        // acquisition cost $400 vs $300 is worse (above 375); $200 is not
        assert!(below_target(400.0, 300.0, Better::Lower, 0.8));
        assert!(!below_target(200.0, 300.0, Better::Lower, 0.8));
    }

    fn metric(name: &str, value: f64, previous: Option<f64>) -> Metric {
        let change = change_percent(value, previous);
        Metric {
            name: name.into(),
            value,
            previous,
            change_percent: change,
            trend: trend(change, &ReportingRules::default()),
        }
    }

    #[test]
    fn insights_and_recommendations_follow_the_rules() {
        let r = ReportingRules::default();
        let ms = vec![
            metric("bookings", 12.0, Some(10.0)),
            metric("revenue", 800.0, Some(1000.0)),
            metric("gbp_score", 55.0, Some(50.0)),
            metric("acquisition_cost", 500.0, None),
            metric("conversion_percent", 14.0, Some(20.0)),
        ];
        let (insights, recs) = assess(&ms, &r);
        assert_eq!(insights.len(), 3, "{insights:?}");
        assert!(insights[0].starts_with("Bookings rose 20"));
        assert!(insights[1].starts_with("Revenue ($) fell 20"));
        assert!(insights[2].contains("55"));
        // gbp 55 < 68 and cost 500 > 375 earn one; conversion 14 ≥ 12 does not.
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert!(recs[0].contains("profile scores 55"));
        assert!(recs[1].contains("$500"));
    }

    #[test]
    fn the_chart_has_a_bar_per_value_and_the_target() {
        let svg = bar_chart(
            "Profile score",
            &[("start".into(), 40.0), ("now".into(), 65.0)],
            Some(85.0),
        );
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("target 85"));
        assert!(svg.starts_with("<svg"));
    }
}
