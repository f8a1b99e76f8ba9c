//! `GET /audit`: the audit log, newest first, a page at a time.

use super::audit;
use super::layout::{self, when};
use super::session::{Refusal, Signed};
use crate::Ctx;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;

const PAGE: u32 = 100;

#[derive(serde::Deserialize)]
pub struct Paging {
    before: Option<String>,
}

pub async fn page(
    State(ctx): State<Ctx>,
    signed: Signed,
    Query(p): Query<Paging>,
) -> Result<Response, Refusal> {
    let entries = audit::page(&ctx, p.before.as_deref(), PAGE).await?;
    let counts = super::waiting::counts(&ctx).await?;
    let body = html! {
        @if entries.is_empty() { p { "Nothing recorded yet." } }
        @else {
            div.wrap { table {
                tr { th { "When" } th { "Who" } th { "What" } th { "On" } th { "Before" } th { "After" } }
                @for e in &entries {
                    tr {
                        td { (when(e.at)) }
                        td { (e.actor) }
                        td { (e.action) }
                        td { code { (e.subject) } }
                        td { @if let Some(b) = &e.before { pre { (b) } } }
                        td { @if let Some(a) = &e.after { pre { (a) } } }
                    }
                }
            } }
            @if entries.len() == PAGE as usize {
                @if let Some(last) = entries.last() {
                    p { a href=(format!("/audit?before={}", last.id)) { "Older" } }
                }
            }
        }
    };
    Ok(layout::page(
        signed.shown(),
        "/audit",
        "Audit log",
        counts,
        body,
    ))
}
