//! The fleet's HTTP side: the public endpoints (Calendly and Stripe webhooks, inbound
//! mail, one-click unsubscribe links, clients' report links) and the ops endpoints every long-running role
//! serves (health, readiness, metrics). Handlers answer quickly and leave the work to
//! the queue or to the layer that owns it; this folder may use the runtime, the clients
//! and the layers, and nothing below it uses this folder.

mod inbound;
pub mod limit;
pub mod ops;
mod report_link;
mod unsubscribe;
mod webhooks;

use crate::Ctx;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// The largest body each public route reads, sized to what its sender sends: a
/// Calendly delivery is a few KiB, a Stripe event rarely past 100 KiB, a raw mail with
/// its quoted original or a bounce's report can be a few MiB, and a one-click
/// unsubscribe is one form field. A larger body is refused with 413 before it is read.
pub const CALENDLY_BODY_LIMIT: usize = 64 * 1024;
pub const STRIPE_BODY_LIMIT: usize = 256 * 1024;
pub const INBOUND_BODY_LIMIT: usize = 2 * 1024 * 1024;
pub const UNSUBSCRIBE_BODY_LIMIT: usize = 1024;

/// The public endpoints, plus health and metrics.
pub fn router(ctx: Ctx) -> Router {
    public_router(ctx.clone()).merge(ops::router(ctx))
}

/// The public endpoints alone: webhooks, inbound mail, unsubscribe links, and the
/// operator console behind its sign-in. The routes anyone can post to are rate-limited
/// per client (see [`limit`]).
pub fn public_router(ctx: Ctx) -> Router {
    let limiter = limit::Limiter::new(ctx.settings.server.rate_limit);
    let limited = axum::middleware::from_fn_with_state(limiter, limit::limit);
    Router::new()
        .route(
            "/webhooks/calendly",
            post(webhooks::calendly).layer(DefaultBodyLimit::max(CALENDLY_BODY_LIMIT)),
        )
        .route(
            "/webhooks/stripe",
            post(webhooks::stripe).layer(DefaultBodyLimit::max(STRIPE_BODY_LIMIT)),
        )
        .route(
            "/inbound/email",
            post(inbound::email).layer(DefaultBodyLimit::max(INBOUND_BODY_LIMIT)),
        )
        .route("/r/{token}", axum::routing::get(report_link::page))
        .route_layer(limited)
        .route(
            "/unsubscribe/{message}",
            get(unsubscribe::page)
                .post(unsubscribe::unsubscribe)
                .layer(DefaultBodyLimit::max(UNSUBSCRIBE_BODY_LIMIT)),
        )
        .with_state(ctx.clone())
        .merge(crate::console::router(ctx))
}

fn reply(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

/// Binds what a long-running role serves. With `public` (`serve`, `run`) the public
/// endpoints go on `server.bind`. The ops endpoints go on `server.metrics_bind` when it
/// is set, on `server.bind` otherwise (beside the public ones, for a role that has them).
pub async fn bind_role(
    ctx: &Ctx,
    public: bool,
) -> anyhow::Result<Vec<(Router, tokio::net::TcpListener)>> {
    let sv = &ctx.settings.server;
    let ops = ops::router(ctx.clone());
    let main = || async {
        let listener = ops::bind(&sv.bind, "server.bind").await?;
        if public {
            let url = format!("http://{}/", listener.local_addr()?);
            tracing::info!(%url, "operator console (first user: `cep user add <email> --role admin`)");
        }
        anyhow::Ok(listener)
    };
    Ok(match (public, &sv.metrics_bind) {
        (true, Some(metrics)) => vec![
            (public_router(ctx.clone()), main().await?),
            (ops, ops::bind(metrics, "server.metrics_bind").await?),
        ],
        (true, None) => vec![(public_router(ctx.clone()).merge(ops), main().await?)],
        (false, Some(metrics)) => vec![(ops, ops::bind(metrics, "server.metrics_bind").await?)],
        (false, None) => vec![(ops, main().await?)],
    })
}

/// Serves the public endpoints and the ops endpoints (see [`bind_role`]) until shutdown.
pub async fn serve(ctx: Ctx, shutdown: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    let served = bind_role(&ctx, true).await?;
    ops::serve_on(ctx, served, shutdown).await
}
