//! The worker runtime: an apalis worker over our queue backend, the dispatch from a
//! leased job to its layer's handler, what a handler may touch ([`Ctx`]), how an error
//! decides a retry, and a trace carried across the queue. It knows the layers only
//! through [`dispatch`]; nothing here knows what a layer does.

pub mod backend;
mod context;
mod dispatch;
mod error;
pub mod trace;
mod worker;

pub use context::Ctx;
pub use dispatch::{Outcome, handle, run_one};
pub use error::{Disposition, JobError};
pub use worker::*;
