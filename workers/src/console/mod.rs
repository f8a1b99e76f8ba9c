//! The operator console, served by `cep serve` and `cep run` beside the public
//! endpoints: sign-in with roles (viewer reads; operator acts on the business; admin
//! also on the fleet and on users), the inbox of what needs a person with its actions,
//! the fleet's queues and dead letters, and the audit log of every action. Pages are
//! rendered on the server and work without JavaScript.
//!
//! `users` and `session` sign people in, `audit` keeps the log, `layout` is the page
//! shell, and each page is a file with its actions.

pub mod audit;
mod audit_page;
mod charts;
mod clients;
mod coherence;
mod fleet;
mod inbox;
mod layout;
mod money;
pub mod pipeline;
mod prospect;
mod reports;
pub mod session;
pub mod users;
mod waiting;

use crate::Ctx;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

/// The largest form the console reads: a lost meeting's reason is the longest field.
pub const FORM_BODY_LIMIT: usize = 16 * 1024;

pub use layout::url_path;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/sign-in", get(sign_in_form).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/inbox", get(inbox::page))
        .route("/pipeline", get(pipeline::page))
        .route("/prospects/{id}", get(prospect::page))
        .route("/prospects/{id}/screenshot", get(prospect::screenshot))
        .route("/clients", get(clients::list))
        .route("/clients/{id}", get(clients::page))
        .route("/reports", get(reports::list))
        .route("/reports/{id}", get(reports::report_page))
        .route("/reports/{id}/html", get(reports::report_html))
        .route("/reports/{id}/pdf", get(reports::pdf))
        .route("/reports/{id}/notes", post(reports::save_notes))
        .route("/reports/{id}/send", post(reports::send))
        .route("/reports/{id}/links", post(reports::make_link))
        .route("/report-links/{id}/revoke", post(reports::revoke_link))
        .route(
            "/clients/{id}/report-recipients",
            post(reports::save_recipients),
        )
        .route("/money", get(money::page))
        .route("/coherence", get(coherence::page))
        .route("/changes/{id}/rollback", post(coherence::rollback))
        .route("/fleet", get(fleet::page))
        .route("/queues/{queue}/dead", post(fleet::dead))
        .route("/queues/{queue}/{action}", post(fleet::pause))
        .route("/audit", get(audit_page::page))
        .route("/meetings/{id}/outcome", post(inbox::meeting_outcome))
        .route("/meetings/{id}/link", post(inbox::meeting_link))
        .route("/tasks/{id}/done", post(inbox::task_done))
        .route("/onboarding-tasks/{id}/done", post(inbox::onboarding_done))
        .route("/prospects/{id}/answered", post(inbox::reply_answered))
        .route("/messages/{id}/resolve", post(inbox::message_resolve))
        .route("/posts/{id}/approve", post(inbox::post_approve))
        .route("/invoices/{id}/paid", post(inbox::invoice_paid))
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .with_state(ctx)
}

async fn sign_in_form() -> Response {
    layout::sign_in_page(StatusCode::OK, None).into_response()
}
