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

/// The booking link of a pitch, tagged so a booking maps back to prospect and pitch.
pub fn booking_link(base: &str, channel: Channel, prospect_id: &str, pitch_id: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!(
        "{base}{sep}utm_source=cep&utm_medium={channel}&utm_campaign={}&utm_content={}",
        url_escape(prospect_id),
        url_escape(pitch_id)
    )
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or(address)
}

/// Builds the message a step sends: for email the full RFC 5322 headers with RFC 8058
/// one-click unsubscribe and the postal address; for the other channels the text a
/// person works from.
pub fn compose(
    ctx: &Ctx,
    row_id: &str,
    channel: Channel,
    to: &Recipient<'_>,
    pitch: &PitchRow,
    now: i64,
) -> Composed {
    let o = &ctx.settings.layers.outreach;
    let link = booking_link(
        &ctx.settings.layers.booking.scheduling_url,
        channel,
        to.prospect_id,
        &pitch.id,
    );
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
    let message_id = format!("<{row_id}@{domain}>");
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
        ("Message-ID".into(), message_id.clone()),
        (
            "List-Unsubscribe".into(),
            format!(
                "<{unsubscribe_url}>, <mailto:unsubscribe@{domain}?subject=unsubscribe%20{row_id}>"
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
        message_id: Some(message_id),
        headers,
        body,
    }
}

/// A follow-up text: a booking's confirmation, or the booking link after a reply.
pub fn follow_up_text(
    follow_up: FollowUp,
    name: &str,
    from_name: &str,
    scheduling_url: &str,
    prospect_id: &str,
) -> String {
    let first = name.split_whitespace().next().unwrap_or("there");
    match follow_up {
        FollowUp::Booked => format!(
            "Hi {first}, thanks for booking time with {from_name}. We look forward to talking about your Google listing. Reply STOP to opt out."
        ),
        FollowUp::Replied => format!(
            "Hi {first}, thanks for your reply! Pick a time that suits you: {} (from {from_name}). Reply STOP to opt out.",
            booking_link(
                scheduling_url,
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
    fn booking_links_carry_prospect_and_pitch() {
        let l = booking_link(
            "https://cal.example/x",
            Channel::Email,
            "dir:miami-fl:dental:001",
            "pitch_1",
        );
        assert_eq!(
            l,
            "https://cal.example/x?utm_source=cep&utm_medium=email&utm_campaign=dir%3Amiami-fl%3Adental%3A001&utm_content=pitch_1"
        );
    }
}
