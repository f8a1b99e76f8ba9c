//! The unsubscribe link every email carries: a GET shows a button, the RFC 8058
//! one-click POST suppresses the address.

use super::reply;
use crate::Ctx;
use crate::layers::outreach;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct Token {
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
pub(super) async fn page(
    State(ctx): State<Ctx>,
    Path(message): Path<String>,
    Query(q): Query<Token>,
) -> Response {
    if let Err((status, text)) = check_token(&ctx, &message, q.token.as_deref()) {
        return reply(status, text);
    }
    // No action: the button posts to this very URL, so nothing from the request is
    // echoed into the page.
    let from = &ctx.settings.layers.outreach.from_name;
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Unsubscribe" } }
            body { form method="post" { p { "Stop all messages from " (from) "?" } button { "Unsubscribe" } } }
        }
    };
    Html(page.into_string()).into_response()
}

/// RFC 8058 one-click: a POST with `List-Unsubscribe=One-Click`, no cookies, no
/// redirect.
pub(super) async fn unsubscribe(
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
