//! Container health and Φ_sync, computed from recorded outcomes.

use crate::config::{ContainersSettings, PhiThresholds, RedFlagSettings};
use crate::layer::Container;
use crate::vocabulary::PhiStatus;
use serde::{Deserialize, Serialize};

/// A ratio over a window; `None` when the window holds nothing to divide by.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| (numerator / denominator).clamp(0.0, 1.0))
}

/// What one container's window recorded.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerInputs {
    pub conversion_rate: Option<f64>,
    pub efficiency: Option<f64>,
    /// Failed ÷ ended jobs of the container's layers; `None` when no job ended.
    pub error_rate: Option<f64>,
}

impl ContainerInputs {
    /// `clamp((conversion + efficiency) / 2 − error_rate, 0, 1)`; "no data" unless both
    /// conversion and efficiency have data. No ended job counts as no error.
    pub fn health(&self) -> Option<f64> {
        let (c, e) = (self.conversion_rate?, self.efficiency?);
        Some(((c + e) / 2.0 - self.error_rate.unwrap_or(0.0)).clamp(0.0, 1.0))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerHealth {
    pub container: Container,
    pub inputs: ContainerInputs,
    pub health: Option<f64>,
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

pub fn status(phi: Option<f64>, thresholds: &PhiThresholds) -> PhiStatus {
    let Some(phi) = phi else {
        return PhiStatus::NoData;
    };
    thresholds
        .ascending()
        .iter()
        .rev()
        .find(|(_, t)| phi >= *t - 1e-12)
        .map_or(PhiStatus::Critical, |(status, _)| *status)
}

pub fn coherence(
    inputs: &[(Container, ContainerInputs)],
    weights: &ContainersSettings,
    thresholds: &PhiThresholds,
    flags: &RedFlagSettings,
) -> Coherence {
    let containers: Vec<ContainerHealth> = inputs
        .iter()
        .map(|(c, i)| ContainerHealth {
            container: *c,
            inputs: *i,
            health: i.health(),
        })
        .collect();
    let known: Vec<(f64, f64)> = containers
        .iter()
        .filter_map(|c| c.health.map(|h| (h, weights.get(c.container).weight)))
        .collect();
    let weight_known: f64 = known.iter().map(|(_, w)| w).sum();
    let phi_sync = (weight_known > 0.0)
        .then(|| (known.iter().map(|(h, w)| h * w).sum::<f64>() / weight_known).clamp(0.0, 1.0));
    let missing = containers
        .iter()
        .filter(|c| c.health.is_none())
        .map(|c| c.container)
        .collect();

    let mut red_flags = Vec::new();
    if let Some(phi) = phi_sync.filter(|p| *p < flags.phi_below) {
        red_flags.push(format!("phi_sync {phi:.3} is below {}", flags.phi_below));
    }
    for c in &containers {
        let limit = match c.container {
            Container::Sales => flags.sales_error_rate_above,
            Container::Operations => flags.operations_error_rate_above,
            Container::Finance => flags.finance_error_rate_above,
        };
        if let Some(e) = c.inputs.error_rate.filter(|e| *e > limit) {
            red_flags.push(format!(
                "{} error rate {e:.3} is above {limit}",
                c.container
            ));
        }
    }
    let healths: Vec<f64> = containers.iter().filter_map(|c| c.health).collect();
    if healths.len() >= 2 {
        let max = healths.iter().cloned().fold(f64::MIN, f64::max);
        let min = healths.iter().cloned().fold(f64::MAX, f64::min);
        if max - min > flags.health_spread_above {
            red_flags.push(format!(
                "container health spread {:.3} is above {}",
                max - min,
                flags.health_spread_above
            ));
        }
    }
    Coherence {
        status: status(phi_sync, thresholds),
        phi_sync,
        containers,
        missing,
        red_flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn inputs(c: f64, e: f64, err: f64) -> ContainerInputs {
        ContainerInputs {
            conversion_rate: Some(c),
            efficiency: Some(e),
            error_rate: Some(err),
        }
    }

    #[test]
    fn health_is_the_mean_of_conversion_and_efficiency_minus_errors_clamped() {
        assert!((inputs(0.2, 0.9, 0.05).health().unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(inputs(0.0, 0.1, 0.5).health(), Some(0.0));
        assert_eq!(inputs(1.0, 1.0, 0.0).health(), Some(1.0));
        let empty = ContainerInputs {
            conversion_rate: None,
            efficiency: Some(1.0),
            error_rate: None,
        };
        assert_eq!(empty.health(), None, "an empty window is no data, not 0");
    }

    #[test]
    fn phi_sync_weights_the_three_containers_0_33_0_33_0_34() {
        let s = Settings::default();
        let c = coherence(
            &[
                (Container::Sales, inputs(0.9, 0.9, 0.0)),
                (Container::Operations, inputs(0.8, 0.8, 0.0)),
                (Container::Finance, inputs(1.0, 0.8, 0.0)),
            ],
            &s.containers,
            &s.cep.phi_thresholds,
            &s.cep.red_flags,
        );
        // 0.9×0.33 + 0.8×0.33 + 0.9×0.34 = 0.867
        assert!((c.phi_sync.unwrap() - 0.867).abs() < 1e-9);
        assert_eq!(c.status, PhiStatus::Operations);
        assert!(c.red_flags.is_empty(), "{:?}", c.red_flags);
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
    }

    #[test]
    fn red_flags_name_low_phi_error_rates_and_spread() {
        let s = Settings::default();
        let c = coherence(
            &[
                (Container::Sales, inputs(0.9, 0.9, 0.11)),
                (Container::Operations, inputs(0.4, 0.4, 0.0)),
                (Container::Finance, inputs(0.5, 0.5, 0.06)),
            ],
            &s.containers,
            &s.cep.phi_thresholds,
            &s.cep.red_flags,
        );
        assert_eq!(c.red_flags.len(), 4, "{:?}", c.red_flags);
        assert!(c.red_flags[0].starts_with("phi_sync"));
        assert!(
            c.red_flags
                .iter()
                .any(|f| f.starts_with("sales error rate"))
        );
        assert!(
            c.red_flags
                .iter()
                .any(|f| f.starts_with("finance error rate"))
        );
        assert!(
            c.red_flags
                .iter()
                .any(|f| f.starts_with("container health spread"))
        );
    }

    #[test]
    fn a_container_without_data_is_named_and_the_others_carry_the_weight() {
        let s = Settings::default();
        let c = coherence(
            &[
                (Container::Sales, inputs(0.8, 0.8, 0.0)),
                (Container::Operations, inputs(0.6, 0.6, 0.0)),
                (Container::Finance, ContainerInputs::default()),
            ],
            &s.containers,
            &s.cep.phi_thresholds,
            &s.cep.red_flags,
        );
        assert!((c.phi_sync.unwrap() - 0.7).abs() < 1e-9);
        assert_eq!(c.missing, vec![Container::Finance]);
        let none = coherence(&[], &s.containers, &s.cep.phi_thresholds, &s.cep.red_flags);
        assert_eq!(none.phi_sync, None);
        assert_eq!(none.status, PhiStatus::NoData);
    }
}
