//! The architecture engine: `cep architecture check` validates the fleet's own design
//! — its configuration and secrets, the layer graph, each schedule against its
//! container's timescale, the weights, the rate limits against the demand the
//! configuration makes of them, and the worker's deadlines against the queue's orphan
//! window and the pods' grace period — and writes an auditable design record, JSON and
//! Markdown with a Mermaid diagram. The record goes into `architectures`, each finding
//! into `test_results` linked to it; an LLM reviews it when one is configured.
//!
//! Each check is a file of its own (`configuration`, `graph`, `schedules`,
//! `capacity`, `deadlines`); `record` holds what they find and renders it; `review` asks
//! the LLM; `store` keeps it.

mod capacity;
mod configuration;
mod deadlines;
mod graph;
mod record;
mod review;
mod schedules;
mod store;

pub use record::{
    Edge, Entry, Finding, ProviderInfo, Record, Review, ScheduleInfo, Status, markdown,
};
pub use review::{review, reviewer};
pub use store::store;

use capacity::rate_limits;
use cep_shared::config::Settings;
use cep_shared::{JobKind, Secrets};
use chrono::{DateTime, Utc};
use configuration::weights;
use deadlines::deadlines;
use graph::graph;
use schedules::schedules;
use std::path::Path;

/// Runs every check. `manifests`, when given, is a directory of Kubernetes manifests
/// whose grace periods the worker's drain deadline must fit in.
pub fn check(
    settings: &Settings,
    secrets: &Secrets,
    manifests: Option<&Path>,
    now: DateTime<Utc>,
) -> Record {
    // The configuration's own findings, every one of them (the start refuses the first).
    let config = settings.findings();
    let mut findings =
        configuration::listed("config", &config, "the configuration loads and validates");
    findings.extend(configuration::listed(
        "secrets",
        &settings.secret_findings(secrets),
        "every configured service has its key in the environment",
    ));
    findings.extend(configuration::listed(
        "sending",
        &settings.live_findings(secrets),
        "nothing would send real mail wrong (dry run on, or real sender, key and public URL)",
    ));
    findings.extend(weights(settings, &config));
    let (entries, edges, graph) = graph(settings, now);
    findings.extend(graph);
    let (schedules, timing) = schedules(settings, now);
    findings.extend(timing);
    let (providers, limits) = rate_limits(settings, secrets);
    findings.extend(limits);
    findings.extend(deadlines(settings, &config, manifests));

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

#[cfg(test)]
mod tests {
    use super::*;
    use cep_shared::Layer;
    use cep_shared::config::{Per, PitchWriter, ValidationRules};

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
