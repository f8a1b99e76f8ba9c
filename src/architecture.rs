//! The architecture engine: `cep architecture check` validates the fleet's own design
//! — its configuration and secrets, the layer graph, each schedule against its
//! container's timescale, the weights, the rate limits against the demand the
//! configuration makes of them, and the worker's deadlines against the queue's orphan
//! window and the pods' grace period — and writes an auditable design record, JSON and
//! Markdown with a Mermaid diagram. The record goes into `architectures`, each finding
//! into `test_results` linked to it; an LLM reviews it when one is configured.

use cep_scheduler::{Scheduled, Tick};
use cep_shared::config::{
    ConfigError, Per, PitchWriter, ProspectSource, Provider, ResearchSearch, Reviewer, Settings,
    Timescale, ValidationRules, parse_cron,
};
use cep_shared::layer::CHAINS;
use cep_shared::{Container, JobKind, Layer, Secrets};
use cep_workers::clients::llm::Llm;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

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

fn finding(check: &str, key: &str, status: Status, detail: impl Into<String>) -> Finding {
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

/// Runs every check. `manifests`, when given, is a directory of Kubernetes manifests
/// whose grace periods the worker's drain deadline must fit in.
pub fn check(
    settings: &Settings,
    secrets: &Secrets,
    manifests: Option<&Path>,
    now: DateTime<Utc>,
) -> Record {
    let mut findings = Vec::new();
    findings.push(match settings.validate() {
        Ok(()) => finding(
            "config",
            "",
            Status::Pass,
            "the configuration loads and validates",
        ),
        Err(e) => config_finding("config", e),
    });
    findings.push(match settings.check_secrets(secrets) {
        Ok(()) => finding(
            "secrets",
            "",
            Status::Pass,
            "every configured service has its key in the environment",
        ),
        Err(e) => config_finding("secrets", e),
    });
    findings.extend(weights(settings));
    let (entries, edges, graph) = graph(settings, now);
    findings.extend(graph);
    let (schedules, timing) = schedules(settings, now);
    findings.extend(timing);
    let (providers, limits) = rate_limits(settings, secrets);
    findings.extend(limits);
    findings.extend(deadlines(settings, manifests));

    let verdict = findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Pass);
    let digest = cep_shared::ids::stable_id(
        "config",
        &[&serde_json::to_string(settings).unwrap_or_default()],
    );
    let mut record = Record {
        id: cep_shared::ids::stable_id(
            "architecture",
            &[&now.timestamp_millis().to_string(), &digest],
        ),
        created_at: now.to_rfc3339(),
        version: env!("CARGO_PKG_VERSION").into(),
        config_digest: digest,
        validation_rules: settings.engines.architecture.validation_rules,
        verdict,
        findings,
        entries,
        layers: JobKind::all().map(|k| k.queue().to_owned()).collect(),
        edges,
        schedules,
        providers,
        review: None,
        markdown: String::new(),
    };
    record.markdown = markdown(&record, settings);
    record
}

fn config_finding(check: &str, e: ConfigError) -> Finding {
    match e {
        ConfigError::Invalid { key, reason } => finding(check, &key, Status::Fail, reason),
        ConfigError::Load(reason) => finding(check, "", Status::Fail, reason),
    }
}

fn weights(s: &Settings) -> Vec<Finding> {
    let containers: Vec<(Container, f64)> = Container::ALL
        .iter()
        .map(|c| (*c, s.containers.get(*c).weight))
        .collect();
    let sum: f64 = containers.iter().map(|c| c.1).sum();
    let terms = containers
        .iter()
        .map(|(c, w)| format!("{} {w}", c.as_str()))
        .collect::<Vec<_>>()
        .join(" + ");
    let impact = &s.layers.feedback_loop.impact_weights;
    let impact_sum: f64 = Layer::ALL.iter().map(|l| impact.get(*l)).sum();
    let ok = |x: f64| (x - 1.0).abs() < 1e-9;
    vec![
        finding(
            "weights",
            "containers",
            if ok(sum) { Status::Pass } else { Status::Fail },
            format!("Φ_sync weights: {terms} = {sum:.4}"),
        ),
        finding(
            "weights",
            "layers.feedback_loop.impact_weights",
            if ok(impact_sum) {
                Status::Pass
            } else {
                Status::Fail
            },
            format!("layer impact weights sum to {impact_sum:.4}"),
        ),
    ]
}

