//! Layer 7: a report per client and one for the agency, for a calendar period.
//! A client's report is what an agency sends: its profile's performance against the
//! period before and over six, its reviews, score, the work done and what comes next,
//! from the agency's templates; emailed with a no-login link and a PDF once the month's
//! figures settle. The agency's report holds its funnel by stage, money and Φ_sync,
//! each metric against the previous report *as recorded*. Reporting chains finance.
//!
//! `client` and `facts` gather a client's report, `template` writes it, `delivery`,
//! `links` send it; `rules` says what the agency's report concludes, `render` draws its
//! charts and page, `store` reads the numbers and keeps each report.

pub mod client;
pub mod delivery;
pub mod facts;
pub mod links;
pub mod render;
pub mod rules;
pub mod store;
pub mod template;

pub use render::{bar_chart, render};
pub use rules::{Better, Metric, Report, Trend, assess, below_target, change_percent, trend};

use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
use cep_shared::jobs::{DeliveryJob, FinanceJob, ReportingJob};
use cep_shared::period::Period;
use cep_shared::queue::NewJob;
use serde::{Deserialize, Serialize};

pub const AGENCY: &str = "agency";

/// The Content-Security-Policy a report's page is served with, wherever it is served:
/// nothing loads but its own styles and its embedded images.
pub const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportingResult {
    pub period: String,
    pub reports: Vec<Report>,
}

/// One report to write: whose, its title, its metric values, and its page (the
/// client's from the templates, the agency's a chart and a table).
struct Subject {
    client_id: String,
    title: String,
    values: Vec<(String, f64)>,
    page: Page,
    coherence: Option<String>,
}

enum Page {
    Agency(maud::Markup),
    Client,
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
    let templates = template::Templates::load(&ctx.settings.reports)?;
    let mut subjects = vec![agency(ctx, from, now).await?];
    for id in store::clients(ctx, from, now).await? {
        // What the linked profile did up to now, before it is reported.
        if let Some(location) = store::location(ctx, &id).await? {
            crate::layers::optimization::performance::pull(ctx, &id, &location).await?;
        }
        let (name, values) = store::client_values(ctx, &id, from, now).await?;
        subjects.push(Subject {
            page: Page::Client,
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
        let html = match &s.page {
            Page::Agency(chart) => render(&report, chart),
            Page::Client => {
                let gathered =
                    client::gather(ctx, &report.client_id, &period, &report.id, now).await?;
                templates.client_html(&gathered)?
            }
        };
        std::fs::write(&path, &html).map_err(|e| {
            JobError::Transient(format!("cannot write report {}: {e}", path.display()))
        })?;
        store::save(ctx, &job.period, &report, &html).await?;
        // A month's client report goes out by email once Google's figures for its last
        // days have settled.
        if matches!(s.page, Page::Client)
            && period.kind == cep_shared::period::Kind::Month
            && ctx.settings.reports.email
        {
            let lag = i64::from(ctx.settings.providers.gbp.performance_lag_days) + 1;
            let due = (end + lag * cep_shared::clock::DAY).max(now);
            let delivery = DeliveryJob {
                report_id: report.id.clone(),
                round: 1,
                requested_by: "schedule".into(),
            };
            ctx.queue.push(NewJob::of(&delivery, due)).await?;
        }
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
    // The funnel by stage, in its order.
    let funnel: Vec<(String, f64)> = [
        "prospects_found",
        "contacted",
        "replied",
        "bookings",
        "meetings_held",
        "meetings_won",
    ]
    .iter()
    .filter_map(|stage| {
        let (n, v) = values.iter().find(|(n, _)| n == stage)?;
        Some((rules::label(n).to_string(), *v))
    })
    .collect();
    Ok(Subject {
        client_id: AGENCY.into(),
        title: "Agency pipeline".into(),
        page: Page::Agency(bar_chart("Pipeline this period", &funnel, None)),
        values,
        coherence: Some(store::coherence(ctx, from, now).await?),
    })
}

/// Writes a client's stored report again from what the store holds now (its notes
/// changed, say); returns the page.
pub async fn rewrite(ctx: &Ctx, report_id: &str) -> Result<String, JobError> {
    let templates = template::Templates::load(&ctx.settings.reports)?;
    Ok(rewrite_with(ctx, &templates, report_id).await?.0)
}

/// [`rewrite`] with templates already loaded; the page and what it was written from.
pub async fn rewrite_with(
    ctx: &Ctx,
    templates: &template::Templates,
    report_id: &str,
) -> Result<(String, client::ClientReport), JobError> {
    let (client_id, report_type, start): (String, String, i64) =
        sqlx::query_as("SELECT client_id, report_type, period_start FROM reports WHERE id = $1")
            .bind(report_id)
            .fetch_optional(ctx.store.pool())
            .await?
            .ok_or_else(|| JobError::Invalid(format!("no report `{report_id}`")))?;
    if client_id == AGENCY {
        return Err(JobError::Invalid(
            "the agency's report is written by the month's close only".into(),
        ));
    }
    let period = Period::containing(kind_of(&report_type), start);
    let (_, end) = period.span_millis();
    let gathered = client::gather(ctx, &client_id, &period, report_id, end.min(ctx.now())).await?;
    let html = templates.client_html(&gathered)?;
    sqlx::query("UPDATE reports SET html = $2 WHERE id = $1")
        .bind(report_id)
        .bind(&html)
        .execute(ctx.store.pool())
        .await?;
    Ok((html, gathered))
}

/// The id of a client's monthly report of `period` (`2026-03`); refused, saying what
/// writes it, when the month's close has not.
pub async fn monthly(ctx: &Ctx, client_id: &str, period: &str) -> Result<String, JobError> {
    let p = Period::parse(period).map_err(JobError::Invalid)?;
    if p.kind != cep_shared::period::Kind::Month {
        return Err(JobError::Invalid(format!(
            "period `{period}` is not a month (2026-03)"
        )));
    }
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM reports WHERE client_id = $1 AND report_type = 'monthly' AND period_start = $2",
    )
    .bind(client_id)
    .bind(p.span_millis().0)
    .fetch_optional(ctx.store.pool())
    .await?;
    row.map(|(id,)| id).ok_or_else(|| {
        JobError::Invalid(format!(
            "no monthly report of `{client_id}` for {period}: the month's close writes it (`cep layer reporting` with {{\"period\": \"{period}\"}})"
        ))
    })
}

/// The kind of period a report type covers.
pub fn kind_of(report_type: &str) -> cep_shared::period::Kind {
    match report_type {
        "daily" => cep_shared::period::Kind::Day,
        "weekly" => cep_shared::period::Kind::Week,
        _ => cep_shared::period::Kind::Month,
    }
}

/// The id of a client's report of one period.
fn report_id(client_id: &str, period: &str, report_type: &str) -> String {
    stable_id("rpt", &[client_id, period, report_type])
}

/// Where report files go: `<data_dir>/reports/<period>/`.
pub fn report_dir(ctx: &Ctx, period: &str) -> std::path::PathBuf {
    ctx.settings.data_dir.join("reports").join(period)
}
