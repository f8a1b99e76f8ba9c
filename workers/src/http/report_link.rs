//! `GET /r/{token}`: a client's report through its no-login link. Served with a policy
//! that lets the page load nothing but its own styles and images, kept out of caches,
//! search engines and referrers (the token is in the address). An expired or revoked
//! link is told so; a token nobody made is a 404 like any other.

use crate::Ctx;
use crate::layers::reporting::{
    self,
    links::{self, Opened},
};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What a client sees instead of the report, with the agency's contact.
fn gone(ctx: &Ctx, why: &str) -> Response {
    let brand = &ctx.settings.reports.brand;
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Report link" } }
            body style="font-family:system-ui,sans-serif;max-width:40em;margin:3em auto" {
                h1 { (why) }
                p { "Ask " (brand.agency_name) " for a new link."
                    @if !brand.contact.is_empty() { " " (brand.contact) } }
            }
        }
    };
    (StatusCode::GONE, headers(), page.into_string()).into_response()
}

fn headers() -> [(header::HeaderName, &'static str); 5] {
    [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, reporting::PAGE_POLICY),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::HeaderName::from_static("x-robots-tag"), "noindex"),
    ]
}

pub async fn page(State(ctx): State<Ctx>, Path(token): Path<String>) -> Response {
    match links::open(&ctx, &token).await {
        Ok(Opened::Report { html, .. }) => (headers(), html).into_response(),
        Ok(Opened::Expired) => gone(&ctx, "This report link has expired."),
        Ok(Opened::Revoked) => gone(&ctx, "This report link was withdrawn."),
        Ok(Opened::Unknown) => (StatusCode::NOT_FOUND, "no such report link").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "a report link could not be opened");
            (StatusCode::SERVICE_UNAVAILABLE, "try again shortly").into_response()
        }
    }
}
