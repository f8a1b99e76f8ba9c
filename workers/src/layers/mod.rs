//! The nine layers of the CEP machine, each a folder of one shape: `mod.rs` (the result
//! type and `handle`), `rules.rs` (pure, unit-tested), `store.rs` (its SQL) and one file
//! per external API it calls. [`params`] holds the parameters layers 1–3 read and the
//! feedback loop moves. A layer may use the runtime, the clients and the engines; it
//! enqueues the next layer's job through [`cep_shared::jobs`], not through that layer.

pub mod booking;
pub mod feedback_loop;
pub mod finance;
pub mod onboarding;
pub mod optimization;
pub mod outreach;
pub mod params;
pub mod pitch_generation;
pub mod prospecting;
pub mod reporting;
#[cfg(test)]
pub(crate) mod text_checks;
