//! Layer 7: a report per client (and one for the agency) a person reads: HTML with a
//! chart, each metric's trend against the previous report *as recorded*, insights and
//! at most five recommendations. Reporting chains finance.
//!
//! `rules` decides what a report says, `render` draws it, `store` reads the numbers and
//! keeps the report.

pub mod render;
pub mod rules;
pub mod store;

pub use render::{bar_chart, render};
pub use rules::{Better, Metric, Report, Trend, assess, below_target, change_percent, trend};

use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
use cep_shared::jobs::{FinanceJob, ReportingJob};
use cep_shared::period::Period;
use cep_shared::queue::NewJob;
use serde::{Deserialize, Serialize};

pub const AGENCY: &str = "agency";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportingResult {
    pub period: String,
    pub reports: Vec<Report>,
}

/// One report to write: whose, its title, its metric values and its chart.
struct Subject {
    client_id: String,
    title: String,
    values: Vec<(String, f64)>,
    chart: maud::Markup,
    coherence: Option<String>,
}

pub async fn handle(ctx: &Ctx, job: ReportingJob) -> Result<ReportingResult, JobError> {
    let r = &ctx.settings.layers.reporting;
    let now = ctx.now();
    // A calendar period that has begun; one still running is reported up to now.
    let period = Period::parse(&job.period).map_err(JobError::Invalid)?;
    period.not_after(now).map_err(JobError::Invalid)?;
    let (from, end) = period.span_millis();
    let now = end.min(now);
    let report_type = period.kind.report_type();
    let previous = period.previous().to_string();
    let mut subjects = vec![agency(ctx, from, now).await?];
    for id in store::clients(ctx, from, now).await? {
        let (name, values, bars) = store::client_values(ctx, &id, from, now).await?;
        subjects.push(Subject {
            chart: bar_chart("Profile score", &bars, Some(ctx.settings.targets.gbp_score)),
            title: format!("{name}: local profile report"),
            client_id: id,
            values,
            coherence: None,
        });
    }
    let dir = report_dir(ctx, &job.period);
    std::fs::create_dir_all(&dir).map_err(|e| {
        JobError::Transient(format!(
            "cannot create report directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut reports = Vec::new();
    for s in subjects {
        // The calendar period before, as its report recorded it.
        let prev = store::metrics_of(ctx, &report_id(&s.client_id, &previous, report_type)).await?;
        let metrics = rules::metrics(s.values, &prev, r);
        let (insights, recommendations) = assess(&metrics, r, &ctx.settings.targets);
        let path = dir.join(format!("{}.html", render::file_name(&s.client_id)));
        let report = Report {
            id: report_id(&s.client_id, &job.period, report_type),
            client_id: s.client_id,
            title: s.title,
            report_type: report_type.into(),
            period_start: from,
            period_end: now,
            metrics,
            coherence: s.coherence,
            insights,
            recommendations,
            path: Some(path.display().to_string()),
        };
        let html = render(&report, &s.chart);
        std::fs::write(&path, &html).map_err(|e| {
            JobError::Transient(format!("cannot write report {}: {e}", path.display()))
        })?;
        store::save(ctx, &job.period, &report, &html).await?;
        reports.push(report);
    }
    // Reporting → finance.
    ctx.queue
        .push(NewJob::of(&FinanceJob::new(&job.period), now))
        .await?;
    Ok(ReportingResult {
        period: job.period,
        reports,
    })
}

/// The agency's report: its pipeline and money, charted as a funnel.
async fn agency(ctx: &Ctx, from: i64, now: i64) -> Result<Subject, JobError> {
    let values = store::agency_values(ctx, from, now).await?;
    let funnel: Vec<(String, f64)> = values
        .iter()
        .filter(|(n, _)| {
            ["prospects_found", "contacted", "bookings", "new_clients"].contains(&n.as_str())
        })
        .map(|(n, v)| (rules::label(n).to_string(), *v))
        .collect();
    Ok(Subject {
        client_id: AGENCY.into(),
        title: "Agency pipeline".into(),
        chart: bar_chart("Pipeline this period", &funnel, None),
        values,
        coherence: Some(store::coherence(ctx, from, now).await?),
    })
}

/// The id of a client's report of one period.
fn report_id(client_id: &str, period: &str, report_type: &str) -> String {
    stable_id("rpt", &[client_id, period, report_type])
}

/// Where report files go: `<data_dir>/reports/<period>/`.
pub fn report_dir(ctx: &Ctx, period: &str) -> std::path::PathBuf {
    ctx.settings.data_dir.join("reports").join(period)
}
