//! What a step sends, composed: for email the RFC 5322 headers with RFC 8058 one-click
//! unsubscribe (its signed token) and the postal address; for the other channels the text
//! a person or the SMS gateway works from. Pure: nothing here touches the store.

use crate::Ctx;
use crate::clients::smtp::Composed;
use cep_shared::jobs::FollowUp;
use cep_shared::vocabulary::Channel;
use hmac::{KeyInit, Mac};

/// The pitch a step sends.
pub struct PitchRow {
    pub id: String,
    pub subject: Option<String>,
    pub body: String,
    /// Append the booking link (a follow-up text carries its own wording).
    pub with_link: bool,
}

/// Who a step goes to.
pub struct Recipient<'a> {
    pub prospect_id: &'a str,
    pub name: &'a str,
    pub address: Option<&'a str>,
}

/// The token of a one-click unsubscribe link: HMAC-SHA256 of the message id under the
/// unsubscribe key. Without a key (dry run only) links are marked `unsigned` and the
/// endpoint refuses them.
pub fn unsubscribe_token(key: Option<&str>, message_id: &str) -> String {
    match key {
        Some(key) => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                .expect("HMAC takes any key length");
            mac.update(message_id.as_bytes());
            hex::encode(&mac.finalize().into_bytes()[..16])
        }
        None => "unsigned".into(),
    }
}

/// Constant-time check of an unsubscribe token.
pub fn verify_unsubscribe_token(key: &str, message_id: &str, token: &str) -> bool {
    let Ok(given) = hex::decode(token) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(message_id.as_bytes());
    mac.verify_truncated_left(&given).is_ok() && given.len() == 16
}

/// Where booking links point, and the key that signs what they carry.
#[derive(Clone, Copy)]
pub struct BookingLinks<'a> {
    /// The scheduling page (`layers.booking.scheduling_url`).
    pub base: &'a str,
    /// `CEP_BOOKING_LINK_KEY`; without it links are unsigned and the bookings made
    /// through them wait for the operator to link them.
    pub key: Option<&'a str>,
}

impl<'a> BookingLinks<'a> {
    pub fn of(ctx: &'a Ctx) -> Self {
        Self {
            base: &ctx.settings.layers.booking.scheduling_url,
            key: ctx.secrets.booking_link_key.as_deref(),
        }
    }

    /// The booking link of a pitch, tagged so a booking maps back to prospect and pitch:
    /// `utm_campaign` the prospect, `utm_content` the pitch, `utm_term` their signature.
    pub fn link(&self, channel: Channel, prospect_id: &str, pitch_id: &str) -> String {
        let base = self.base;
        let sep = if base.contains('?') { '&' } else { '?' };
        let mut link = format!(
            "{base}{sep}utm_source=cep&utm_medium={channel}&utm_campaign={}&utm_content={}",
            query_value(prospect_id),
            query_value(pitch_id)
        );
        if let Some(key) = self.key {
            link.push_str("&utm_term=");
            link.push_str(&booking_signature(key, prospect_id, pitch_id));
        }
        link
    }
}

fn booking_mac(key: &str, prospect_id: &str, pitch_id: &str) -> hmac::Hmac<sha2::Sha256> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes any key length");
    // Lengths first, so no two (prospect, pitch) pairs sign the same bytes.
    for part in [prospect_id, pitch_id] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac
}

/// The signature of a booking link's prospect and pitch: HMAC-SHA256 under the
/// booking-link key, its first 128 bits in hex.
pub fn booking_signature(key: &str, prospect_id: &str, pitch_id: &str) -> String {
    hex::encode(
        &booking_mac(key, prospect_id, pitch_id)
            .finalize()
            .into_bytes()[..16],
    )
}

/// Constant-time check of a booking link's signature.
pub fn verify_booking_signature(key: &str, prospect_id: &str, pitch_id: &str, given: &str) -> bool {
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    given.len() == 16
        && booking_mac(key, prospect_id, pitch_id)
            .verify_truncated_left(&given)
            .is_ok()
}

/// What a query value keeps as it is: the unreserved characters of RFC 3986.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn query_value(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or(address)
}

/// A fresh Message-ID for a mail from `from_address`: 128 random bits, so nobody who
/// did not receive the mail can name it in a forged reply or bounce.
pub fn new_message_id(from_address: &str) -> Result<String, getrandom::Error> {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits)?;
    Ok(format!(
        "<{}@{}>",
        hex::encode(bits),
        domain_of(from_address)
    ))
}

