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
