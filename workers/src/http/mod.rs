//! The fleet's HTTP side: the public endpoints (Calendly and Stripe webhooks, inbound
//! mail, one-click unsubscribe links) and the ops endpoints every long-running role
//! serves (health, readiness, metrics). Handlers answer quickly and leave the work to
//! the queue or to the layer that owns it; this folder may use the runtime, the clients
//! and the layers, and nothing below it uses this folder.

mod inbound;
pub mod ops;
mod unsubscribe;
mod webhooks;

use crate::Ctx;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// The public endpoints, plus health and metrics.
pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/webhooks/calendly", post(webhooks::calendly))
        .route("/webhooks/stripe", post(webhooks::stripe))
        .route("/inbound/email", post(inbound::email))
        .route(
            "/unsubscribe/{message}",
            get(unsubscribe::page).post(unsubscribe::unsubscribe),
        )
        .with_state(ctx.clone())
        .merge(ops::router(ctx))
}

fn reply(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

/// Serves the public endpoints (and health and metrics) on `bind` until shutdown.
pub async fn serve(
    ctx: Ctx,
    bind: &str,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let router = router(ctx.clone());
    ops::serve(ctx, router, bind, shutdown).await
}
