//! The one stable name of every layer, container and queue.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The nine layers of the CEP machine, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Prospecting,
    PitchGeneration,
    Outreach,
    Booking,
    Onboarding,
    Optimization,
    Reporting,
    Finance,
    FeedbackLoop,
}

impl Layer {
    pub const ALL: [Layer; 9] = [
        Layer::Prospecting,
        Layer::PitchGeneration,
        Layer::Outreach,
        Layer::Booking,
        Layer::Onboarding,
        Layer::Optimization,
        Layer::Reporting,
        Layer::Finance,
        Layer::FeedbackLoop,
    ];

    /// The name used for queues, metric labels, config keys and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Layer::Prospecting => "prospecting",
            Layer::PitchGeneration => "pitch_generation",
            Layer::Outreach => "outreach",
            Layer::Booking => "booking",
            Layer::Onboarding => "onboarding",
            Layer::Optimization => "optimization",
            Layer::Reporting => "reporting",
            Layer::Finance => "finance",
            Layer::FeedbackLoop => "feedback_loop",
        }
    }

    /// The layer's number in the seed documents (1..=9).
    pub const fn number(self) -> u8 {
        self as u8 + 1
    }

    /// The container whose health this layer's outcomes count towards; `None` for the
    /// feedback loop, which reads all three.
    pub const fn container(self) -> Option<Container> {
        match self {
            Layer::Prospecting | Layer::PitchGeneration | Layer::Outreach | Layer::Booking => {
                Some(Container::Sales)
            }
            Layer::Onboarding | Layer::Optimization => Some(Container::Operations),
            Layer::Reporting | Layer::Finance => Some(Container::Finance),
            Layer::FeedbackLoop => None,
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Layer {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().replace('-', "_");
        if let Ok(n) = wanted.parse::<u8>() {
            return Layer::ALL
                .into_iter()
                .find(|l| l.number() == n)
                .ok_or_else(|| UnknownName::new("layer", s));
        }
        Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == wanted)
            .ok_or_else(|| UnknownName::new("layer", s))
    }
}

/// The three containers whose health rolls up into Φ_sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    Sales,
    Operations,
    Finance,
}

impl Container {
    pub const ALL: [Container; 3] = [Container::Sales, Container::Operations, Container::Finance];

    pub const fn as_str(self) -> &'static str {
        match self {
            Container::Sales => "sales",
            Container::Operations => "operations",
            Container::Finance => "finance",
        }
    }

    pub fn layers(self) -> impl Iterator<Item = Layer> {
        Layer::ALL
            .into_iter()
            .filter(move |l| l.container() == Some(self))
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job asks a worker to do: run one layer, or aggregate Φ_sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum JobKind {
    Layer(Layer),
    Aggregation(AggregationKind),
}

/// The aggregator has one job kind; a unit enum keeps its name in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregationKind {
    Aggregation,
}

impl JobKind {
    pub const AGGREGATION: JobKind = JobKind::Aggregation(AggregationKind::Aggregation);

    pub fn all() -> impl Iterator<Item = JobKind> {
        Layer::ALL
            .into_iter()
            .map(JobKind::Layer)
            .chain(std::iter::once(JobKind::AGGREGATION))
    }

    /// Pipeline order: layers by number, the aggregation last.
    pub fn order(self) -> u32 {
        match self {
            JobKind::Layer(l) => u32::from(l.number()),
            JobKind::Aggregation(_) => 10,
        }
    }

    /// The queue this kind of job travels on.
    pub const fn queue(self) -> &'static str {
        match self {
            JobKind::Layer(l) => l.as_str(),
            JobKind::Aggregation(_) => "aggregation",
        }
    }

    pub const fn layer(self) -> Option<Layer> {
        match self {
            JobKind::Layer(l) => Some(l),
            JobKind::Aggregation(_) => None,
        }
    }
}

/// One way a finished job starts another: `from` enqueues `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    pub from: JobKind,
    pub to: JobKind,
    pub why: &'static str,
}

const fn chain(from: Layer, to: JobKind, why: &'static str) -> Chain {
    Chain {
        from: JobKind::Layer(from),
        to,
        why,
    }
}

/// Every chaining between layers, as the layers do it (the design record draws and
/// checks this graph). The entries are the scheduler's jobs and the booking webhook.
pub const CHAINS: [Chain; 9] = [
    chain(
        Layer::Prospecting,
        JobKind::Layer(Layer::PitchGeneration),
        "hot and warm leads",
    ),
    chain(
        Layer::PitchGeneration,
        JobKind::Layer(Layer::Outreach),
        "the sequence's steps, delayed",
    ),
    chain(
        Layer::Booking,
        JobKind::Layer(Layer::Outreach),
        "a booking's confirmation text",
    ),
    chain(
        Layer::Booking,
        JobKind::Layer(Layer::Onboarding),
        "a meeting won (the operator records it)",
    ),
    chain(
        Layer::Onboarding,
        JobKind::Layer(Layer::Optimization),
        "each client's weekly run",
    ),
    chain(
        Layer::Reporting,
        JobKind::Layer(Layer::Finance),
        "the month's reports",
    ),
    chain(
        Layer::Finance,
        JobKind::Layer(Layer::FeedbackLoop),
        "the month's invoices",
    ),
    chain(
        Layer::FeedbackLoop,
        JobKind::AGGREGATION,
        "the month's insights",
    ),
    chain(
        Layer::Outreach,
        JobKind::Layer(Layer::Outreach),
        "a reply's follow-up text",
    ),
];

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.queue())
    }
}

impl FromStr for JobKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "aggregation" {
            return Ok(JobKind::AGGREGATION);
        }
        s.parse::<Layer>()
            .map(JobKind::Layer)
            .map_err(|_| UnknownName::new("queue", s))
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {what} `{name}`")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

impl UnknownName {
    pub(crate) fn new(what: &'static str, name: &str) -> Self {
        Self {
            what,
            name: name.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_round_trips_through_its_name_and_number() {
        for layer in Layer::ALL {
            assert_eq!(layer.as_str().parse::<Layer>().unwrap(), layer);
            assert_eq!(layer.number().to_string().parse::<Layer>().unwrap(), layer);
        }
        assert_eq!(Layer::FeedbackLoop.number(), 9);
        assert!("layer_ten".parse::<Layer>().is_err());
    }

    #[test]
    fn containers_hold_the_layers_the_seed_assigns() {
        let sales: Vec<_> = Container::Sales.layers().map(Layer::number).collect();
        let ops: Vec<_> = Container::Operations.layers().map(Layer::number).collect();
        let fin: Vec<_> = Container::Finance.layers().map(Layer::number).collect();
        assert_eq!(sales, [1, 2, 3, 4]);
        assert_eq!(ops, [5, 6]);
        assert_eq!(fin, [7, 8]);
        assert_eq!(Layer::FeedbackLoop.container(), None);
    }

    #[test]
    fn queue_names_are_stable_strings_not_type_paths() {
        let names: Vec<_> = JobKind::all().map(JobKind::queue).collect();
        assert_eq!(names.len(), 10);
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        assert_eq!(
            "aggregation".parse::<JobKind>().unwrap(),
            JobKind::AGGREGATION
        );
    }
}
