//! A period names the day, ISO week or month a piece of work belongs to — `2026-01-05`,
//! `2026-W02`, `2026-01` — and is part of the ids and keys that work writes. Every job
//! that carries one checks it when it is decoded, so `9999-99` or `2026-13` is refused
//! naming the period instead of running.

use chrono::{NaiveDate, Weekday};

/// The years a period may name.
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2199;

/// Why `text` is not a period; `Ok` when it is one.
pub fn check(text: &str) -> Result<(), String> {
    let valid = match text.len() {
        10 => NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok_and(|d| {
            use chrono::Datelike;
            YEARS.contains(&d.year())
        }),
        8 => week(text).is_some(),
        7 => month(text).is_some(),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "period `{:.40}` is not a day (2026-01-05), an ISO week (2026-W02) or a month \
             (2026-01) from {} to {}",
            text.escape_default(),
            YEARS.start(),
            YEARS.end()
        ))
    }
}

fn year(text: &str) -> Option<i32> {
    let y: i32 = text.get(..4)?.parse().ok()?;
    (text.as_bytes()[..4].iter().all(u8::is_ascii_digit) && YEARS.contains(&y)).then_some(y)
}

fn two_digits(text: Option<&str>) -> Option<u32> {
    let t = text?;
    (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
}

/// `2026-W02`: a week the ISO calendar has that year.
fn week(text: &str) -> Option<NaiveDate> {
    let y = year(text)?;
    if text.get(4..6)? != "-W" {
        return None;
    }
    NaiveDate::from_isoywd_opt(y, two_digits(text.get(6..))?, Weekday::Mon)
}

/// `2026-01`.
fn month(text: &str) -> Option<NaiveDate> {
    let y = year(text)?;
    if text.get(4..5)? != "-" {
        return None;
    }
    NaiveDate::from_ymd_opt(y, two_digits(text.get(5..))?, 1)
}

/// What a period spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Day,
    Week,
    Month,
}

impl Kind {
    /// The report type a period of this kind makes: `daily`, `weekly`, `monthly`.
    pub fn report_type(self) -> &'static str {
        match self {
            Kind::Day => "daily",
            Kind::Week => "weekly",
            Kind::Month => "monthly",
        }
    }
}

/// A period read: its kind and its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub kind: Kind,
    pub first: NaiveDate,
}

impl Period {
    /// Reads `text`, refusing what is not a period (see [`check`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        check(text)?;
        let (kind, first) = match text.len() {
            10 => (Kind::Day, NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()),
            8 => (Kind::Week, week(text)),
            _ => (Kind::Month, month(text)),
        };
        Ok(Self {
            kind,
            first: first.ok_or_else(|| format!("period `{text}` has no first day"))?,
        })
    }

    /// The day after its last: the next period's first day.
    pub fn end(&self) -> NaiveDate {
        match self.kind {
            Kind::Day => self.first + chrono::Days::new(1),
            Kind::Week => self.first + chrono::Days::new(7),
            Kind::Month => self.first + chrono::Months::new(1),
        }
    }

    /// The calendar period before: the day, ISO week or month before.
    pub fn previous(&self) -> Self {
        let first = match self.kind {
            Kind::Day => self.first - chrono::Days::new(1),
            Kind::Week => self.first - chrono::Days::new(7),
            Kind::Month => self.first - chrono::Months::new(1),
        };
        Self {
            kind: self.kind,
            first,
        }
    }

    /// `[start, end)` in UTC milliseconds.
    pub fn span_millis(&self) -> (i64, i64) {
        let millis = |d: NaiveDate| {
            d.and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_millis()
        };
        (millis(self.first), millis(self.end()))
    }

    /// The period containing the instant `at` (UTC milliseconds), of `kind`.
    pub fn containing(kind: Kind, at: i64) -> Self {
        use chrono::Datelike;
        let day = crate::clock::from_millis(at).date_naive();
        let first = match kind {
            Kind::Day => day,
            Kind::Week => day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday())),
            Kind::Month => day.with_day(1).unwrap_or(day),
        };
        Self { kind, first }
    }

    /// Refuses a period that has not started by `now`: reports and closes are about
    /// periods that have begun.
    pub fn not_after(&self, now: i64) -> Result<(), String> {
        let current = Self::containing(self.kind, now);
        if self.first > current.first {
            Err(format!(
                "period `{self}` is after the current one (`{current}`)"
            ))
        } else {
            Ok(())
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use chrono::Datelike;
        match self.kind {
            Kind::Day => write!(f, "{}", self.first.format("%Y-%m-%d")),
            Kind::Week => {
                let w = self.first.iso_week();
                write!(f, "{}-W{:02}", w.year(), w.week())
            }
            Kind::Month => write!(f, "{}", self.first.format("%Y-%m")),
        }
    }
}

