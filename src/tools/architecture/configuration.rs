//! The configuration as a whole: every finding of its own validation (the start refuses
//! the first; the record lists them all), its secrets, and its weights shown as sums.

use super::record::{Finding, Status, finding};
use cep_shared::config::{ConfigError, Finding as ConfigFinding, Settings};
use cep_shared::{Container, Layer};

/// The configuration's findings as the record's: one failure each, or one pass.
pub(super) fn listed(check: &str, found: &[ConfigFinding], pass: &str) -> Vec<Finding> {
    if found.is_empty() {
        return vec![finding(check, "", Status::Pass, pass)];
    }
    found
        .iter()
        .map(|f| finding(check, &f.key, Status::Fail, f.reason.clone()))
        .collect()
}

/// A configuration error as a failed finding (a schedule that does not parse, say).
pub(super) fn config_finding(check: &str, e: ConfigError) -> Finding {
    match e {
        ConfigError::Invalid { key, reason } => finding(check, &key, Status::Fail, reason),
        ConfigError::Load(reason) => finding(check, "", Status::Fail, reason),
    }
}

/// Whether the configuration's validation found `key` wrong.
pub(super) fn fails(config: &[ConfigFinding], key: &str) -> bool {
    config.iter().any(|f| f.key == key)
}

/// The Φ_sync and layer-impact weights written out as sums; whether they pass is the
/// configuration's own finding.
pub(super) fn weights(s: &Settings, config: &[ConfigFinding]) -> Vec<Finding> {
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
    let status = |key| {
        if fails(config, key) {
            Status::Fail
        } else {
            Status::Pass
        }
    };
    vec![
        finding(
            "weights",
            "containers",
            status("containers"),
            format!("Φ_sync weights: {terms} = {sum:.4}"),
        ),
        finding(
            "weights",
            "layers.feedback_loop.impact_weights",
            status("layers.feedback_loop.impact_weights"),
            format!("layer impact weights sum to {impact_sum:.4}"),
        ),
    ]
}
