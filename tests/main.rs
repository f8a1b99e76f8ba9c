//! The integration tests, one binary: each module a part of the fleet as its users
//! meet it, on real SQLite, Postgres, Redis, SMTP, Chromium and promtool, with local fakes
//! of the external APIs. [`helpers`] starts what they need; a test that cannot reach
//! Postgres or Redis fails, it never skips.

mod alerts;
mod architecture;
mod audit;
mod bench;
mod browser;
mod channels;
mod config;
mod console;
mod crash;
mod deploy;
mod email;
mod examples;
mod faults;
mod fleet;
mod fuzz;
mod gbp;
mod helpers;
mod hostile;
mod image;
mod layers;
mod llm;
mod meetings;
mod ops;
mod pipeline;
mod providers;
mod queue;
mod reports;
mod research;
mod simulate;
mod stripe_calendly;
mod traces;
