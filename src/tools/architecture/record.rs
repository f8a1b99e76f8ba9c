//! What the check records: each finding, the layer graph, the schedules and the
//! providers' budgets, and the same record as Markdown with a Mermaid diagram.

use cep_shared::config::{Settings, ValidationRules};
use cep_shared::{Container, Layer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One thing the check looked at: which check, the configuration key it concerns,
/// and what it found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub check: String,
    pub key: String,
    pub status: Status,
    pub detail: String,
}

pub(super) fn finding(
    check: &str,
    key: &str,
    status: Status,
    detail: impl Into<String>,
) -> Finding {
    Finding {
        check: check.into(),
        key: key.into(),
        status,
        detail: detail.into(),
    }
}

/// Where work enters the graph: a schedule or a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: String,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub what: String,
    pub key: String,
    pub cron: String,
    pub timescale: String,
    pub next: Vec<String>,
}

/// A provider's budget: calls a day it allows and, when the configuration uses it,
/// the most calls a day the configuration can ask of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderInfo {
    pub provider: String,
    pub in_use: bool,
    pub limits: Vec<String>,
    pub capacity_per_day: Option<f64>,
    pub demand_per_day: Option<u64>,
}

/// The LLM's review of the record, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub by: String,
    pub model: String,
    pub summary: Option<String>,
    pub concerns: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub created_at: String,
    pub version: String,
    /// A digest of the effective configuration the record describes.
    pub config_digest: String,
    pub validation_rules: ValidationRules,
    pub verdict: Status,
    pub findings: Vec<Finding>,
    pub entries: Vec<Entry>,
    pub layers: Vec<String>,
    pub edges: Vec<Edge>,
    pub schedules: Vec<ScheduleInfo>,
    pub providers: Vec<ProviderInfo>,
    pub review: Option<Review>,
    /// The same record as Markdown with a Mermaid diagram.
    pub markdown: String,
}

impl Record {
    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// Whether the design passes under its validation rules.
    pub fn passed(&self) -> bool {
        match self.validation_rules {
            ValidationRules::Strict => self.verdict == Status::Pass,
            ValidationRules::Lenient => self.verdict != Status::Fail,
        }
    }
}

fn node(kind: &str) -> String {
    kind.replace('-', "_")
}

/// The record as Markdown: verdict, findings, a Mermaid diagram of the layer graph,
/// schedules, budgets and the review.
pub fn markdown(r: &Record, s: &Settings) -> String {
    let mut md = format!(
        "# CEP fleet design record {}\n\n- created: {}\n- version: {}\n- configuration: {}\n- rules: {}\n- verdict: **{}** ({} pass, {} warn, {} fail)\n\n",
        r.id,
        r.created_at,
        r.version,
        r.config_digest,
        match r.validation_rules {
            ValidationRules::Strict => "strict (a warning fails)",
            ValidationRules::Lenient => "lenient (only failures fail)",
        },
        r.verdict.as_str(),
        r.count(Status::Pass),
        r.count(Status::Warn),
        r.count(Status::Fail),
    );
    md.push_str("## Findings\n\n| status | check | key | finding |\n|---|---|---|---|\n");
    for f in &r.findings {
        md.push_str(&format!(
            "| {} | {} | `{}` | {} |\n",
            f.status.as_str(),
            f.check,
            f.key,
            f.detail.replace('|', "\\|")
        ));
    }
    md.push_str("\n## Layer graph\n\n```mermaid\nflowchart LR\n");
    for c in Container::ALL {
        let cs = s.containers.get(c);
        md.push_str(&format!(
            "  subgraph c_{0}[\"{0} · {1} · weight {2}\"]\n",
            c.as_str(),
            cs.timescale.as_str(),
            cs.weight
        ));
        for l in c.layers() {
            md.push_str(&format!(
                "    {}[\"{} {}\"]\n",
                node(l.as_str()),
                l.number(),
                l.as_str().replace('_', " ")
            ));
        }
        md.push_str("  end\n");
    }
    md.push_str("  feedback_loop[\"9 feedback loop\"]\n  aggregation([\"Φ_sync aggregation\"])\n");
    for (i, e) in r.entries.iter().enumerate() {
        md.push_str(&format!(
            "  entry{i}[/\"{}\"/] --> {}\n",
            e.by,
            node(&e.kind)
        ));
    }
    for e in &r.edges {
        md.push_str(&format!(
            "  {} -->|\"{}\"| {}\n",
            node(&e.from),
            e.why,
            node(&e.to)
        ));
    }
    for l in [Layer::Prospecting, Layer::PitchGeneration, Layer::Outreach] {
        md.push_str(&format!(
            "  feedback_loop -.->|\"parameters\"| {}\n",
            node(l.as_str())
        ));
    }
    md.push_str("```\n\n## Schedules\n\n| what | key | cron | timescale | next runs |\n|---|---|---|---|---|\n");
    for sch in &r.schedules {
        md.push_str(&format!(
            "| {} | `{}` | `{}` | {} | {} |\n",
            sch.what,
            sch.key,
            sch.cron,
            sch.timescale,
            sch.next.join(", ")
        ));
    }
    md.push_str("\n## Rate limits\n\n| provider | in use | limits | budget / day | demand / day |\n|---|---|---|---|---|\n");
    for p in &r.providers {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            p.provider,
            if p.in_use { "yes" } else { "no" },
            if p.limits.is_empty() {
                "none".into()
            } else {
                p.limits.join(", ")
            },
            p.capacity_per_day
                .map_or("unlimited".into(), |c| format!("{c:.0}")),
            p.demand_per_day.map_or("-".into(), |d| d.to_string())
        ));
    }
    md.push_str(&format!(
        "\n## Deadlines\n\n- drain deadline: {} s; orphan window: {} s; job timeout: {} s\n",
        s.worker.shutdown_deadline_seconds,
        s.queue.orphan_window().as_secs(),
        s.worker.job_timeout_seconds
    ));
    if let Some(review) = &r.review {
        md.push_str(&format!(
            "\n## Review ({}, {})\n\n",
            review.by, review.model
        ));
        match (&review.summary, &review.error) {
            (Some(summary), _) => {
                md.push_str(&format!("{summary}\n\n"));
                for c in &review.concerns {
                    md.push_str(&format!("- {c}\n"));
                }
            }
            (None, Some(e)) => md.push_str(&format!("No review: {e}\n")),
            (None, None) => {}
        }
    }
    md
}
