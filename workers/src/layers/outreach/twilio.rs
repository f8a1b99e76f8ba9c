//! SMS through Twilio's Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json`,
//! HTTP Basic with the account SID and `TWILIO_AUTH_TOKEN`).
//!
//! As with email, what a failure means decides whether the text may ever go again: a
//! 4xx is Twilio refusing it for good (an invalid or unsubscribed number: the number
//! is suppressed); a 429, a 5xx or a refused connection means Twilio created nothing
//! (retry); a timeout or a broken answer may have come after Twilio queued it, so the
//! outcome is unknown and the text is flagged, never resent.

use crate::Ctx;
use crate::clients::provider::{count, snippet};
use crate::clients::smtp::SendFailure;
use cep_shared::config::Provider;
use serde::Deserialize;

/// Twilio's error codes for a number that can never receive our texts.
const OPTED_OUT: i64 = 21610;

#[derive(Debug, Deserialize)]
struct Created {
    sid: String,
}

#[derive(Debug, Deserialize)]
struct Refusal {
    code: Option<i64>,
    message: Option<String>,
}

/// Whether texts go out through Twilio (an account is configured).
pub fn configured(ctx: &Ctx) -> bool {
    !ctx.settings.providers.twilio.account_sid.is_empty()
}

/// Sends `body` to `to` (E.164); the message SID on success.
pub async fn send(ctx: &Ctx, to: &str, body: &str) -> Result<String, SendFailure> {
    let t = &ctx.settings.providers.twilio;
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        t.api_url.trim_end_matches('/'),
        t.account_sid
    );
    let from_key = if t.from.starts_with("MG") {
        "MessagingServiceSid"
    } else {
        "From"
    };
    let form = [("To", to), (from_key, t.from.as_str()), ("Body", body)];
    let req = ctx
        .http
        .post(url)
        .basic_auth(&t.account_sid, ctx.secrets.twilio_auth_token.as_deref())
        .form(&form);
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            count(Provider::Twilio, "failed");
            return Err(SendFailure::NotSent("twilio: cannot connect".into()));
        }
        Err(e) => {
            count(Provider::Twilio, "failed");
            return Err(SendFailure::Unknown(format!(
                "twilio: {} (the text may have been queued)",
                e.without_url()
            )));
        }
    };
    let status = resp.status();
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            count(Provider::Twilio, "failed");
            return Err(SendFailure::Unknown(format!(
                "twilio: the answer to HTTP {status} broke off: {}",
                e.without_url()
            )));
        }
    };
    if status.is_success() {
        count(Provider::Twilio, "ok");
        // Created, whatever the body says; its SID is kept when it decodes.
        return Ok(serde_json::from_slice::<Created>(&body)
            .map(|c| c.sid)
            .unwrap_or_default());
    }
    let what = format!("twilio: HTTP {}: {}", status.as_u16(), snippet(&body));
    if status.as_u16() == 429 || status.is_server_error() {
        count(Provider::Twilio, "failed");
        return Err(SendFailure::NotSent(what));
    }
    count(Provider::Twilio, "rejected");
    let refusal: Option<Refusal> = serde_json::from_slice(&body).ok();
    Err(SendFailure::Rejected(match refusal {
        Some(Refusal {
            code: Some(OPTED_OUT),
            ..
        }) => format!("{what} (the number has opted out)"),
        Some(Refusal {
            code: Some(code),
            message: Some(m),
        }) => format!("twilio error {code}: {m}"),
        _ => what,
    }))
}
