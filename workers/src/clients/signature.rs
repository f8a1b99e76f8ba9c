//! Webhook signatures of the `t=<unix>,v1=<hex>` kind that Calendly
//! (`Calendly-Webhook-Signature`) and Stripe (`Stripe-Signature`) send: an HMAC-SHA256
//! over `"<t>.<raw body>"`, compared in constant time, stale timestamps refused.
//!
//! What a sender controls is bounded before any work: the header's length and its
//! number of parts and of signatures. The MAC over the body is computed once, however
//! many signatures the header carries.
//!
//! Bearer tokens of our own (sessions, report links) are made and digested here too.

use hmac::{KeyInit, Mac};
use sha2::Digest as _;

/// A bearer token of 256 random bits, as hex: a session, a report's link.
pub fn random_token() -> Result<String, crate::JobError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| crate::JobError::Transient(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// What the store keeps of a bearer token: its SHA-256, as hex.
pub fn token_digest(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Calendly's header.
pub const HEADER: &str = "calendly-webhook-signature";
/// Stripe's header.
pub const STRIPE_HEADER: &str = "stripe-signature";

/// The longest header accepted: Calendly and Stripe send well under 300 bytes.
pub const MAX_HEADER_BYTES: usize = 1024;
/// The most parts (`name=value`) a header may have.
pub const MAX_PARTS: usize = 8;
/// The most `v1` signatures a header may carry (several during a key rotation).
pub const MAX_SIGNATURES: usize = 5;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature header")]
    Missing,
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// The offset itself is not told: it would give away the server's clock.
    #[error("signature timestamp is stale (tolerance {tolerance} s)")]
    Stale { tolerance: u64 },
    #[error("signature does not match the body")]
    Mismatch,
}

fn mac(key: &str, t: &str, body: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Compares two secrets without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The header value Calendly or Stripe would send for `body` at `t` (unix seconds).
pub fn sign(key: &str, t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    let sig = hex::encode(mac(key, &t, body).finalize().into_bytes());
    format!("t={t},v1={sig}")
}

/// Verifies a header against the raw body. Every `v1` is tried (key rotation).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    key: &str,
    now_seconds: i64,
    tolerance: u64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::Malformed("longer than 1 KiB"));
    }
    let mut t = None;
    let mut candidates = Vec::new();
    for (n, part) in header.split(',').enumerate() {
        if n >= MAX_PARTS {
            return Err(SignatureError::Malformed("more than 8 parts"));
        }
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("a part without `=`"))?;
        match name {
            "t" if t.is_some() => return Err(SignatureError::Malformed("two `t=` timestamps")),
            "t" => t = Some(value),
            "v1" if candidates.len() == MAX_SIGNATURES => {
                return Err(SignatureError::Malformed("more than 5 `v1=` signatures"));
            }
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed("no `t=` timestamp"))?;
    let seconds: i64 = t
        .parse()
        .map_err(|_| SignatureError::Malformed("`t=` is not a number"))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no `v1=` signature"));
    }
    let fresh = now_seconds
        .checked_sub(seconds)
        .is_some_and(|age| age.unsigned_abs() <= tolerance);
    if !fresh {
        return Err(SignatureError::Stale { tolerance });
    }
    let expected = mac(key, t, body).finalize().into_bytes();
    // Every candidate is compared, so the time taken does not tell which one matched.
    let matched = candidates.iter().fold(false, |found, c| {
        let given = hex::decode(c).unwrap_or_default();
        constant_time_eq(&given, &expected) | found
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cep_shared::ids::SeededRng;

    const BODY: &[u8] = br#"{"event":"invitee.created"}"#;

    #[test]
    fn a_fresh_signature_verifies() {
        let h = sign("key", 1_700_000_000, BODY);
        assert_eq!(verify(Some(&h), BODY, "key", 1_700_000_100, 180), Ok(()));
    }

    #[test]
    fn the_known_vector_matches() {
        // HMAC-SHA256("key", "1700000000.{\"event\":\"invitee.created\"}"), computed
        // independently with Python's hmac module.
        assert_eq!(
            sign("key", 1_700_000_000, BODY),
            "t=1700000000,v1=66ce7b25c56ba85ff5aef713ca52831e9c32d0a2ed8dfc6f8f1b577c87ce40fb"
        );
    }

    #[test]
    fn stale_tampered_wrong_key_and_malformed_are_refused() {
        let h = sign("key", 1_700_000_000, BODY);
        assert_eq!(
            verify(Some(&h), BODY, "key", 1_700_000_181, 180),
            Err(SignatureError::Stale { tolerance: 180 })
        );
        assert_eq!(
            verify(Some(&h), b"{}", "key", 1_700_000_000, 180),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&h), BODY, "other", 1_700_000_000, 180),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(None, BODY, "key", 1_700_000_000, 180),
            Err(SignatureError::Missing)
        );
        assert!(matches!(
            verify(Some("v1=abc"), BODY, "key", 0, 180),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            verify(Some("t=1700000000,v1=zz"), BODY, "key", 1_700_000_000, 180),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_header_past_its_bounds_is_refused_before_any_mac_and_a_stale_one_hides_the_offset() {
        let good = sign("key", 1_700_000_000, BODY);
        let many = format!("{good}{}", ",v1=00".repeat(5));
        assert_eq!(
            verify(Some(&many), BODY, "key", 1_700_000_000, 180),
            Err(SignatureError::Malformed("more than 5 `v1=` signatures"))
        );
        let long = format!("{good},x={}", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(
            verify(Some(&long), BODY, "key", 1_700_000_000, 180),
            Err(SignatureError::Malformed("longer than 1 KiB"))
        );
        let parts = format!("{good}{}", ",x=1".repeat(MAX_PARTS));
        assert_eq!(
            verify(Some(&parts), BODY, "key", 1_700_000_000, 180),
            Err(SignatureError::Malformed("more than 8 parts"))
        );
        let stale = verify(Some(&good), BODY, "key", 1_700_012_345, 180).unwrap_err();
        assert_eq!(
            stale.to_string(),
            "signature timestamp is stale (tolerance 180 s)"
        );
        // Timestamps at the ends of the range are stale, not an overflow.
        for t in [i64::MIN, i64::MAX] {
            let h = format!("t={t},v1=00");
            assert_eq!(
                verify(Some(&h), BODY, "key", 1_700_000_000, 180),
                Err(SignatureError::Stale { tolerance: 180 })
            );
        }
    }

    #[test]
    fn no_header_made_of_signature_pieces_passes_without_the_key_or_panics() {
        const PIECES: [&str; 12] = [
            "t=1700000000",
            "t=",
            "t=-1",
            "t=99999999999999999999",
            "v1=",
            "v1=00ff",
            "v1=zz",
            ",",
            "=",
            " ",
            "v0=ab",
            "v1=66ce7b25c56ba85ff5aef713ca52831e9c32d0a2ed8dfc6f8f1b577c87ce40fb",
        ];
        let mut state = SeededRng::new(7);
        for _ in 0..20_000 {
            let n = 1 + state.next_u64() % 12;
            let header: String = (0..n)
                .map(|_| PIECES[(state.next_u64() % PIECES.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(",");
            // The last piece is the right signature for `key`, never for `other`.
            assert_ne!(
                verify(Some(&header), BODY, "other", 1_700_000_000, 180),
                Ok(()),
                "{header}"
            );
            let ok = verify(Some(&header), BODY, "key", 1_700_000_000, 180).is_ok();
            let signed = header.split(',').any(|p| p == PIECES[11])
                && header
                    .split(',')
                    .filter(|p| p.starts_with("t="))
                    .collect::<Vec<_>>()
                    == ["t=1700000000"];
            if ok {
                assert!(signed, "{header}");
            }
        }
    }

    #[test]
    fn arbitrary_header_bytes_never_panic_never_pass_and_cost_one_mac_at_most() {
        let mut state = SeededRng::new(11);
        let started = std::time::Instant::now();
        let body = vec![b'x'; 64 * 1024];
        for _ in 0..5_000 {
            let len = (state.next_u64() % 1_500) as usize;
            let header: String = (0..len)
                .map(|_| match state.next_u64() % 8 {
                    0 => ',',
                    1 => '=',
                    2 => 't',
                    3 => 'v',
                    4 => '1',
                    _ => char::from_u32((state.next_u64() % 0x7f) as u32).unwrap_or('?'),
                })
                .collect();
            assert!(verify(Some(&header), &body, "key", 1_700_000_000, 180).is_err());
        }
        // 5,000 headers over a 64 KiB body: a MAC per `v1=` would take far longer.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn any_of_several_signatures_may_match_during_key_rotation() {
        let good = sign("new", 1_700_000_000, BODY);
        let v1 = &good[good.find("v1=").unwrap()..];
        let h = format!("t=1700000000,v1=00ff,{v1}");
        assert_eq!(verify(Some(&h), BODY, "new", 1_700_000_000, 180), Ok(()));
    }
}
