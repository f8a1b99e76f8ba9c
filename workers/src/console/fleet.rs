//! The fleet as the console shows it: every queue's ready, scheduled, running and dead
//! jobs, what the queue holds outside the fleet's queues, and the dead letters with
//! their reason, attempts and payload.

use super::layout::{self, Counts};
use super::session::{Refusal, Signed};
use crate::{Ctx, JobError};
use axum::extract::State;
use axum::response::Response;
use cep_shared::queue;
use maud::html;

/// Dead letters shown per queue.
const DEAD_PER_QUEUE: usize = 20;
/// The most of a payload or reason shown.
const SHOWN_CHARS: usize = 400;

/// Every queue's dead letters, the fleet's and any other the queue holds.
pub async fn dead_total(ctx: &Ctx) -> Result<u64, JobError> {
    let mut all = ctx.queue.stats(&queue::known_queues()).await?;
    all.extend(ctx.queue.strays().await?);
    Ok(all.iter().map(|s| s.dead).sum())
}

fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(SHOWN_CHARS).collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// `GET /fleet`.
pub async fn page(State(ctx): State<Ctx>, signed: Signed) -> Result<Response, Refusal> {
    let mut stats = ctx.queue.stats(&queue::known_queues()).await?;
    let strays = ctx.queue.strays().await?;
    let first_stray = stats.len();
    stats.extend(strays);
    let mut dead = Vec::new();
    for s in stats.iter().filter(|s| s.dead > 0) {
        dead.push((
            s.queue.clone(),
            ctx.queue.dead_letters(&s.queue, DEAD_PER_QUEUE).await?,
        ));
    }
    let counts = Counts {
        dead: stats.iter().map(|s| s.dead).sum(),
        ..super::inbox::counts(&ctx).await?
    };
    let body = html! {
        h2 { "Queues (" (ctx.queue.backend_name()) ")" }
        div.wrap { table {
            tr { th { "Queue" } th { "Ready" } th { "Scheduled" } th { "Running" } th { "Dead" } }
            @for (i, s) in stats.iter().enumerate() {
                tr {
                    td {
                        (s.queue)
                        @if i >= first_stray {
                            br; span.muted { @if s.queue == queue::UNREADABLE { "set aside: no worker can read them" } @else { "unknown queue: no worker serves it" } }
                        }
                    }
                    td { (s.ready) } td { (s.scheduled) } td { (s.running) } td { (s.dead) }
                }
            }
        } }
        @for (q, letters) in &dead {
            h2 { "Dead letters: " (q) }
            div.wrap { table {
                tr { th { "Job" } th { "Attempts" } th { "Reason" } th { "Payload" } }
                @for d in letters {
                    tr {
                        td { code { (d.id) } }
                        td { (d.attempts) }
                        td { pre { (shown(&d.reason)) } }
                        td { pre { (shown(&d.payload)) } }
                    }
                }
            } }
        }
    };
    Ok(layout::page(&signed, "/fleet", "Fleet", counts, body))
}