/// Builds the message a step sends: for email the full RFC 5322 headers with RFC 8058
/// one-click unsubscribe and the postal address, under `message_id` (see
/// [`new_message_id`]); for the other channels the text a person works from.
pub fn compose(
    ctx: &Ctx,
    row_id: &str,
    message_id: &str,
    channel: Channel,
    to: &Recipient<'_>,
    pitch: &PitchRow,
    now: i64,
) -> Composed {
    let o = &ctx.settings.layers.outreach;
    let link = BookingLinks::of(ctx).link(channel, to.prospect_id, &pitch.id);
    if channel != Channel::Email {
        return Composed {
            message_id: None,
            headers: Vec::new(),
            body: if pitch.with_link {
                format!("{}\n\nBooking link: {link}", pitch.body)
            } else {
                pitch.body.clone()
            },
        };
    }
    let domain = domain_of(&o.from_address);
    let token = unsubscribe_token(ctx.secrets.unsubscribe_key.as_deref(), row_id);
    let unsubscribe_url = format!(
        "{}/unsubscribe/{row_id}?token={token}",
        ctx.settings.server.public_url.trim_end_matches('/')
    );
    let date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now)
        .map(|t| t.to_rfc2822())
        .unwrap_or_default();
    let headers = vec![
        (
            "From".into(),
            format!("\"{}\" <{}>", o.from_name, o.from_address),
        ),
        (
            "To".into(),
            format!("\"{}\" <{}>", to.name, to.address.unwrap_or_default()),
        ),
        (
            "Subject".into(),
            pitch
                .subject
                .clone()
                .unwrap_or_else(|| "A quick idea for your listing".into()),
        ),
        ("Date".into(), date),
        ("Message-ID".into(), message_id.to_owned()),
        (
            "List-Unsubscribe".into(),
            format!(
                "<{unsubscribe_url}>, <mailto:unsubscribe@{domain}?subject=unsubscribe%20{row_id}%20{token}>"
            ),
        ),
        (
            "List-Unsubscribe-Post".into(),
            "List-Unsubscribe=One-Click".into(),
        ),
        ("MIME-Version".into(), "1.0".into()),
        ("Content-Type".into(), "text/plain; charset=utf-8".into()),
    ];
    let body = format!(
        "{}\n\nPick a time that suits you: {link}\n\n-- \n{}\n{}\nNot interested? Unsubscribe with one click: {unsubscribe_url}\n",
        pitch.body, o.from_name, o.postal_address
    );
    Composed {
        message_id: Some(message_id.to_owned()),
        headers,
        body,
    }
}

/// "Hi Pat," for a person whose name we were told (the name they booked under), else
/// "Hi," — never the first word of a business's name.
pub fn greeting(person: Option<&str>) -> String {
    let first = person
        .and_then(|n| n.split_whitespace().next())
        .filter(|w| {
            w.chars()
                .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
        })
        .filter(|w| w.chars().next().is_some_and(char::is_alphabetic));
    match first {
        Some(first) => format!("Hi {first},"),
        None => "Hi,".into(),
    }
}

