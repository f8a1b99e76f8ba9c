//! The scheduler: turns each container's cron schedule into jobs, one per layer and
//! period, with a deterministic key so any number of scheduler replicas (or a restart)
//! enqueue each period exactly once.

use cep_shared::Container;
use cep_shared::config::{Settings, parse_cron};
use cep_shared::jobs::{AggregationJob, OnboardingJob, ProspectingJob, ReportingJob};
use cep_shared::queue::{NewJob, Queue, QueueError};
use chrono::{DateTime, Datelike, Utc};
use tokio::sync::watch;

/// One firing of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub what: Scheduled,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheduled {
    Container(Container),
    Aggregation,
}

/// Every firing in `(from, to]`.
pub fn ticks(settings: &Settings, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Tick> {
    let mut out = Vec::new();
    let mut add = |what: Scheduled, expr: &str| {
        // Validated at load; an unparsable expression cannot reach here.
        if let Ok(s) = parse_cron(expr, "schedule") {
            for at in s.after(&from).take_while(|t| *t <= to) {
                out.push(Tick { what, at });
            }
        }
    };
    for c in Container::ALL {
        add(
            Scheduled::Container(c),
            &settings.containers.get(c).schedule,
        );
    }
    add(Scheduled::Aggregation, &settings.schedules.aggregation);
    out.sort_by_key(|t| t.at);
    out
}

/// The period a tick belongs to: its day, its ISO week, or for a monthly tick the
/// month before (the one it closes).
pub fn period(what: Scheduled, at: DateTime<Utc>, settings: &Settings) -> String {
    use cep_shared::config::Timescale::*;
    let timescale = match what {
        Scheduled::Container(c) => settings.containers.get(c).timescale,
        Scheduled::Aggregation => Daily,
    };
    match timescale {
        Daily => at.format("%Y-%m-%d").to_string(),
        Weekly => {
            let w = at.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        // The monthly close is of the month just ended: reports and invoices cover a whole
        // calendar month.
        Monthly => cep_shared::period::Period::containing(
            cep_shared::period::Kind::Month,
            at.timestamp_millis(),
        )
        .previous()
        .to_string(),
    }
}

/// The location × category campaigns of one day, rotating through every pair.
pub fn campaigns_for(day_index: i64, settings: &Settings) -> Vec<(String, String)> {
    let r = &settings.layers.prospecting;
    let pairs: Vec<(String, String)> = r
        .categories
        .iter()
        .flat_map(|c| r.locations.iter().map(move |l| (l.clone(), c.clone())))
        .collect();
    let n = r.campaigns_per_day as i64;
    (0..n)
        .map(|i| pairs[((day_index * n + i).rem_euclid(pairs.len() as i64)) as usize].clone())
        .collect()
}

/// The jobs one tick enqueues, each keyed by layer and period.
pub fn jobs_for(tick: &Tick, settings: &Settings) -> Vec<NewJob> {
    let at = tick.at.timestamp_millis();
    let period = period(tick.what, tick.at, settings);
    match tick.what {
        Scheduled::Container(Container::Sales) => {
            let day = tick.at.timestamp().div_euclid(86_400);
            campaigns_for(day, settings)
                .into_iter()
                .map(|(location, category)| {
                    let job = ProspectingJob {
                        period: period.clone(),
                        location,
                        category,
                        max_prospects: None,
                    };
                    NewJob::of(&job, at)
                })
                .collect()
        }
        // The weekly review fans out each client's optimization run.
        Scheduled::Container(Container::Operations) => vec![NewJob::of(
            &OnboardingJob::Review {
                period: period.clone(),
            },
            at,
        )],
        // Reporting chains finance, finance the feedback loop, that the month's Φ_sync.
        Scheduled::Container(Container::Finance) => {
            vec![NewJob::of(&ReportingJob::new(&period), at)]
        }
        Scheduled::Aggregation => vec![NewJob::of(&AggregationJob::new(&period), at)],
    }
}

/// Enqueues every job of the ticks in `(from, to]`; returns how many were new.
pub async fn enqueue_between(
    queue: &Queue,
    settings: &Settings,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<usize, QueueError> {
    let jobs: Vec<NewJob> = ticks(settings, from, to)
        .iter()
        .flat_map(|t| jobs_for(t, settings))
        .collect();
    queue.push_many(jobs).await
}

/// The scheduler role: wakes every `tick_seconds` and enqueues what came due, looking
/// back one catch-up window so a restart misses nothing.
pub async fn run(
    queue: Queue,
    settings: &Settings,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let every = std::time::Duration::from_secs(settings.schedules.tick_seconds);
    let catch_up = chrono::Duration::hours(1);
    let mut from = queue.clock().now() - catch_up;
    tracing::info!(every_s = every.as_secs(), "scheduler started");
    loop {
        let now = queue.clock().now();
        match enqueue_between(&queue, settings, from, now).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(jobs = n, "enqueued scheduled jobs");
                }
                from = now;
            }
            Err(e) => tracing::warn!(error = %e, "could not enqueue; will retry"),
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_week_fires_sales_daily_operations_once_and_aggregation_daily() {
        let s = Settings::default();
        let from = Utc.with_ymd_and_hms(2026, 1, 4, 23, 0, 0).unwrap(); // Sunday night
        let to = from + chrono::Duration::days(7);
        let t = ticks(&s, from, to);
        let count = |w: Scheduled| t.iter().filter(|x| x.what == w).count();
        assert_eq!(count(Scheduled::Container(Container::Sales)), 7);
        assert_eq!(count(Scheduled::Container(Container::Operations)), 1);
        assert_eq!(count(Scheduled::Container(Container::Finance)), 0);
        assert_eq!(count(Scheduled::Aggregation), 7);
    }

    #[test]
    fn periods_name_the_day_week_or_month() {
        let s = Settings::default();
        let at = Utc.with_ymd_and_hms(2026, 2, 2, 6, 0, 0).unwrap();
        assert_eq!(
            period(Scheduled::Container(Container::Sales), at, &s),
            "2026-02-02"
        );
        assert_eq!(
            period(Scheduled::Container(Container::Operations), at, &s),
            "2026-W06"
        );
        assert_eq!(
            period(Scheduled::Container(Container::Finance), at, &s),
            "2026-01",
            "the close of the month just ended"
        );
    }

    #[test]
    fn campaigns_rotate_through_every_location_and_category() {
        let s = Settings::default();
        let r = &s.layers.prospecting;
        let total = r.categories.len() * r.locations.len();
        let seen: std::collections::HashSet<_> = (0..total as i64)
            .flat_map(|d| campaigns_for(d, &s))
            .collect();
        assert_eq!(seen.len(), total);
    }
}
