//! Container health and Φ_sync, computed from recorded outcomes (business rules,
//! revision 2). Each ratio is scored against its target (`min(1, rate ÷ target)`, or
//! the rate itself with `phi.scoring: raw`); a container's health is
//! `clamp((conversion score + efficiency score) / 2 − error rate, 0, 1)`. A container
//! whose window never reached its minimum sample has no data, and Φ_sync over the
//! others is partial. Every comparison uses values rounded to 6 decimals.

use crate::config::{PhiScoring, Settings};
use crate::layer::Container;
use crate::vocabulary::PhiStatus;
use serde::{Deserialize, Serialize};

/// A ratio over a window; `None` when the window holds nothing to divide by.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| (numerator / denominator).clamp(0.0, 1.0))
}

/// `x` rounded half away from zero to 6 decimals: what every comparison sees, so
/// `0.9 − 0.6` is not above 0.3.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The span a container was evaluated over: its own window, reached back `widened`
/// more windows to find its minimum sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub from: i64,
    pub to: i64,
    pub widened: u32,
}

/// What one container's window recorded.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerInputs {
    pub conversion_rate: Option<f64>,
    pub efficiency: Option<f64>,
    /// Failed ÷ ended jobs of the container's layers; `None` when no job ended.
    pub error_rate: Option<f64>,
    /// The denominators behind the two ratios (for the margin: invoices paid).
    #[serde(default)]
    pub conversion_sample: u64,
    #[serde(default)]
    pub efficiency_sample: u64,
    /// `None`: no window reached the minimum sample.
    #[serde(default)]
    pub window: Option<Window>,
}

