//! The layer workers and the Φ_sync aggregator.
//!
//! - [`runtime`]: the worker that leases jobs, runs them and settles them;
//! - [`clients`]: the platforms the fleet talks to (provider calls, signatures, SMTP, LLMs);
//! - [`engines`]: research and website audits, used by several layers;
//! - [`layers`]: the nine layers, one folder each;
//! - [`aggregation`]: Φ_sync from the containers' health;
//! - [`http`]: webhooks, inbound mail, unsubscribe links and the ops endpoints.
//!
//! Arrows point down that list's reverse: `http` uses layers, layers use engines and
//! clients, everything uses the runtime's `Ctx` and errors.

pub mod aggregation;
pub mod clients;
pub mod console;
pub mod engines;
pub mod http;
pub mod layers;
pub mod runtime;

pub use runtime::{Ctx, Disposition, JobError, Outcome, handle, run_one};
