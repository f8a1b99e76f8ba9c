//! Time as the fleet sees it: the wall clock in production, a simulated clock in
//! `cep simulate` and tests. Scheduling (due times, windows) reads this clock; leases
//! and heartbeats always use the wall clock, because they guard real processes.

use chrono::{DateTime, TimeZone, Utc};

/// A minute, an hour and a day in milliseconds, the unit of every time the fleet stores.
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Simulated(Arc<AtomicI64>),
}

impl Clock {
    pub fn simulated(start: DateTime<Utc>) -> Self {
        Clock::Simulated(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.now_millis())
            .single()
            .unwrap_or_default()
    }

    pub fn now_millis(&self) -> i64 {
        match self {
            Clock::System => Utc::now().timestamp_millis(),
            Clock::Simulated(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a simulated clock to `to`; the wall clock cannot be moved.
    pub fn set(&self, to: DateTime<Utc>) {
        if let Clock::Simulated(t) = self {
            t.store(to.timestamp_millis(), Ordering::SeqCst);
        }
    }
}

/// Wall-clock milliseconds, for leases and heartbeats.
pub fn wall_millis() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
