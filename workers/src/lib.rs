//! The layer workers and the Φ_sync aggregator: each layer's handler, the worker
//! runtime that leases jobs and settles them, and the dispatch between the two.

pub mod aggregation;
pub mod api;
pub mod audit;
pub mod backend;
pub mod booking;
mod context;
mod dispatch;
mod error;
pub mod feedback_loop;
pub mod finance;
pub mod gbp;
pub mod onboarding;
pub mod ops;
pub mod optimization;
pub mod outreach;
pub mod params;
pub mod pitch_generation;
pub mod prospecting;
pub mod provider;
pub mod reporting;
pub mod research;
pub mod runtime;
pub mod signature;
pub mod trace;

pub use context::Ctx;
pub use dispatch::{Outcome, handle, run_one};
pub use error::{Disposition, JobError};
