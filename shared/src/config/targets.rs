//! The one table of targets (`targets` in `config.yaml`): what Φ_sync scores each
//! container's ratios against, what the reports recommend on and what the feedback loop
//! finds insights against.

use serde::{Deserialize, Serialize};

/// A container's two targets: the rates at which it scores 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioTargets {
    pub conversion: f64,
    pub efficiency: f64,
}

/// One table of targets serving Φ_sync, the reports and the feedback loop alike (business
/// rules, revision 2): a container's score, a report's recommendation and the loop's
/// insight hold a rate to the same number. Rates are shares (0–1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Targets {
    /// Prospects found per day.
    pub prospects_per_day: f64,
    /// Prospects contacted ÷ found.
    pub prospect_conversion: f64,
    /// Mean confidence of the pitches written.
    pub pitch_confidence: f64,
    /// Prospects who replied ÷ contacted.
    pub response_rate: f64,
    /// Bookings (less cancellations) ÷ prospects contacted: Φ_sync's sales conversion
    /// and the reports' conversion.
    pub booking_rate: f64,
    /// Messages delivered ÷ messages due: Φ_sync's sales efficiency.
    pub delivery_rate: f64,
    /// Meetings held ÷ (held + no-show).
    pub show_rate: f64,
    /// Meetings won ÷ held.
    pub close_rate: f64,
    /// Onboardings completed ÷ started: Φ_sync's operations conversion.
    pub go_live_rate: f64,
    /// Onboarding tasks done by their due date ÷ tasks due: Φ_sync's operations
    /// efficiency.
    pub tasks_on_time: f64,
    /// Days from a client's start to going live (fewer is better).
    pub onboarding_days: f64,
    /// A client's profile score (0–100).
    pub gbp_score: f64,
    /// Profile score points gained per client in a period.
    pub score_gain: f64,
    pub visibility_gain: f64,
    /// Invoices paid ÷ invoices due: Φ_sync's finance conversion.
    pub invoices_paid: f64,
    /// (Revenue − costs) ÷ revenue: Φ_sync's finance efficiency.
    pub margin: f64,
    /// Acquisition spend per client won, in cents (less is better).
    pub acquisition_cost_cents: u64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            prospects_per_day: 10.0,
            prospect_conversion: 0.15,
            pitch_confidence: 0.75,
            response_rate: 0.30,
            booking_rate: 0.05,
            delivery_rate: 0.98,
            show_rate: 0.80,
            close_rate: 0.60,
            go_live_rate: 0.90,
            tasks_on_time: 0.90,
            onboarding_days: 10.0,
            gbp_score: 85.0,
            score_gain: 20.0,
            visibility_gain: 15.0,
            invoices_paid: 0.95,
            margin: 0.60,
            acquisition_cost_cents: 30_000,
        }
    }
}

impl Targets {
    /// A container's two targets, from the table.
    pub fn get(&self, c: crate::layer::Container) -> RatioTargets {
        let (conversion, efficiency) = match c {
            crate::layer::Container::Sales => (self.booking_rate, self.delivery_rate),
            crate::layer::Container::Operations => (self.go_live_rate, self.tasks_on_time),
            crate::layer::Container::Finance => (self.invoices_paid, self.margin),
        };
        RatioTargets {
            conversion,
            efficiency,
        }
    }

    /// Every target that is a share, named as in `config.yaml`.
    pub fn shares(&self) -> [(&'static str, f64); 11] {
        [
            ("prospect_conversion", self.prospect_conversion),
            ("pitch_confidence", self.pitch_confidence),
            ("response_rate", self.response_rate),
            ("booking_rate", self.booking_rate),
            ("delivery_rate", self.delivery_rate),
            ("show_rate", self.show_rate),
            ("close_rate", self.close_rate),
            ("go_live_rate", self.go_live_rate),
            ("tasks_on_time", self.tasks_on_time),
            ("invoices_paid", self.invoices_paid),
            ("margin", self.margin),
        ]
    }
}
