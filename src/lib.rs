//! The `cep` binary's roles as library functions, so tests start them the way
//! Kubernetes does; the command line ([`cli`]) that dispatches to them; the
//! [`tools`] that examine the fleet; telemetry, alert rules and the Pushgateway.

pub mod alerts;
pub mod app;
pub mod cli;
pub mod push;
pub mod seed_api;
pub mod telemetry;
pub mod tools;