/// A follow-up text: a booking's confirmation, or the booking link after a reply.
/// `person` is the contact's name when we know it.
pub fn follow_up_text(
    follow_up: FollowUp,
    person: Option<&str>,
    from_name: &str,
    links: BookingLinks<'_>,
    prospect_id: &str,
) -> String {
    let hi = greeting(person);
    match follow_up {
        FollowUp::Booked => format!(
            "{hi} thanks for booking time with {from_name}. We look forward to talking about your Google listing. Reply STOP to opt out."
        ),
        FollowUp::Replied => format!(
            "{hi} thanks for your reply! Pick a time that suits you: {} (from {from_name}). Reply STOP to opt out.",
            links.link(
                Channel::Sms,
                prospect_id,
                &format!("follow-up:{}", follow_up.as_str())
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_greets_the_person_who_gave_a_name_or_nobody() {
        assert_eq!(greeting(Some("Pat Owner")), "Hi Pat,");
        assert_eq!(greeting(Some("Anne-Marie O'Neil")), "Hi Anne-Marie,");
        for nobody in [
            None,
            Some(""),
            Some("   "),
            Some("123 Plumbing LLC"),
            Some("@@"),
        ] {
            assert_eq!(greeting(nobody), "Hi,", "{nobody:?}");
        }
        let links = BookingLinks {
            base: "https://calendly.com/agency/call",
            key: None,
        };
        for follow_up in [FollowUp::Booked, FollowUp::Replied] {
            for person in [None, Some("Pat Owner"), Some("")] {
                let text = follow_up_text(follow_up, person, "Agency", links, "p1");
                if let Some(why) = crate::layers::text_checks::broken(&text) {
                    panic!("{why}: {text}");
                }
            }
        }
    }
    use cep_shared::ids::SeededRng;

    #[test]
    fn unsubscribe_tokens_verify_only_for_their_message_and_key() {
        let t = unsubscribe_token(Some("k1"), "msg_1");
        assert_eq!(t.len(), 32);
        assert!(verify_unsubscribe_token("k1", "msg_1", &t));
        assert!(!verify_unsubscribe_token("k1", "msg_2", &t));
        assert!(!verify_unsubscribe_token("k2", "msg_1", &t));
        assert!(!verify_unsubscribe_token("k1", "msg_1", "unsigned"));
        assert!(!verify_unsubscribe_token("k1", "msg_1", &t[..8]));
    }

    #[test]
    fn booking_links_carry_prospect_and_pitch_signed_when_a_key_is_set() {
        let mut links = BookingLinks {
            base: "https://cal.example/x",
            key: None,
        };
        let l = links.link(Channel::Email, "dir:miami-fl:dental:001", "pitch_1");
        assert_eq!(
            l,
            "https://cal.example/x?utm_source=cep&utm_medium=email&utm_campaign=dir%3Amiami-fl%3Adental%3A001&utm_content=pitch_1"
        );
        links.key = Some("k1");
        let l = links.link(Channel::Email, "p1", "pitch_1");
        let sig = l.split("utm_term=").nth(1).unwrap();
        assert_eq!(sig, booking_signature("k1", "p1", "pitch_1"));
        assert!(verify_booking_signature("k1", "p1", "pitch_1", sig));
        // Another prospect, pitch or key, a shifted boundary, or a short or non-hex
        // signature does not verify.
        assert!(!verify_booking_signature("k1", "p2", "pitch_1", sig));
        assert!(!verify_booking_signature("k1", "p1", "pitch_2", sig));
        assert!(!verify_booking_signature("k2", "p1", "pitch_1", sig));
        assert!(!verify_booking_signature("k1", "p1p", "itch_1", sig));
        assert!(!verify_booking_signature("k1", "p1", "pitch_1", &sig[..16]));
        assert!(!verify_booking_signature("k1", "p1", "pitch_1", "zz"));
    }

    fn text(state: &mut SeededRng) -> String {
        let len = (state.next_u64() % 24) as usize;
        (0..len)
            .map(|_| char::from_u32(32 + (state.next_u64() % 95) as u32).unwrap())
            .collect()
    }

    /// `s` with one character changed (or one added, when empty).
    fn altered(s: &str, state: &mut SeededRng) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        if chars.is_empty() {
            return "x".into();
        }
        let i = (state.next_u64() % chars.len() as u64) as usize;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        chars.into_iter().collect()
    }

    #[test]
    fn only_the_genuine_booking_signature_and_unsubscribe_token_verify() {
        let mut state = SeededRng::new(5);
        for _ in 0..2_000 {
            let (prospect, pitch, junk) = (text(&mut state), text(&mut state), text(&mut state));
            let sig = booking_signature("k", &prospect, &pitch);
            assert!(verify_booking_signature("k", &prospect, &pitch, &sig));
            let wrong_sig = altered(&sig, &mut state);
            assert!(!verify_booking_signature(
                "k", &prospect, &pitch, &wrong_sig
            ));
            let other = altered(&prospect, &mut state);
            assert!(!verify_booking_signature("k", &other, &pitch, &sig));
            let other = altered(&pitch, &mut state);
            assert!(!verify_booking_signature("k", &prospect, &other, &sig));
            assert!(!verify_booking_signature("k", &prospect, &pitch, &junk));

            let token = unsubscribe_token(Some("k"), &prospect);
            assert!(verify_unsubscribe_token("k", &prospect, &token));
            let wrong = altered(&token, &mut state);
            assert!(!verify_unsubscribe_token("k", &prospect, &wrong));
            let other = altered(&prospect, &mut state);
            assert!(!verify_unsubscribe_token("k", &other, &token));
            assert!(!verify_unsubscribe_token("k", &prospect, &junk));
        }
    }
}
