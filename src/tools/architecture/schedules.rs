//! Each schedule against its container's timescale over the coming year.

use super::configuration::config_finding;
use super::record::{Finding, ScheduleInfo, Status, finding};
use cep_scheduler::Scheduled;
use cep_shared::Container;
use cep_shared::config::{Settings, Timescale, parse_cron};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

pub(super) fn seed_timescale(c: Container) -> Timescale {
    match c {
        Container::Sales => Timescale::Daily,
        Container::Operations => Timescale::Weekly,
        Container::Finance => Timescale::Monthly,
    }
}

/// One of the scheduler's schedules: what it starts, its key in the configuration,
/// its cron expression and the timescale of its periods.
pub(super) struct Schedule {
    pub(super) what: Scheduled,
    pub(super) name: &'static str,
    pub(super) key: String,
    pub(super) cron: String,
    pub(super) timescale: Timescale,
}

pub(super) fn schedules_of(s: &Settings) -> Vec<Schedule> {
    let mut out: Vec<Schedule> = Container::ALL
        .iter()
        .map(|c| {
            let cs = s.containers.get(*c);
            Schedule {
                what: Scheduled::Container(*c),
                name: c.as_str(),
                key: format!("containers.{}.schedule", c.as_str()),
                cron: cs.schedule.clone(),
                timescale: cs.timescale,
            }
        })
        .collect();
    out.push(Schedule {
        what: Scheduled::Aggregation,
        name: "aggregation",
        key: "schedules.aggregation".into(),
        cron: s.schedules.aggregation.clone(),
        timescale: Timescale::Daily,
    });
    out
}

/// Each schedule against its timescale over the coming year: a period it never fires
/// in is work that never runs; firing twice in one is deduplicated (a warning).
pub(super) fn schedules(s: &Settings, now: DateTime<Utc>) -> (Vec<ScheduleInfo>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut findings = Vec::new();
    let horizon = now + Duration::days(366);
    for Schedule {
        what,
        name,
        key,
        cron,
        timescale,
    } in schedules_of(s)
    {
        if let Scheduled::Container(c) = what
            && timescale != seed_timescale(c)
        {
            findings.push(finding(
                "schedules",
                &format!("containers.{name}.timescale"),
                Status::Warn,
                format!(
                    "{name} runs {}; the seed runs it {}",
                    timescale.as_str(),
                    seed_timescale(c).as_str()
                ),
            ));
        }
        let schedule = match parse_cron(&cron, &key) {
            Ok(s) => s,
            Err(e) => {
                findings.push(config_finding("schedules", e));
                continue;
            }
        };
        const MAX_FIRINGS: usize = 20_000;
        let firings: Vec<DateTime<Utc>> = schedule
            .after(&now)
            .take_while(|t| *t <= horizon)
            .take(MAX_FIRINGS)
            .collect();
        out.push(ScheduleInfo {
            what: name.into(),
            key: key.clone(),
            cron: cron.clone(),
            timescale: timescale.as_str().into(),
            next: firings.iter().take(3).map(|t| t.to_rfc3339()).collect(),
        });
        // Periods wholly inside the horizon: the first and last may be cut.
        let mut expected: Vec<String> = Vec::new();
        let mut day = now;
        while day <= horizon {
            let p = cep_scheduler::period(what, day, s);
            if expected.last() != Some(&p) {
                expected.push(p);
            }
            day += Duration::days(1);
        }
        let whole = &expected[1..expected.len().saturating_sub(1)];
        let mut per_period: BTreeMap<String, usize> = BTreeMap::new();
        for t in &firings {
            *per_period
                .entry(cep_scheduler::period(what, *t, s))
                .or_default() += 1;
        }
        let missed: Vec<&String> = whole
            .iter()
            .filter(|p| !per_period.contains_key(*p))
            .collect();
        let most = per_period.values().copied().max().unwrap_or(0);
        if let Some(first) = missed.first() {
            findings.push(finding(
                "schedules",
                &key,
                Status::Fail,
                format!(
                    "`{cron}` leaves {} of the next {} {} periods without a run (first: {first}): {name} work is skipped in them",
                    missed.len(),
                    whole.len(),
                    timescale.as_str()
                ),
            ));
        } else if firings.len() == MAX_FIRINGS || most > 1 {
            findings.push(finding(
                "schedules",
                &key,
                Status::Warn,
                format!(
                    "`{cron}` fires {}{most} times in one {} period; the period key makes all but the first a no-op",
                    if firings.len() == MAX_FIRINGS { "at least " } else { "" },
                    timescale.as_str()
                ),
            ));
        } else {
            findings.push(finding(
                "schedules",
                &key,
                Status::Pass,
                format!(
                    "`{cron}` runs {name} once in each of the next {} {} periods",
                    whole.len(),
                    timescale.as_str()
                ),
            ));
        }
    }
    (out, findings)
}
