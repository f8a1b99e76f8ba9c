//! The HTTP side of the fleet: Calendly's booking webhook and the one-click unsubscribe
//! links every email carries. Handlers answer quickly and leave the work to the queue.

use crate::booking;
use crate::signature;
use crate::{Ctx, outreach};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

/// The public endpoints, plus health and metrics.
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/webhooks/calendly", post(calendly))
        .route("/webhooks/stripe", post(stripe_webhook))
        .route("/inbound/email", post(inbound_email))
        .route(
            "/unsubscribe/{message}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .with_state(ctx.clone())
        .merge(crate::ops::router(ctx))
}

fn reply(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

/// Verifies the signature on the raw body, then enqueues the booking. A bad or stale
/// signature, or a body that is not a Calendly v2 webhook, gets a 4xx and enqueues
/// nothing.
async fn calendly(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    counted("calendly", calendly_result(&ctx, &headers, &body).await)
}

/// Counts a webhook delivery by source and result, and answers it.
fn counted(source: &str, (result, response): (&'static str, Response)) -> Response {
    cep_shared::metrics::get()
        .webhooks
        .with_label_values(&[source, result])
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
) -> Option<(&'static str, Response)> {
    let Some(key) = s.key else {
        let text = format!("webhooks are refused until {} is set", s.variable);
        return Some(("unconfigured", reply(StatusCode::SERVICE_UNAVAILABLE, text)));
    };
    let header = headers.get(s.header).and_then(|v| v.to_str().ok());
    let e = signature::verify(header, body, key, ctx.now() / 1000, s.tolerance).err()?;
    tracing::warn!(error = %e, source = s.source, "webhook refused");
    Some(("bad_signature", reply(s.refused, e.to_string())))
}

async fn calendly_result(ctx: &Ctx, headers: &HeaderMap, body: &Bytes) -> (&'static str, Response) {
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
            tracing::warn!(error = %e, "calendly webhook body refused");
            let text = format!("body is not a Calendly v2 webhook: {e}");
            return ("bad_body", reply(StatusCode::BAD_REQUEST, text));
        }
    };
    let event = hook.event.clone();
    let Some(job) = hook.into_job() else {
        let text = format!("ignored: `{event}` is not handled");
        return ("ignored", reply(StatusCode::OK, text));
    };
    match ctx.queue.push(booking::job_for(&job, ctx.now())).await {
        Ok(true) => ("queued", reply(StatusCode::ACCEPTED, "queued")),
        Ok(false) => ("duplicate", reply(StatusCode::OK, "already queued")),
        // Calendly retries on 5xx: nothing is lost.
        Err(e) => {
            tracing::error!(error = %e, "could not enqueue a booking");
            let r = reply(StatusCode::SERVICE_UNAVAILABLE, "queue unavailable; retry");
            ("unavailable", r)
        }
    }
}

/// Stripe's events, `Stripe-Signature` verified over the raw body within the replay
/// window; `invoice.paid` records the payment. A bad signature gets a 400 and changes
/// nothing; a store error a 503, so Stripe delivers again.
async fn stripe_webhook(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    counted("stripe", stripe_result(&ctx, &headers, &body).await)
}

async fn stripe_result(ctx: &Ctx, headers: &HeaderMap, body: &Bytes) -> (&'static str, Response) {
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
    let event: crate::finance::stripe::Event = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            let text = format!("body is not a Stripe event: {e}");
            return ("bad_body", reply(StatusCode::BAD_REQUEST, text));
        }
    };
    match crate::finance::stripe::apply(ctx, &event).await {
        Ok(Some(invoice)) => (
            "queued",
            reply(StatusCode::OK, format!("payment recorded for {invoice}")),
        ),
        Ok(None) => (
            "ignored",
            reply(
                StatusCode::OK,
                format!("ignored: {} {}", event.kind, event.id),
            ),
        ),
        Err(e) => {
            tracing::error!(error = %e, "stripe event failed");
            (
                "unavailable",
                reply(StatusCode::SERVICE_UNAVAILABLE, "try again shortly"),
            )
        }
    }
}

/// Replies, bounces and mailto unsubscribes, posted raw by the mailbox's forwarder with
/// `Authorization: Bearer $CEP_INBOUND_TOKEN`.
async fn inbound_email(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = ctx.secrets.inbound_token.as_deref() else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "inbound mail is refused until CEP_INBOUND_TOKEN is set",
        );
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !signature::constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return reply(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let message = match outreach::inbound::parse(&body) {
        Ok(m) => m,
        Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match outreach::inbound::handle(&ctx, &message).await {
        Ok(handled) => axum::Json(handled).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "inbound mail failed");
            reply(StatusCode::SERVICE_UNAVAILABLE, "try again shortly")
        }
    }
}

#[derive(Deserialize)]
struct Token {
    token: Option<String>,
}

fn check_token(
    ctx: &Ctx,
    message: &str,
    token: Option<&str>,
) -> Result<(), (StatusCode, &'static str)> {
    let Some(key) = ctx.secrets.unsubscribe_key.as_deref() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "unsubscribe links are not signed here (CEP_UNSUBSCRIBE_KEY is not set)",
        ));
    };
    match token {
        Some(t) if outreach::verify_unsubscribe_token(key, message, t) => Ok(()),
        _ => Err((StatusCode::FORBIDDEN, "this unsubscribe link is not valid")),
    }
}

/// A GET never unsubscribes by itself (mail scanners follow links): it shows a button.
async fn unsubscribe_page(
    State(ctx): State<Ctx>,
    Path(message): Path<String>,
    Query(q): Query<Token>,
) -> Response {
    if let Err((status, text)) = check_token(&ctx, &message, q.token.as_deref()) {
        return reply(status, text);
    }
    let token = q.token.unwrap_or_default();
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>\
         <form method=post action=\"/unsubscribe/{message}?token={token}\">\
         <p>Stop all messages from {}?</p><button>Unsubscribe</button></form>",
        html_escape(&ctx.settings.layers.outreach.from_name)
    ))
    .into_response()
}

/// RFC 8058 one-click: a POST with `List-Unsubscribe=One-Click`, no cookies, no
/// redirect.
async fn unsubscribe(
    State(ctx): State<Ctx>,
    Path(message): Path<String>,
    Query(q): Query<Token>,
) -> Response {
    if let Err((status, text)) = check_token(&ctx, &message, q.token.as_deref()) {
        return reply(status, text);
    }
    let address = match outreach::recipient_of(&ctx, &message).await {
        Ok(Some(a)) => a,
        Ok(None) => return reply(StatusCode::NOT_FOUND, "no such message"),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe lookup failed");
            return reply(StatusCode::SERVICE_UNAVAILABLE, "try again shortly");
        }
    };
    match outreach::suppress(&ctx, &address, "unsubscribed", ctx.now()).await {
        Ok(()) => reply(StatusCode::OK, "unsubscribed"),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe failed");
            reply(StatusCode::SERVICE_UNAVAILABLE, "try again shortly")
        }
    }
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Serves the public endpoints (and health and metrics) on `bind` until shutdown.
pub async fn serve(
    ctx: Ctx,
    bind: &str,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let router = router(ctx.clone());
    crate::ops::serve(ctx, router, bind, shutdown).await
}
