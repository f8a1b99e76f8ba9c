//! Inbound mail: replies, bounces and mailto unsubscribes the mailbox forwards raw.

use super::reply;
use crate::Ctx;
use crate::clients::signature;
use crate::layers::outreach;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// Replies, bounces and mailto unsubscribes, posted raw by the mailbox's forwarder with
/// `Authorization: Bearer $CEP_INBOUND_TOKEN`.
pub(super) async fn email(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
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
