//! What the world does, carried out the way it happens in production: a booking is a
//! signed Calendly webhook through the real router, an unsubscribe the one-click link.

use super::world::{Act, World, between};
use cep_shared::clock::{DAY, HOUR};
use cep_shared::ids::stable_hash;
use cep_shared::vocabulary::MeetingState;
use cep_workers::Ctx;
use cep_workers::clients::signature;
use cep_workers::layers::booking::{self, Outcome, Reporter};
use cep_workers::layers::{finance, onboarding, outreach};
use tower::ServiceExt;

/// Why the simulated prospects do not buy.
const LOST_REASONS: [&str; 4] = [
    "price: over their budget this year",
    "timing: asked to talk again next quarter",
    "chose another agency",
    "wants to keep doing it in-house",
];

async fn meeting_state(ctx: &Ctx, meeting: &str) -> anyhow::Result<Option<MeetingState>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM meetings WHERE id = $1")
        .bind(meeting)
        .fetch_optional(ctx.store.pool())
        .await?;
    Ok(row.map(|(s,)| s.parse()).transpose()?)
}

pub(super) fn invitee_uri(prospect: &str, n: u32) -> String {
    format!(
        "https://api.calendly.com/scheduled_events/sim-{:x}-{n}/invitees/sim-{:x}-{n}",
        stable_hash(&[prospect]),
        stable_hash(&[prospect, "invitee"])
    )
}

pub(super) fn iso(ms: i64) -> String {
    cep_shared::clock::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(super) async fn post(
    router: &axum::Router,
    uri: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> anyhow::Result<axum::http::StatusCode> {
    let mut req = axum::http::Request::builder().method("POST").uri(uri);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = router
        .clone()
        .oneshot(req.body(axum::body::Body::from(body))?)
        .await?;
    Ok(resp.status())
}

pub(super) async fn webhook(
    ctx: &Ctx,
    router: &axum::Router,
    w: &mut World,
    body: serde_json::Value,
) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&body)?;
    let key = ctx
        .secrets
        .calendly_signing_key
        .as_deref()
        .unwrap_or_default();
    let sig = signature::sign(key, ctx.now() / 1000, &body);
    let status = post(
        router,
        "/webhooks/calendly",
        &[
            ("content-type", "application/json".into()),
            (signature::HEADER, sig),
        ],
        body,
    )
    .await?;
    if !status.is_success() {
        w.webhooks_refused += 1;
        tracing::warn!(%status, "simulated webhook refused");
    }
    Ok(())
}

/// The name and email a prospect books or cancels with.
pub(super) async fn contact(ctx: &Ctx, prospect: &str) -> anyhow::Result<(String, String)> {
    let (name, email): (String, Option<String>) =
        sqlx::query_as("SELECT name, email FROM prospects WHERE id = $1")
            .bind(prospect)
            .fetch_one(ctx.store.pool())
            .await?;
    Ok((name, email.unwrap_or_default()))
}

