//! The configuration as a whole: it loads, its secrets are set, its weights add up.

use super::record::{Finding, Status, finding};
use cep_shared::config::{ConfigError, Settings};
use cep_shared::{Container, Layer};

pub(super) fn config_finding(check: &str, e: ConfigError) -> Finding {
    match e {
        ConfigError::Invalid { key, reason } => finding(check, &key, Status::Fail, reason),
        ConfigError::Load(reason) => finding(check, "", Status::Fail, reason),
    }
}

pub(super) fn weights(s: &Settings) -> Vec<Finding> {
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
