//! The layer graph: every job kind reached from a schedule or the Calendly webhook, no
//! chain looping back.

use super::record::{Edge, Entry, Finding, Status, finding};
use super::schedules::{Schedule, schedules_of};
use cep_scheduler::{Scheduled, Tick};
use cep_shared::config::Settings;
use cep_shared::layer::CHAINS;
use cep_shared::{JobKind, Layer};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// The scheduler's entries (read from the jobs it really enqueues) and the chains
/// between layers: every job kind must be reachable and no chain may loop back.
pub(super) fn graph(s: &Settings, now: DateTime<Utc>) -> (Vec<Entry>, Vec<Edge>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut entries = Vec::new();
    for Schedule { what, key, .. } in schedules_of(s) {
        let kinds: BTreeSet<JobKind> = cep_scheduler::jobs_for(&Tick { what, at: now }, s)
            .iter()
            .map(|j| j.kind)
            .collect();
        if kinds.is_empty() {
            findings.push(finding(
                "layer_graph",
                &key,
                Status::Fail,
                "this schedule enqueues no job",
            ));
        }
        for kind in kinds {
            if let (Scheduled::Container(c), Some(layer)) = (what, kind.layer())
                && layer.container() != Some(c)
            {
                findings.push(finding(
                    "layer_graph",
                    &key,
                    Status::Fail,
                    format!(
                        "the {} schedule starts {}, a layer of another container",
                        c.as_str(),
                        kind.queue()
                    ),
                ));
            }
            entries.push(Entry {
                kind: kind.queue().into(),
                by: key.clone(),
            });
        }
    }
    entries.push(Entry {
        kind: JobKind::Layer(Layer::Booking).queue().into(),
        by: "the Calendly webhook".into(),
    });
    let edges: Vec<Edge> = CHAINS
        .iter()
        .map(|c| Edge {
            from: c.from.queue().into(),
            to: c.to.queue().into(),
            why: c.why.into(),
        })
        .collect();

    // Reachability from the entries.
    let mut reached: BTreeSet<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    loop {
        let before = reached.len();
        for e in &edges {
            if reached.contains(e.from.as_str()) {
                reached.insert(e.to.as_str());
            }
        }
        if reached.len() == before {
            break;
        }
    }
    let unreached: Vec<&str> = JobKind::all()
        .map(JobKind::queue)
        .filter(|k| !reached.contains(k))
        .collect();
    findings.push(if unreached.is_empty() {
        finding(
            "layer_graph",
            "",
            Status::Pass,
            format!(
                "all {} job kinds are reached from {} entries",
                JobKind::all().count(),
                entries.len()
            ),
        )
    } else {
        finding(
            "layer_graph",
            "",
            Status::Fail,
            format!(
                "no schedule or webhook leads to {}: that work never runs",
                unreached.join(", ")
            ),
        )
    });

    // A chain through other layers back to where it started would never end; a layer
    // chaining itself (the outreach sequence) is bounded by its own rules.
    let cycle = JobKind::all().map(JobKind::queue).find(|start| {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = edges
            .iter()
            .filter(|e| e.from == *start && e.to != e.from)
            .map(|e| e.to.as_str())
            .collect();
        while let Some(k) = stack.pop() {
            if k == *start {
                return true;
            }
            if seen.insert(k) {
                stack.extend(
                    edges
                        .iter()
                        .filter(|e| e.from == k && e.to != e.from)
                        .map(|e| e.to.as_str()),
                );
            }
        }
        false
    });
    findings.push(match cycle {
        None => finding(
            "layer_graph",
            "",
            Status::Pass,
            "no chain of jobs loops back on itself",
        ),
        Some(k) => finding(
            "layer_graph",
            "",
            Status::Fail,
            format!("a chain of jobs starting at {k} comes back to it"),
        ),
    });
    (entries, edges, findings)
}
