//! The `cep` binary's roles as library functions, so tests start them the way
//! Kubernetes does.

pub mod alerts;
pub mod app;
pub mod architecture;
pub mod bench;
pub mod push;
pub mod simulate;
pub mod telemetry;
