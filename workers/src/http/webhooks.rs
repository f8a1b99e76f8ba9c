//! Calendly's and Stripe's webhooks: the signature checked over the raw body, then the
//! booking enqueued or the payment recorded. Every delivery is counted by source and
//! result.

use super::reply;
use crate::Ctx;
use crate::clients::signature;
use crate::layers::{booking, finance};
use crate::runtime::Disposition;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cep_shared::queue::NewJob;
use cep_shared::vocabulary::WebhookResult;

/// Verifies the signature on the raw body, then enqueues the booking. A bad or stale
/// signature, or a body that is not a Calendly v2 webhook, gets a 4xx and enqueues
/// nothing.
pub(super) async fn calendly(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    counted("calendly", calendly_result(&ctx, &headers, &body).await)
}

/// Counts a webhook delivery by source and result, and answers it.
fn counted(source: &str, (result, response): (WebhookResult, Response)) -> Response {
    cep_shared::metrics::get()
        .webhooks
        .with_label_values(&[source, result.as_str()])
        .inc();
    response
}

/// How one webhook source signs its deliveries (`t=…,v1=…` over the raw body).
struct Signed<'a> {
    source: &'static str,
    key: Option<&'a str>,
    variable: &'static str,
    header: &'static str,
    tolerance: u64,
    /// The status a bad signature gets (Calendly's and Stripe's docs differ).
    refused: StatusCode,
}

/// Checks a delivery's signature: `None` when it holds, else the metric result and
/// the answer.
fn refusal(
    ctx: &Ctx,
    s: Signed<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<(WebhookResult, Response)> {
    let Some(key) = s.key else {
        let text = format!("webhooks are refused until {} is set", s.variable);
        return Some((
            WebhookResult::Unconfigured,
            reply(StatusCode::SERVICE_UNAVAILABLE, text),
        ));
    };
    let header = headers.get(s.header).and_then(|v| v.to_str().ok());
    let e = signature::verify(header, body, key, ctx.now() / 1000, s.tolerance).err()?;
    // Counted in `cep_webhooks_total`; a log line each would let anyone flood the log.
    tracing::debug!(error = %e, source = s.source, "webhook refused");
    Some((WebhookResult::BadSignature, reply(s.refused, e.to_string())))
}

async fn calendly_result(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &Bytes,
) -> (WebhookResult, Response) {
    let signed = Signed {
        source: "calendly",
        key: ctx.secrets.calendly_signing_key.as_deref(),
        variable: "CALENDLY_WEBHOOK_SIGNING_KEY",
        header: signature::HEADER,
        tolerance: ctx.settings.layers.booking.signature_tolerance_seconds,
        refused: StatusCode::UNAUTHORIZED,
    };
    if let Some(refused) = refusal(ctx, signed, headers, body) {
        return refused;
    }
    let hook: booking::Webhook = match serde_json::from_slice(body) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(error = %e, "calendly webhook body refused");
            let text = format!("body is not a Calendly v2 webhook: {e}");
            return (WebhookResult::BadBody, reply(StatusCode::BAD_REQUEST, text));
        }
    };
    let event = hook.event.clone();
    let Some(job) = hook.into_job() else {
        let text = format!("ignored: `{event}` is not handled");
        return (WebhookResult::Ignored, reply(StatusCode::OK, text));
    };
    match ctx.queue.push(NewJob::of(&job, ctx.now())).await {
        Ok(true) => (WebhookResult::Queued, reply(StatusCode::ACCEPTED, "queued")),
        Ok(false) => (
            WebhookResult::Duplicate,
            reply(StatusCode::OK, "already queued"),
        ),
        // Calendly retries on 5xx: nothing is lost.
        Err(e) => {
            tracing::error!(error = %e, "could not enqueue a booking");
            let r = reply(StatusCode::SERVICE_UNAVAILABLE, "queue unavailable; retry");
            (WebhookResult::Unavailable, r)
        }
    }
}

/// Stripe's events, `Stripe-Signature` verified over the raw body within the replay
/// window; `invoice.paid` records the payment. A bad signature gets a 400 and changes
/// nothing; a store error a 503, so Stripe delivers again.
pub(super) async fn stripe(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    counted("stripe", stripe_result(&ctx, &headers, &body).await)
}

async fn stripe_result(ctx: &Ctx, headers: &HeaderMap, body: &Bytes) -> (WebhookResult, Response) {
    let signed = Signed {
        source: "stripe",
        key: ctx.secrets.stripe_webhook_secret.as_deref(),
        variable: "STRIPE_WEBHOOK_SECRET",
        header: signature::STRIPE_HEADER,
        tolerance: ctx.settings.providers.stripe.webhook_tolerance_seconds,
        refused: StatusCode::BAD_REQUEST,
    };
    if let Some(refused) = refusal(ctx, signed, headers, body) {
        return refused;
    }
    let event: finance::stripe::Event = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            let text = format!("body is not a Stripe event: {e}");
            return (WebhookResult::BadBody, reply(StatusCode::BAD_REQUEST, text));
        }
    };
    match finance::stripe::apply(ctx, &event).await {
        Ok(Some(invoice)) => (
            WebhookResult::Queued,
            reply(StatusCode::OK, format!("payment recorded for {invoice}")),
        ),
        Ok(None) => (
            WebhookResult::Ignored,
            reply(
                StatusCode::OK,
                format!("ignored: {} {}", event.kind, event.id),
            ),
        ),
        // An event that cannot be right: Stripe gets told, instead of retrying for days.
        Err(e) if e.disposition() == Disposition::Abort => (
            WebhookResult::BadBody,
            reply(StatusCode::BAD_REQUEST, e.to_string()),
        ),
        Err(e) => {
            tracing::error!(error = %e, "stripe event failed");
            (
                WebhookResult::Unavailable,
                reply(StatusCode::SERVICE_UNAVAILABLE, "try again shortly"),
            )
        }
    }
}