/// A rate's score: against its target, or as it is.
pub fn score(rate: f64, target: f64, scoring: PhiScoring) -> f64 {
    match scoring {
        PhiScoring::Targets if target > 0.0 => (rate / target).min(1.0),
        _ => rate,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerHealth {
    pub container: Container,
    pub inputs: ContainerInputs,
    #[serde(default)]
    pub conversion_score: Option<f64>,
    #[serde(default)]
    pub efficiency_score: Option<f64>,
    pub health: Option<f64>,
}

impl ContainerHealth {
    /// Scores the inputs against the container's targets: "no data" unless both
    /// ratios have data. No ended job counts as no error.
    pub fn of(container: Container, inputs: ContainerInputs, s: &Settings) -> Self {
        let t = s.targets.get(container);
        let conversion_score = inputs
            .conversion_rate
            .map(|r| score(r, t.conversion, s.phi.scoring));
        let efficiency_score = inputs
            .efficiency
            .map(|r| score(r, t.efficiency, s.phi.scoring));
        let health = conversion_score
            .zip(efficiency_score)
            .map(|(c, e)| ((c + e) / 2.0 - inputs.error_rate.unwrap_or(0.0)).clamp(0.0, 1.0));
        Self {
            container,
            inputs,
            conversion_score,
            efficiency_score,
            health,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coherence {
    /// `Σ health × weight`; when a container has no data the others' weights are scaled
    /// up to sum to 1 and `missing` names it. `None` when no container has data.
    pub phi_sync: Option<f64>,
    pub status: PhiStatus,
    pub containers: Vec<ContainerHealth>,
    pub missing: Vec<Container>,
    pub red_flags: Vec<String>,
}

impl Coherence {
    /// Every container had data.
    pub fn complete(&self) -> bool {
        self.phi_sync.is_some() && self.missing.is_empty()
    }

    /// Φ_sync as a person reads it: `0.712`, `0.712 (partial: finance no data)`, or
    /// `no data`.
    pub fn shown(&self) -> String {
        shown(self.phi_sync, &self.missing)
    }
}

/// See [`Coherence::shown`].
pub fn shown(phi: Option<f64>, missing: &[Container]) -> String {
    match phi {
        None => "no data".into(),
        Some(phi) if missing.is_empty() => format!("{phi:.3}"),
        Some(phi) => {
            let names: Vec<String> = missing.iter().map(|c| format!("{c} no data")).collect();
            format!("{phi:.3} (partial: {})", names.join(", "))
        }
    }
}

pub fn status(phi: Option<f64>, thresholds: &crate::config::PhiThresholds) -> PhiStatus {
    let Some(phi) = phi else {
        return PhiStatus::NoData;
    };
    let phi = round6(phi);
    thresholds
        .ascending()
        .iter()
        .rev()
        .find(|(_, t)| phi >= round6(*t))
        .map_or(PhiStatus::Critical, |(status, _)| *status)
}

pub fn coherence(inputs: &[(Container, ContainerInputs)], s: &Settings) -> Coherence {
    let flags = &s.cep.red_flags;
    let containers: Vec<ContainerHealth> = inputs
        .iter()
        .map(|(c, i)| ContainerHealth::of(*c, *i, s))
        .collect();
    let known: Vec<(f64, f64)> = containers
        .iter()
        .filter_map(|c| c.health.map(|h| (h, s.containers.get(c.container).weight)))
        .collect();
    let weight_known: f64 = known.iter().map(|(_, w)| w).sum();
    let phi_sync = (weight_known > 0.0)
        .then(|| (known.iter().map(|(h, w)| h * w).sum::<f64>() / weight_known).clamp(0.0, 1.0));
    let missing: Vec<Container> = Container::ALL
        .into_iter()
        .filter(|k| {
            !containers
                .iter()
                .any(|c| c.container == *k && c.health.is_some())
        })
        .collect();

    let mut red_flags = Vec::new();
    if let Some(phi) = phi_sync.filter(|p| round6(*p) < round6(flags.phi_below)) {
        red_flags.push(format!("phi_sync {phi:.3} is below {}", flags.phi_below));
    }
    for c in &containers {
        let limit = match c.container {
            Container::Sales => flags.sales_error_rate_above,
            Container::Operations => flags.operations_error_rate_above,
            Container::Finance => flags.finance_error_rate_above,
        };
        if let Some(e) = c.inputs.error_rate.filter(|e| round6(*e) > round6(limit)) {
            red_flags.push(format!(
                "{} error rate {e:.3} is above {limit}",
                c.container
            ));
        }
    }
    let healths: Vec<f64> = containers
        .iter()
        .filter_map(|c| c.health)
        .map(round6)
        .collect();
    if healths.len() >= 2 {
        let max = healths.iter().cloned().fold(f64::MIN, f64::max);
        let min = healths.iter().cloned().fold(f64::MAX, f64::min);
        let spread = round6(max - min);
        if spread > round6(flags.health_spread_above) {
            red_flags.push(format!(
                "container health spread {spread:.3} is above {}",
                flags.health_spread_above
            ));
        }
    }
    Coherence {
        status: status(phi_sync, &s.cep.phi_thresholds),
        phi_sync,
        containers,
        missing,
        red_flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PhiThresholds, Settings};

    fn inputs(c: f64, e: f64, err: f64) -> ContainerInputs {
        ContainerInputs {
            conversion_rate: Some(c),
            efficiency: Some(e),
            error_rate: Some(err),
            ..ContainerInputs::default()
        }
    }

    fn raw() -> Settings {
        let mut s = Settings::default();
        s.phi.scoring = PhiScoring::Raw;
        s
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn each_ratio_scores_against_its_target_capped_at_one() {
        let s = Settings::default();
        // Sales: 3 % booked against 5 % scores 0.6; 99 % delivered against 98 % scores 1;
        // (0.6 + 1) / 2 − 0.05 errors = 0.75.
        let h = ContainerHealth::of(Container::Sales, inputs(0.03, 0.99, 0.05), &s);
        assert!(close(h.conversion_score.unwrap(), 0.6));
        assert_eq!(h.efficiency_score, Some(1.0));
        assert!(close(h.health.unwrap(), 0.75));
        // Revision 1 scored the raw rates: (0.03 + 0.99) / 2 − 0.05 = 0.46.
        let h = ContainerHealth::of(Container::Sales, inputs(0.03, 0.99, 0.05), &raw());
        assert!(close(h.health.unwrap(), 0.46));
        // Finance: 90 % paid of 95 % is 0.947368…; a 30 % margin of 60 % is 0.5.
        let h = ContainerHealth::of(Container::Finance, inputs(0.9, 0.3, 0.0), &s);
        assert!(close(h.health.unwrap(), (0.9 / 0.95 + 0.5) / 2.0));
        // Health is clamped at 0, and one ratio without data is no data, not 0.
        let h = ContainerHealth::of(Container::Operations, inputs(0.0, 0.1, 0.5), &s);
        assert_eq!(h.health, Some(0.0));
        let empty = ContainerInputs {
            efficiency: Some(1.0),
            ..ContainerInputs::default()
        };
        assert_eq!(
            ContainerHealth::of(Container::Sales, empty, &s).health,
            None
        );
    }

    #[test]
    fn phi_sync_weights_the_three_containers_0_33_0_33_0_34() {
        let s = raw();
        let c = coherence(
            &[
                (Container::Sales, inputs(0.9, 0.9, 0.0)),
                (Container::Operations, inputs(0.8, 0.8, 0.0)),
                (Container::Finance, inputs(1.0, 0.8, 0.0)),
            ],
            &s,
        );
        // 0.9×0.33 + 0.8×0.33 + 0.9×0.34 = 0.867
        assert!(close(c.phi_sync.unwrap(), 0.867));
        assert_eq!(c.status, PhiStatus::Operations);
        assert!(c.complete());
        assert!(c.red_flags.is_empty(), "{:?}", c.red_flags);
        // At every target Φ_sync is 1: production, reachable with a realistic 5 %
        // booking rate.
        let at_target = coherence(
            &[
                (Container::Sales, inputs(0.05, 0.98, 0.0)),
                (Container::Operations, inputs(0.9, 0.9, 0.0)),
                (Container::Finance, inputs(0.95, 0.6, 0.0)),
            ],
            &Settings::default(),
        );
        assert_eq!(at_target.phi_sync, Some(1.0));
        assert_eq!(at_target.status, PhiStatus::Production);
    }

    #[test]
    fn status_is_the_highest_threshold_met_and_critical_below_all() {
        let t = PhiThresholds::default();
        assert_eq!(status(Some(0.95), &t), PhiStatus::Production);
        assert_eq!(status(Some(0.90), &t), PhiStatus::Machine);
        assert_eq!(status(Some(0.66), &t), PhiStatus::Factory);
        assert_eq!(status(Some(0.30), &t), PhiStatus::Infrastructure);
        assert_eq!(status(Some(0.29), &t), PhiStatus::Critical);
        assert_eq!(status(None, &t), PhiStatus::NoData);
        // A threshold met but for floating-point noise is met; one missed by a
        // millionth is not.
        assert_eq!(status(Some(0.95 - 1e-12), &t), PhiStatus::Production);
        assert_eq!(status(Some(0.949_999), &t), PhiStatus::Machine);
    }

    #[test]
    fn red_flags_name_low_phi_error_rates_and_spread() {
        let s = raw();
        let c = coherence(
            &[
                (Container::Sales, inputs(0.9, 0.9, 0.11)),
                (Container::Operations, inputs(0.4, 0.4, 0.0)),
                (Container::Finance, inputs(0.5, 0.5, 0.06)),
            ],
            &s,
        );
        assert_eq!(c.red_flags.len(), 4, "{:?}", c.red_flags);
        assert!(c.red_flags[0].starts_with("phi_sync"));
        for flag in [
            "sales error rate",
            "finance error rate",
            "container health spread",
        ] {
            assert!(c.red_flags.iter().any(|f| f.starts_with(flag)), "{flag}");
        }
    }

    #[test]
    fn comparisons_use_values_rounded_to_six_decimals() {
        let s = raw();
        // 0.9 − 0.6 is 0.30000000000000004 in floating point: not above 0.30.
        let c = coherence(
            &[
                (Container::Sales, inputs(0.9, 0.9, 0.0)),
                (Container::Operations, inputs(0.6, 0.6, 0.0)),
                (Container::Finance, inputs(0.9, 0.9, 0.0)),
            ],
            &s,
        );
        assert!(
            !c.red_flags.iter().any(|f| f.contains("spread")),
            "{:?}",
            c.red_flags
        );
        // An error rate of exactly 0.1 is not above 0.1; 0.100001 is.
        let flagged = |err: f64| {
            coherence(&[(Container::Sales, inputs(1.0, 1.0, err))], &s)
                .red_flags
                .iter()
                .any(|f| f.starts_with("sales error rate"))
        };
        assert!(!flagged(0.1));
        assert!(!flagged(0.1 + 1e-12));
        assert!(flagged(0.100_001));
        assert_eq!(round6(0.000_000_5), 0.000_001, "half away from zero");
        assert_eq!(round6(-0.000_000_5), -0.000_001);
    }

    #[test]
    fn a_container_without_data_is_named_and_the_others_carry_the_weight() {
        let s = raw();
        let c = coherence(
            &[
                (Container::Sales, inputs(0.8, 0.8, 0.0)),
                (Container::Operations, inputs(0.6, 0.6, 0.0)),
                (Container::Finance, ContainerInputs::default()),
            ],
            &s,
        );
        assert!(close(c.phi_sync.unwrap(), 0.7));
        assert_eq!(c.missing, vec![Container::Finance]);
        assert!(!c.complete());
        assert_eq!(c.shown(), "0.700 (partial: finance no data)");
        let none = coherence(&[], &s);
        assert_eq!(none.phi_sync, None);
        assert_eq!(none.status, PhiStatus::NoData);
        assert_eq!(none.shown(), "no data");
    }
}
