//! The layer workers and the Φ_sync aggregator: each layer's handler, the worker
//! runtime that leases jobs and settles them, and the dispatch between the two.

pub mod aggregation;
mod context;
mod dispatch;
mod error;
pub mod pitch_generation;
pub mod prospecting;
pub mod runtime;

pub use context::Ctx;
pub use dispatch::{Outcome, handle, run_one};
pub use error::{Disposition, JobError};
