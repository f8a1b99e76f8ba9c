//! What two or more parts of the CEP fleet need: layer names and the named states,
//! the job contracts between layers, configuration, the clock, the Φ_sync maths, the
//! store and the queue. It depends on no other crate of ours; everything else may
//! depend on it.

pub mod clock;
pub mod config;
pub mod format;
pub mod ids;
pub mod jobs;
pub mod layer;
pub mod metrics;
pub mod period;
pub mod phi;
pub mod queue;
pub mod signals;
pub mod store;
pub mod vocabulary;

pub use clock::Clock;
pub use config::{Secrets, Settings};
pub use layer::{Container, JobKind, Layer};