pub(super) async fn act(
    ctx: &Ctx,
    router: &axum::Router,
    w: &mut World,
    a: Act,
    now: i64,
) -> anyhow::Result<()> {
    match a {
        Act::Reply { message } => {
            outreach::record_reply(ctx, &message, now).await?;
        }
        Act::Unsubscribe { message } => {
            let token =
                outreach::unsubscribe_token(ctx.secrets.unsubscribe_key.as_deref(), &message);
            let status = post(
                router,
                &format!("/unsubscribe/{message}?token={token}"),
                &[("content-type", "application/x-www-form-urlencoded".into())],
                b"List-Unsubscribe=One-Click".to_vec(),
            )
            .await?;
            anyhow::ensure!(status.is_success(), "unsubscribe refused: {status}");
        }
        Act::Book {
            prospect,
            pitch,
            n,
            start_at,
        } => {
            let (name, email) = contact(ctx, &prospect).await?;
            let mut rng = w.rng(&["booking", &prospect, &n.to_string()]);
            let answers = ["A demo of what you would change", "Pricing questions", ""];
            let answer = answers[rng.below(3) as usize];
            // The tracking of the link the prospect was sent, signed as it was.
            let signature = ctx
                .secrets
                .booking_link_key
                .as_deref()
                .zip(pitch.as_deref())
                .map(|(key, pitch)| outreach::booking_signature(key, &prospect, pitch));
            let body = serde_json::json!({
                "event": "invitee.created",
                "created_at": iso(now),
                "payload": {
                    "uri": invitee_uri(&prospect, n),
                    "email": email,
                    "name": name,
                    "status": "active",
                    "rescheduled": false,
                    "questions_and_answers": [{"question": "What should we cover?", "answer": answer, "position": 0}],
                    "tracking": {"utm_source": "cep", "utm_medium": "email", "utm_campaign": prospect, "utm_content": pitch, "utm_term": signature},
                    "scheduled_event": {"name": "Discovery call", "start_time": iso(start_at)}
                }
            });
            webhook(ctx, router, w, body).await?;
            w.at(
                start_at + HOUR,
                Act::Attend {
                    prospect: prospect.clone(),
                    n,
                },
            );
            let roll = rng.unit();
            if roll < w.b.reschedule {
                let at = now + between(&mut rng, HOUR, (start_at - now).max(2 * HOUR));
                w.at(
                    at,
                    Act::Cancel {
                        prospect: prospect.clone(),
                        n,
                        rescheduled: true,
                    },
                );
                w.at(
                    at + 1,
                    Act::Book {
                        prospect,
                        pitch,
                        n: n + 1,
                        start_at: start_at + 2 * DAY,
                    },
                );
            } else if roll < w.b.reschedule + w.b.cancel {
                let at = now + between(&mut rng, HOUR, (start_at - now).max(2 * HOUR));
                w.at(
                    at,
                    Act::Cancel {
                        prospect,
                        n,
                        rescheduled: false,
                    },
                );
            }
        }
        Act::Cancel {
            prospect,
            n,
            rescheduled,
        } => {
            let (name, email) = contact(ctx, &prospect).await?;
            let body = serde_json::json!({
                "event": "invitee.canceled",
                "created_at": iso(now),
                "payload": {
                    "uri": invitee_uri(&prospect, n),
                    "email": email,
                    "name": name,
                    "status": "canceled",
                    "rescheduled": rescheduled,
                    "tracking": {"utm_campaign": prospect},
                    "scheduled_event": {"name": "Discovery call"}
                }
            });
            webhook(ctx, router, w, body).await?;
        }
        Act::Attend { prospect, n } => {
            let meeting = booking::meeting_id(&invitee_uri(&prospect, n));
            if meeting_state(ctx, &meeting).await? != Some(MeetingState::Scheduled) {
                return Ok(()); // canceled or rescheduled
            }
            let mut rng = w.rng(&["attend", &meeting]);
            if rng.unit() < w.b.show {
                booking::outcome::record(ctx, &meeting, Outcome::Held, Reporter::Operator).await?;
                let at = now + between(&mut rng, HOUR, 72 * HOUR);
                w.at(at, Act::Decide { prospect, n });
            } else {
                // The host marks the no-show in Calendly, which tells us.
                let (name, email) = contact(ctx, &prospect).await?;
                let body = serde_json::json!({
                    "event": "invitee_no_show.created",
                    "created_at": iso(now),
                    "payload": {
                        "uri": invitee_uri(&prospect, n),
                        "email": email,
                        "name": name,
                        "status": "active",
                        "no_show": {"uri": format!("https://api.calendly.com/invitee_no_shows/sim-{meeting}"), "created_at": iso(now)},
                    }
                });
                webhook(ctx, router, w, body).await?;
            }
        }
        Act::Decide { prospect, n } => {
            let meeting = booking::meeting_id(&invitee_uri(&prospect, n));
            let mut rng = w.rng(&["decide", &meeting]);
            let outcome = if rng.unit() < w.b.close {
                let (class,): (String,) =
                    sqlx::query_as("SELECT lead_class FROM prospects WHERE id = $1")
                        .bind(&prospect)
                        .fetch_one(ctx.store.pool())
                        .await?;
                let tier =
                    onboarding::rules::tier_for(class.parse()?, &ctx.settings.layers.onboarding);
                Outcome::Won {
                    tier: tier.to_owned(),
                }
            } else {
                let reason = LOST_REASONS[rng.below(LOST_REASONS.len() as u64) as usize];
                Outcome::Lost {
                    reason: reason.into(),
                }
            };
            booking::outcome::record(ctx, &meeting, outcome, Reporter::Operator).await?;
        }
        Act::CompleteTask { task } => {
            onboarding::complete_task(ctx, &task, now).await?;
        }
        Act::Pay { invoice } => {
            finance::record_payment(ctx, &invoice, now).await?;
        }
        Act::CancelClient { client } => {
            finance::cancel_client(ctx, &client, now).await?;
        }
    }
    Ok(())
}
