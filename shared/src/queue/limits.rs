//! Fleet-wide rate limits, kept beside the queue so every worker replica shares them:
//! on Redis in the fleet, on SQLite embedded.
//!
//! Each limit is a fixed, calendar-aligned window (a UTC minute, hour, day or month) on
//! the scheduling clock. A call is granted only when every window of its provider has
//! room, and then counts against all of them at once (one script on Redis, one
//! transaction on SQLite), so two replicas can never together exceed a limit. A
//! denied call learns when the fullest window ends: the job is deferred until then.

use super::{Queue, QueueError};
use crate::clock::from_millis;
use crate::config::{Limit, Per, Provider};
use chrono::{Datelike, Duration, TimeZone, Timelike, Utc};

/// What taking one call from a provider's budget gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Granted; `left` calls remain in the tightest window (`None`: unlimited).
    Granted { left: Option<u64> },
    /// Refused: the window `per` is full until `until` (scheduling clock, ms).
    Exhausted { per: Per, until: i64 },
}

/// `[start, end)` of the window `per` holding `now` (ms, UTC).
pub fn window_bounds(per: Per, now: i64) -> (i64, i64) {
    let t = from_millis(now);
    let start = match per {
        Per::Minute => t.with_second(0).and_then(|t| t.with_nanosecond(0)),
        Per::Hour => t
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0)),
        Per::Day => Utc
            .with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
            .single(),
        Per::Month => Utc
            .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
            .single(),
    }
    .unwrap_or(t);
    let end = match per {
        Per::Minute => start + Duration::minutes(1),
        Per::Hour => start + Duration::hours(1),
        Per::Day => start + Duration::days(1),
        Per::Month => {
            let (y, m) = if start.month() == 12 {
                (start.year() + 1, 1)
            } else {
                (start.year(), start.month() + 1)
            };
            Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                .single()
                .unwrap_or(start + Duration::days(31))
        }
    };
    (start.timestamp_millis(), end.timestamp_millis())
}

fn counter_key(provider: Provider, scope: &str, per: Per) -> String {
    format!("{}:{scope}:{}", provider.as_str(), per.as_str())
}

const TAKE: &str = r#"
-- KEYS: one counter per window; ARGV: limits…, then expiry (ms) of each counter
local n = #KEYS
for i = 1, n do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + 1 > tonumber(ARGV[i]) then return -i end
end
local left = -1
for i = 1, n do
  local used = redis.call('INCR', KEYS[i])
  if used == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[n + i]) end
  local l = tonumber(ARGV[i]) - used
  if left < 0 or l < left then left = l end
end
return left
"#;

impl Queue {
    /// Takes one call from `provider`'s budget (per `scope`, e.g. one GBP location;
    /// `""` for the whole provider).
    pub async fn take_budget(
        &self,
        provider: Provider,
        scope: &str,
        limits: &[Limit],
    ) -> Result<Budget, QueueError> {
        if limits.is_empty() {
            return Ok(Budget::Granted { left: None });
        }
        let now = self.clock().now_millis();
        let windows: Vec<(Limit, i64, i64)> = limits
            .iter()
            .map(|l| {
                let (start, end) = window_bounds(l.per, now);
                (*l, start, end)
            })
            .collect();
        let denied = |i: usize| {
            let (l, _, end) = windows[i];
            Budget::Exhausted {
                per: l.per,
                until: end,
            }
        };
        match self {
            Queue::Redis(q) => {
                static SCRIPT: std::sync::LazyLock<::redis::Script> =
                    std::sync::LazyLock::new(|| ::redis::Script::new(TAKE));
                let mut script = SCRIPT.prepare_invoke();
                for (l, start, _) in &windows {
                    let key = counter_key(provider, scope, l.per);
                    script.key(format!("{}:rate:{key}:{start}", q.prefix));
                }
                for (l, _, _) in &windows {
                    script.arg(l.limit);
                }
                for (_, start, end) in &windows {
                    // Kept a while past the window so a slow clock never reopens it.
                    script.arg(end - start + 3_600_000);
                }
                let mut conn = q.conn.clone();
                let r: i64 = script.invoke_async(&mut conn).await?;
                Ok(if r < 0 {
                    denied((-r - 1) as usize)
                } else {
                    Budget::Granted {
                        left: Some(r as u64),
                    }
                })
            }
            Queue::Sqlite(q) => {
                let mut tx = q.pool.begin().await?;
                let mut left = u64::MAX;
                for (i, (l, start, _)) in windows.iter().enumerate() {
                    let key = counter_key(provider, scope, l.per);
                    let used: Option<(i64,)> = sqlx::query_as(
                        "INSERT INTO rate_windows (key, window_start, used) VALUES ($1, $2, 1)
                         ON CONFLICT (key, window_start) DO UPDATE SET used = rate_windows.used + 1
                         WHERE rate_windows.used + 1 <= $3
                         RETURNING used",
                    )
                    .bind(&key)
                    .bind(start)
                    .bind(l.limit as i64)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((used,)) = used else {
                        tx.rollback().await?;
                        return Ok(denied(i));
                    };
                    left = left.min(l.limit.saturating_sub(used as u64));
                    if used == 1 {
                        // A new window: the ones before it are spent history.
                        sqlx::query(
                            "DELETE FROM rate_windows WHERE key = $1 AND window_start < $2",
                        )
                        .bind(&key)
                        .bind(start)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(Budget::Granted { left: Some(left) })
            }
        }
    }

    /// Calls left in each window of `provider` now, without taking any.
    pub async fn budget_left(
        &self,
        provider: Provider,
        scope: &str,
        limits: &[Limit],
    ) -> Result<Vec<(Per, u64)>, QueueError> {
        let now = self.clock().now_millis();
        let mut out = Vec::with_capacity(limits.len());
        for l in limits {
            let (start, _) = window_bounds(l.per, now);
            let key = counter_key(provider, scope, l.per);
            let used: i64 = match self {
                Queue::Redis(q) => {
                    let mut conn = q.conn.clone();
                    let v: Option<i64> = ::redis::cmd("GET")
                        .arg(format!("{}:rate:{key}:{start}", q.prefix))
                        .query_async(&mut conn)
                        .await?;
                    v.unwrap_or(0)
                }
                Queue::Sqlite(q) => sqlx::query_as::<_, (i64,)>(
                    "SELECT used FROM rate_windows WHERE key = $1 AND window_start = $2",
                )
                .bind(&key)
                .bind(start)
                .fetch_optional(&q.pool)
                .await?
                .map_or(0, |(u,)| u),
            };
            out.push((l.per, l.limit.saturating_sub(used.max(0) as u64)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn windows_align_to_the_calendar() {
        let now = ms("2026-12-31T23:59:30.500Z");
        assert_eq!(
            window_bounds(Per::Minute, now),
            (ms("2026-12-31T23:59:00Z"), ms("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            window_bounds(Per::Hour, now),
            (ms("2026-12-31T23:00:00Z"), ms("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            window_bounds(Per::Day, now),
            (ms("2026-12-31T00:00:00Z"), ms("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            window_bounds(Per::Month, ms("2026-02-14T10:00:00Z")),
            (ms("2026-02-01T00:00:00Z"), ms("2026-03-01T00:00:00Z"))
        );
    }
}