/// For `#[serde(deserialize_with = "crate::period::deserialize")]`: a period field that
/// refuses what is not one.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    check(&text).map_err(serde::de::Error::custom)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_weeks_and_months_are_periods_and_nothing_else_is() {
        for ok in [
            "2026-01-05",
            "2026-02-28",
            "2028-02-29",
            "2026-W01",
            "2026-W53",
            "2026-01",
            "2026-12",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for bad in [
            "9999-99",
            "2026-13",
            "2026-00",
            "2026-02-30",
            "2027-02-29",
            "2027-W53",
            "2026-W00",
            "2026-W1",
            "1999-12",
            "2200-01",
            "+026-01",
            "2026-1",
            "2026/01",
            "later",
            "",
            "2026-01-05x",
            "2026-01-5",
            "2026-Ｗ01",
        ] {
            let err = check(bad).unwrap_err();
            assert!(err.contains("is not a day"), "{bad}: {err}");
        }
    }

    fn millis(y: i32, m: u32, d: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn periods_span_their_calendar_days_weeks_and_months() {
        let feb = Period::parse("2026-02").unwrap();
        assert_eq!(feb.span_millis(), (millis(2026, 2, 1), millis(2026, 3, 1)));
        assert_eq!(feb.previous().to_string(), "2026-01");
        assert_eq!(
            Period::parse("2028-02").unwrap().end(),
            NaiveDate::from_ymd_opt(2028, 3, 1).unwrap()
        );
        let mar = Period::parse("2026-03").unwrap();
        assert_eq!(mar.previous().to_string(), "2026-02", "not a 30-day block");
        assert_eq!(
            Period::parse("2026-01").unwrap().previous().to_string(),
            "2025-12"
        );
        // ISO weeks run Monday to Sunday; week 1 of 2026 starts 29 December 2025.
        let w1 = Period::parse("2026-W01").unwrap();
        assert_eq!(w1.span_millis(), (millis(2025, 12, 29), millis(2026, 1, 5)));
        assert_eq!(w1.previous().to_string(), "2025-W52");
        assert_eq!(
            Period::parse("2021-W01").unwrap().previous().to_string(),
            "2020-W53"
        );
        assert_eq!(
            Period::parse("2026-03-01").unwrap().previous().to_string(),
            "2026-02-28"
        );
    }

    #[test]
    fn a_period_after_the_current_one_is_refused_naming_both() {
        let now = millis(2026, 2, 1) + 4 * 3_600_000;
        assert_eq!(Period::parse("2026-02").unwrap().not_after(now), Ok(()));
        assert_eq!(Period::parse("2026-01").unwrap().not_after(now), Ok(()));
        let err = Period::parse("2026-03")
            .unwrap()
            .not_after(now)
            .unwrap_err();
        assert!(
            err.contains("`2026-03` is after the current one (`2026-02`)"),
            "{err}"
        );
        assert!(Period::parse("2026-W06").unwrap().not_after(now).is_err());
        assert_eq!(Period::containing(Kind::Week, now).to_string(), "2026-W05");
    }

    #[test]
    fn a_period_field_refuses_what_is_not_one_naming_it() {
        #[derive(serde::Deserialize, Debug)]
        struct J {
            #[serde(deserialize_with = "deserialize")]
            #[allow(dead_code)]
            period: String,
        }
        assert!(serde_json::from_str::<J>(r#"{"period":"2026-01"}"#).is_ok());
        let err = serde_json::from_str::<J>(r#"{"period":"9999-99"}"#).unwrap_err();
        assert!(
            err.to_string().contains("period `9999-99` is not a day"),
            "{err}"
        );
    }
}
