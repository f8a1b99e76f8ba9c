//! The prospect's local send window: weekdays and hours, in the prospect's own time.

use cep_shared::clock::{HOUR, MINUTE};
use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};

/// The earliest instant at or after `now` (UTC ms) that falls inside the window, for a
/// prospect `utc_offset_minutes` from UTC. `now` itself when the window is open.
pub fn next_open(
    now: i64,
    utc_offset_minutes: i64,
    days: &[String],
    start_hour: u32,
    end_hour: u32,
) -> i64 {
    let offset = utc_offset_minutes * MINUTE;
    let Some(local) = DateTime::<Utc>::from_timestamp_millis(now + offset) else {
        return now;
    };
    let local_ms = now + offset;
    for ahead in 0..8 {
        let date = local.date_naive() + Duration::days(ahead);
        let day = weekday_name(date.weekday());
        if !days.iter().any(|d| d == day) {
            continue;
        }
        let midnight = date.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
        let open = midnight + i64::from(start_hour) * HOUR;
        let close = midnight + i64::from(end_hour) * HOUR;
        if local_ms < open {
            return open - offset;
        }
        if local_ms < close {
            return now;
        }
    }
    // No send day at all cannot pass validation; never block forever.
    now
}

/// Midnight UTC after `now`: when a day's cap opens again.
pub fn next_utc_midnight(now: i64) -> i64 {
    let day = 24 * HOUR;
    (now.div_euclid(day) + 1) * day
}

/// The day (UTC) a send at `now` counts against.
pub fn cap_day(now: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(now)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn weekday_name(d: chrono::Weekday) -> &'static str {
    use chrono::Weekday::*;
    match d {
        Mon => "mon",
        Tue => "tue",
        Wed => "wed",
        Thu => "thu",
        Fri => "fri",
        Sat => "sat",
        Sun => "sun",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn weekdays() -> Vec<String> {
        ["mon", "tue", "wed", "thu", "fri"]
            .map(String::from)
            .to_vec()
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn open_inside_the_local_window() {
        // Wednesday 2026-01-07 15:00 UTC is 10:00 in Miami (UTC−5).
        let now = at(2026, 1, 7, 15, 0);
        assert_eq!(next_open(now, -300, &weekdays(), 8, 17), now);
    }

    #[test]
    fn before_opening_waits_for_eight_local() {
        // 10:00 UTC is 05:00 in Miami: opens at 08:00 local = 13:00 UTC.
        let now = at(2026, 1, 7, 10, 0);
        assert_eq!(
            next_open(now, -300, &weekdays(), 8, 17),
            at(2026, 1, 7, 13, 0)
        );
    }

    #[test]
    fn friday_evening_waits_for_monday_morning() {
        // Friday 2026-01-09 23:00 UTC is 15:00 in Seattle (UTC−8): still open.
        let fri = at(2026, 1, 9, 23, 0);
        assert_eq!(next_open(fri, -480, &weekdays(), 8, 17), fri);
        // Saturday 02:00 UTC is Friday 18:00 in Seattle: closed until Monday 08:00
        // local = Monday 16:00 UTC.
        let late = at(2026, 1, 10, 2, 0);
        assert_eq!(
            next_open(late, -480, &weekdays(), 8, 17),
            at(2026, 1, 12, 16, 0)
        );
    }

    #[test]
    fn the_closing_hour_is_outside_the_window() {
        // 17:00 local in Miami = 22:00 UTC on Wednesday → Thursday 13:00 UTC.
        let now = at(2026, 1, 7, 22, 0);
        assert_eq!(
            next_open(now, -300, &weekdays(), 8, 17),
            at(2026, 1, 8, 13, 0)
        );
    }

    #[test]
    fn caps_reset_at_utc_midnight() {
        let now = at(2026, 1, 7, 22, 30);
        assert_eq!(next_utc_midnight(now), at(2026, 1, 8, 0, 0));
        assert_eq!(cap_day(now), "2026-01-07");
    }
}
