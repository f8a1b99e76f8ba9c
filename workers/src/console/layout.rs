//! The console's page shell: the navigation with what waits in the inbox, the signed-in
//! user and sign-out, one small stylesheet that works at phone width; and the sign-in,
//! message and error pages. Everything is rendered by `maud`, which escapes every value.

use super::users::User;
use crate::JobError;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0;color:#1a202c;background:#f7fafc;line-height:1.4}
header{background:#1a365d;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:.5em 1.2em;align-items:center}
header a{color:#fff;text-decoration:none}
header a.on{font-weight:bold;text-decoration:underline}
header .who{margin-left:auto;font-size:.9em}
header form{display:inline}
main{padding:1em;max-width:1100px;margin:auto}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{border-bottom:1px solid #e2e8f0;padding:.4em;text-align:left;vertical-align:top}
.wrap{overflow-x:auto}
.badge{background:#e53e3e;color:#fff;border-radius:1em;padding:0 .5em;font-size:.85em}
.muted{color:#718096}
form.inline{display:inline-flex;gap:.3em;flex-wrap:wrap;margin:.1em 0}
button{padding:.3em .7em;cursor:pointer}
input,select{padding:.3em;max-width:100%}
.box{background:#fff;padding:1em;border:1px solid #e2e8f0;max-width:24em;margin:3em auto}
.box input{width:100%;margin:.3em 0 .8em}
.err{color:#c53030}
pre{white-space:pre-wrap;word-break:break-word;font-size:.85em}
nav.tabs{display:flex;flex-wrap:wrap;gap:.3em .9em;margin-bottom:.8em}
nav.tabs a.on{font-weight:bold}
form.filters{display:flex;flex-wrap:wrap;gap:.4em;margin-bottom:1em}
details{margin:.3em 0}
";

/// A whole document: `title` in the head, `body` as the body.
fn document(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · CEP console" }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// What the navigation counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub inbox: usize,
    /// At least this many: counts stop at the inbox's page size.
    pub capped: bool,
    pub dead: u64,
}

/// A page for a signed-in `user` (whose forms carry `csrf`): the navigation, then `body`.
pub fn page(
    (user, csrf): (&User, &str),
    on: &str,
    title: &str,
    counts: Counts,
    body: Markup,
) -> Response {
    let links = [
        ("/inbox", "Inbox"),
        ("/pipeline", "Pipeline"),
        ("/clients", "Clients"),
        ("/reports", "Reports"),
        ("/money", "Money"),
        ("/coherence", "Coherence"),
        ("/fleet", "Fleet"),
        ("/audit", "Audit"),
    ];
    let markup = html! {
        header {
            strong { "CEP" }
            @for (href, name) in links {
                a href=(href) class=[(on == href).then_some("on")] {
                    (name)
                    @if href == "/inbox" && counts.inbox > 0 {
                        " " span.badge { (counts.inbox) @if counts.capped { "+" } }
                    }
                    @if href == "/fleet" && counts.dead > 0 {
                        " " span.badge title="dead letters" { (counts.dead) }
                    }
                }
            }
            span.who {
                (user.email) " · " (user.role) " "
                form method="post" action="/sign-out" {
                    input type="hidden" name="csrf" value=(csrf);
                    button { "Sign out" }
                }
            }
        }
        main {
            h1 { (title) }
            (body)
        }
    };
    Html(document(title, markup)).into_response()
}

/// The sign-in form, with `problem` above it when the last try failed.
pub fn sign_in_page(status: StatusCode, problem: Option<&str>) -> Response {
    let markup = html! {
        main {
            form.box method="post" action="/sign-in" {
                h1 { "Sign in" }
                @if let Some(p) = problem { p.err role="alert" { (p) } }
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        }
    };
    (status, Html(document("Sign in", markup))).into_response()
}

/// A short page saying why, with a way back.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let markup = html! {
        main {
            h1 { (title) }
            p { (text) }
            p { a href="/inbox" { "Back to the inbox" } }
        }
    };
    (status, Html(document(title, markup))).into_response()
}

/// An action or page that failed: a refused input names why (422); anything else is
/// the store or queue (503), logged with its detail.
pub fn error(e: JobError) -> Response {
    match e {
        JobError::Invalid(why)
        | JobError::Malformed(why)
        | JobError::Queue(cep_shared::queue::QueueError::Refused(why)) => {
            message(StatusCode::UNPROCESSABLE_ENTITY, "Not done", &why)
        }
        other => {
            tracing::warn!(error = %other, "console request failed");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The store or the queue did not answer; try again shortly.",
            )
        }
    }
}

/// Milliseconds as a UTC date and time a person reads.
pub fn when(ms: i64) -> String {
    cep_shared::clock::from_millis(ms)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// An id as one path segment.
pub fn url_path(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}