/// The scheduler's entries (read from the jobs it really enqueues) and the chains
/// between layers: every job kind must be reachable and no chain may loop back.
fn graph(s: &Settings, now: DateTime<Utc>) -> (Vec<Entry>, Vec<Edge>, Vec<Finding>) {
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

fn seed_timescale(c: Container) -> Timescale {
    match c {
        Container::Sales => Timescale::Daily,
        Container::Operations => Timescale::Weekly,
        Container::Finance => Timescale::Monthly,
    }
}

/// One of the scheduler's schedules: what it starts, its key in the configuration,
/// its cron expression and the timescale of its periods.
struct Schedule {
    what: Scheduled,
    name: &'static str,
    key: String,
    cron: String,
    timescale: Timescale,
}

fn schedules_of(s: &Settings) -> Vec<Schedule> {
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
fn schedules(s: &Settings, now: DateTime<Utc>) -> (Vec<ScheduleInfo>, Vec<Finding>) {
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

const fn per_day(per: Per) -> f64 {
    match per {
        Per::Minute => 1440.0,
        Per::Hour => 24.0,
        Per::Day => 1.0,
        Per::Month => 1.0 / 30.0,
    }
}

const fn window_seconds(per: Per) -> u64 {
    match per {
        Per::Minute => 60,
        Per::Hour => 3600,
        Per::Day => 86_400,
        Per::Month => 30 * 86_400,
    }
}

/// Whether the configuration calls `p`, and the most calls a day it can ask for.
fn demand(s: &Settings, secrets: &Secrets, p: Provider) -> (bool, Option<u64>) {
    let prospects = u64::from(s.layers.prospecting.campaigns_per_day)
        * u64::from(s.layers.prospecting.max_prospects);
    let campaigns = u64::from(s.layers.prospecting.campaigns_per_day);
    let research = &s.engines.research;
    let researched = research.researches_before_pitch();
    let llm = |w: PitchWriter| {
        let writes = s.providers.llm.writer == w;
        let summarizes = researched && writes;
        let calls = u64::from(writes) * prospects + u64::from(summarizes) * prospects;
        (writes, Some(calls))
    };
    match p {
        Provider::Overpass => (
            s.providers.prospects.source == ProspectSource::Overpass,
            Some(campaigns),
        ),
        Provider::Places => (
            s.providers.prospects.source == ProspectSource::Places,
            Some(campaigns * u64::from(s.providers.prospects.places_max_pages)),
        ),
        Provider::WebSearch => (
            research.provider != ResearchSearch::Offline,
            Some(if researched { prospects } else { 0 }),
        ),
        Provider::Firecrawl => (
            research.firecrawl,
            Some(if researched { prospects } else { 0 }),
        ),
        Provider::Ollama => llm(PitchWriter::Ollama),
        Provider::Anthropic => llm(PitchWriter::Anthropic),
        Provider::Openai => llm(PitchWriter::Openai),
        Provider::Twilio => (
            !s.providers.twilio.account_sid.is_empty(),
            Some(u64::from(s.layers.outreach.daily_caps.sms)),
        ),
        Provider::Calendly => (secrets.calendly_api_token.is_some(), None),
        Provider::Stripe => (s.providers.stripe.create_invoices, None),
        Provider::Gbp | Provider::GbpEdits => (!s.providers.gbp.dry_run, None),
    }
}

/// Every provider's budget: a service the configuration calls with no limit, a
/// limit a shorter window's limit makes unreachable, and a day's worst-case demand
/// above what the budget allows (the rest is deferred, not failed).
fn rate_limits(s: &Settings, secrets: &Secrets) -> (Vec<ProviderInfo>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut findings = Vec::new();
    for p in Provider::ALL {
        let key = format!("providers.rate_limits.{}", p.as_str());
        let limits = s.providers.rate_limits.get(p);
        let (in_use, wanted) = demand(s, secrets, p);
        let capacity = limits
            .iter()
            .map(|l| l.limit as f64 * per_day(l.per))
            .reduce(f64::min);
        out.push(ProviderInfo {
            provider: p.as_str().into(),
            in_use,
            limits: limits
                .iter()
                .map(|l| format!("{}/{}", l.limit, l.per.as_str()))
                .collect(),
            capacity_per_day: capacity,
            demand_per_day: wanted.filter(|_| in_use),
        });
        for short in limits {
            for long in limits {
                if window_seconds(short.per) < window_seconds(long.per) && short.limit > long.limit
                {
                    findings.push(finding(
                        "rate_limits",
                        &key,
                        Status::Warn,
                        format!(
                            "{}/{} can never be reached under {}/{}",
                            short.limit,
                            short.per.as_str(),
                            long.limit,
                            long.per.as_str()
                        ),
                    ));
                }
            }
        }
        if !in_use {
            continue;
        }
        let local = p == Provider::Ollama;
        match (capacity, wanted) {
            (None, _) if !local => findings.push(finding(
                "rate_limits",
                &key,
                Status::Warn,
                format!(
                    "{} is called with no limit: nothing keeps the fleet inside its quota",
                    p.as_str()
                ),
            )),
            (Some(cap), Some(want)) if want as f64 > cap => findings.push(finding(
                "rate_limits",
                &key,
                Status::Warn,
                format!(
                    "up to {want} calls a day against a budget of {cap:.0} a day: the rest wait for the next window"
                ),
            )),
            _ => findings.push(finding(
                "rate_limits",
                &key,
                Status::Pass,
                match (capacity, wanted) {
                    (Some(cap), Some(want)) => {
                        format!("up to {want} calls a day within a budget of {cap:.0}")
                    }
                    (Some(cap), None) => format!("a budget of {cap:.0} calls a day"),
                    _ => format!("{} runs locally, unlimited", p.as_str()),
                },
            )),
        }
    }
    (out, findings)
}

/// Kubernetes' grace period when a manifest sets none.
const DEFAULT_GRACE_SECONDS: u64 = 30;

/// `terminationGracePeriodSeconds` of every manifest under `dir`, by file.
fn grace_periods(dir: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                let text = std::fs::read_to_string(&path)?;
                for line in text.lines() {
                    if let Some(v) = line.trim().strip_prefix("terminationGracePeriodSeconds:")
                        && let Ok(n) = v.trim().parse()
                    {
                        out.push((path.display().to_string(), n));
                    }
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The drain deadline against the orphan window and the pods' grace period, and the
/// longest external call against the deadline and the job timeout.
fn deadlines(s: &Settings, manifests: Option<&Path>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let deadline = s.worker.shutdown_deadline_seconds;
    let window = s.queue.orphan_window().as_secs();
    let key = "worker.shutdown_deadline_seconds";
    findings.push(finding(
        "deadlines",
        key,
        if deadline < window {
            Status::Pass
        } else {
            Status::Fail
        },
        format!(
            "drain deadline {deadline} s against the orphan window {window} s: {}",
            if deadline < window {
                "a draining worker's jobs are never taken as orphans"
            } else {
                "a draining worker's jobs would be recovered and run twice"
            }
        ),
    ));
    // Without manifests there is no pod to compare with (the embedded default).
    let graces = manifests.map(|dir| {
        grace_periods(dir).map(|g| {
            if g.is_empty() {
                vec![(
                    format!("{} (none set: Kubernetes' default)", dir.display()),
                    DEFAULT_GRACE_SECONDS,
                )]
            } else {
                g
            }
        })
    });
    match graces {
        None => {}
        Some(Err(e)) => findings.push(finding(
            "deadlines",
            key,
            Status::Fail,
            format!("cannot read the manifests: {e}"),
        )),
        Some(Ok(graces)) => {
            let short: Vec<String> = graces
                .iter()
                .filter(|(_, g)| *g <= deadline)
                .map(|(f, g)| format!("{f}: {g} s"))
                .collect();
            findings.push(if short.is_empty() {
                finding(
                    "deadlines",
                    key,
                    Status::Pass,
                    format!(
                        "{deadline} s fits in every grace period ({})",
                        graces
                            .iter()
                            .map(|g| g.1.to_string())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect::<Vec<_>>()
                            .join(", ")
                            + " s"
                    ),
                )
            } else {
                finding(
                    "deadlines",
                    key,
                    Status::Fail,
                    format!(
                        "Kubernetes kills the pod before the {deadline} s drain ends: {}",
                        short.join("; ")
                    ),
                )
            });
        }
    }
    let calls = [
        (
            "providers.http_timeout_seconds",
            s.providers.http_timeout_seconds,
        ),
        (
            "providers.llm.timeout_seconds",
            s.providers.llm.timeout_seconds,
        ),
        (
            "providers.smtp.timeout_seconds",
            s.providers.smtp.timeout_seconds,
        ),
        (
            "engines.testing.timeout_seconds",
            s.engines.testing.timeout_seconds,
        ),
    ];
    for (call_key, secs) in calls {
        if secs >= deadline {
            findings.push(finding(
                "deadlines",
                call_key,
                Status::Warn,
                format!(
                    "a {secs} s call outlasts the {deadline} s drain: a job waiting on it is handed back and run again"
                ),
            ));
        }
        if secs >= s.worker.job_timeout_seconds {
            findings.push(finding(
                "deadlines",
                call_key,
                Status::Fail,
                format!(
                    "a {secs} s call outlasts worker.job_timeout_seconds ({} s): the job is cancelled first",
                    s.worker.job_timeout_seconds
                ),
            ));
        }
    }
    findings
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

/// The LLM that reviews, when one is configured and has its key.
pub fn reviewer(s: &Settings, secrets: &Secrets) -> Option<Llm> {
    match s.engines.architecture.review {
        Reviewer::None => None,
        Reviewer::Ollama => Some(Llm::Ollama),
        Reviewer::Anthropic => secrets.anthropic_api_key.as_ref().map(|_| Llm::Anthropic),
        Reviewer::Openai => secrets.openai_api_key.as_ref().map(|_| Llm::Openai),
    }
}

#[derive(Deserialize)]
struct ReviewAnswer {
    summary: String,
    #[serde(default)]
    concerns: Vec<String>,
}

/// Asks the configured LLM to review the record; `None` when no reviewer is set up.
/// A failed review is recorded with its reason and does not fail the check.
pub async fn review(ctx: &cep_workers::Ctx, record: &Record) -> Option<Review> {
    use cep_workers::clients::llm::{self, Prompt};
    let llm = reviewer(&ctx.settings, &ctx.secrets)?;
    let model = ctx.settings.engines.architecture.model.clone();
    let prompt = Prompt {
        system: "You review the design of a job-queue worker fleet for a local-SEO agency. \
                 Read the design record and name concrete risks the automated checks may \
                 have missed: scheduling, capacity, rate limits, failure handling. Do not \
                 repeat findings that passed. Answer only with JSON: \
                 {\"summary\": string, \"concerns\": [string]}."
            .into(),
        user: record.markdown.clone(),
        schema: serde_json::json!({
            "type": "object",
            "properties": {
                "summary": { "type": "string" },
                "concerns": { "type": "array", "items": { "type": "string" } }
            },
            "required": ["summary", "concerns"]
        }),
    };
    let by = ctx.settings.engines.architecture.review.as_str().to_owned();
    let answer = llm::ask_model(ctx, llm, &model, &prompt)
        .await
        .map_err(|f| f.to_string())
        .and_then(|text| {
            llm::answer_json::<ReviewAnswer>(&text)
                .map_err(|e| format!("the review is not the JSON asked for: {e}"))
        });
    Some(match answer {
        Ok(a) => Review {
            by,
            model,
            summary: Some(a.summary),
            concerns: a.concerns,
            error: None,
        },
        Err(e) => Review {
            by,
            model,
            summary: None,
            concerns: Vec::new(),
            error: Some(e),
        },
    })
}

/// Stores the record in `architectures` and each finding as a `test_results` row
/// linked to it.
pub async fn store(
    store: &cep_shared::store::Store,
    r: &Record,
    now_ms: i64,
) -> anyhow::Result<()> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("INSERT INTO architectures (id, created_at, document) VALUES ($1, $2, $3)")
        .bind(&r.id)
        .bind(now_ms)
        .bind(serde_json::to_string(r)?)
        .execute(&mut *tx)
        .await?;
    for (i, f) in r.findings.iter().enumerate() {
        sqlx::query(
            "INSERT INTO test_results (id, architecture_id, subject, outcome, details, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(cep_shared::ids::stable_id(
            "test",
            &[&r.id, &i.to_string(), &f.check, &f.key],
        ))
        .bind(&r.id)
        .bind(format!("architecture:{}", f.check))
        .bind(f.status.as_str())
        .bind(serde_json::to_string(f)?)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-11-21T12:00:00Z".parse().unwrap()
    }

    fn fails(r: &Record) -> Vec<(&str, &str)> {
        r.findings
            .iter()
            .filter(|f| f.status == Status::Fail)
            .map(|f| (f.check.as_str(), f.key.as_str()))
            .collect()
    }

    #[test]
    fn the_default_design_passes_strict() {
        let r = check(&Settings::default(), &Secrets::default(), None, at());
        let not_pass: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| f.status != Status::Pass)
            .collect();
        assert!(not_pass.is_empty(), "{not_pass:#?}");
        assert!(r.passed());
        assert_eq!(r.layers.len(), 10);
    }

    #[test]
    fn a_weekly_sales_schedule_skips_six_days_in_seven() {
        let mut s = Settings::default();
        s.containers.sales.schedule = "0 0 6 * * Mon *".into();
        let r = check(&s, &Secrets::default(), None, at());
        assert_eq!(fails(&r), [("schedules", "containers.sales.schedule")]);
        let f = r
            .findings
            .iter()
            .find(|f| f.key == "containers.sales.schedule" && f.status == Status::Fail)
            .unwrap();
        assert!(
            f.detail.contains("313 of the next 365 daily periods")
                && f.detail.contains("first: 2026-11-22"),
            "{}",
            f.detail
        );
        assert!(!r.passed());
    }

    #[test]
    fn a_schedule_firing_twice_a_period_warns_and_fails_only_strict() {
        let mut s = Settings::default();
        s.containers.operations.schedule = "0 0 6 * * Mon,Thu *".into();
        let r = check(&s, &Secrets::default(), None, at());
        assert!(fails(&r).is_empty());
        assert_eq!(r.verdict, Status::Warn);
        assert!(!r.passed());
        s.engines.architecture.validation_rules = ValidationRules::Lenient;
        assert!(check(&s, &Secrets::default(), None, at()).passed());
    }

    #[test]
    fn demand_above_a_budget_and_an_unlimited_paid_service_warn() {
        let mut s = Settings::default();
        s.providers.llm.writer = PitchWriter::Anthropic;
        s.providers.rate_limits.anthropic = vec![cep_shared::config::Limit {
            per: Per::Day,
            limit: 10,
        }];
        let secrets = Secrets {
            anthropic_api_key: Some("k".into()),
            ..Default::default()
        };
        let r = check(&s, &secrets, None, at());
        let warn = r
            .findings
            .iter()
            .find(|f| f.key == "providers.rate_limits.anthropic")
            .unwrap();
        assert_eq!(warn.status, Status::Warn);
        assert!(
            warn.detail.contains("budget of 10 a day"),
            "{}",
            warn.detail
        );
        s.providers.rate_limits.anthropic.clear();
        let r = check(&s, &secrets, None, at());
        assert!(
            r.findings.iter().any(
                |f| f.key == "providers.rate_limits.anthropic" && f.detail.contains("no limit")
            )
        );
    }

    #[test]
    fn an_invalid_config_and_a_missing_key_fail_naming_them() {
        let mut s = Settings::default();
        s.containers.sales.weight = 0.5;
        s.providers.llm.writer = PitchWriter::Openai;
        let r = check(&s, &Secrets::default(), None, at());
        let f = fails(&r);
        assert!(f.contains(&("config", "containers")), "{f:?}");
        assert!(f.contains(&("weights", "containers")), "{f:?}");
        assert!(f.contains(&("secrets", "providers.llm.writer")), "{f:?}");
    }

    #[test]
    fn the_diagram_draws_every_layer_entry_and_chain() {
        let r = check(&Settings::default(), &Secrets::default(), None, at());
        let md = &r.markdown;
        assert!(md.contains("```mermaid\nflowchart LR"));
        for l in Layer::ALL {
            assert!(md.contains(&format!("    {}[", l.as_str())) || l == Layer::FeedbackLoop);
        }
        assert!(md.contains("prospecting -->|\"hot and warm leads\"| pitch_generation"));
        assert!(md.contains("feedback_loop -->|\"the month's insights\"| aggregation"));
        assert!(md.contains("[/\"the Calendly webhook\"/] --> booking"));
    }
}
