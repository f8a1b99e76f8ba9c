//! Numbers as a person reads them: whole numbers with thousands separators, money in
//! dollars and cents.

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Cents as dollars: `8700000` as `$87,000.00`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}${}.{:02}", thousands((c / 100) as i64), c % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_counts_read_as_a_person_writes_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-45_000), "-45,000");
        assert_eq!(dollars(8_700_000), "$87,000.00");
        assert_eq!(dollars(5), "$0.05");
        assert_eq!(dollars(-123_456), "-$1,234.56");
    }
}
