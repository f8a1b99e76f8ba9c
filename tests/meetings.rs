//! Layer 4 and what follows it, against a real store and queue: the signed Calendly
//! webhook, attribution by signed link, a meeting's outcomes (held, no-show, won, lost)
//! and only a won meeting making a client.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cep_shared::Clock;
use cep_shared::clock::HOUR;
use cep_shared::jobs::BookingJob;
use cep_shared::vocabulary::{AttributedBy, MeetingState, MessageStatus};
use cep_workers::clients::signature;
use cep_workers::layers::booking::{self, Outcome, Reporter};
use cep_workers::layers::{feedback_loop, onboarding, outreach};
use cep_workers::{Ctx, JobError, http};
use tower::ServiceExt;

async fn post_webhook(app: &axum::Router, body: Vec<u8>, header: Option<String>) -> StatusCode {
    let mut req = Request::post("/webhooks/calendly").header("content-type", "application/json");
    if let Some(h) = header {
        req = req.header("Calendly-Webhook-Signature", h);
    }
    app.clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_bad_or_stale_signature_gets_a_4xx_and_enqueues_nothing() {
    for backend in [Backend::Embedded, Backend::Fleet] {
        let h = harness(backend, settings(), Clock::simulated(in_window())).await;
        let now = in_window().timestamp();
        let unsigned = http::router(h.ctx.clone());
        let body = calendly_body(
            "invitee.created",
            "https://api.calendly.com/i/1",
            "p",
            false,
        );
        assert_eq!(
            post_webhook(
                &unsigned,
                body.clone(),
                Some(signature::sign("k", now, &body))
            )
            .await,
            StatusCode::SERVICE_UNAVAILABLE,
            "no signing key configured: refuse, do not trust"
        );
        let ctx = with_keys(&h.ctx);
        let app = http::router(ctx.clone());
        let key = "calendly-test-key";
        let cases = [
            (None, StatusCode::UNAUTHORIZED),
            (
                Some(signature::sign("wrong", now, &body)),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Some(signature::sign(key, now - 181, &body)),
                StatusCode::UNAUTHORIZED,
            ),
            (Some("t=abc,v1=00".to_string()), StatusCode::UNAUTHORIZED),
        ];
        for (header, status) in cases {
            assert_eq!(
                post_webhook(&app, body.clone(), header.clone()).await,
                status,
                "{header:?}"
            );
        }
        let junk = b"{\"event\": 3}".to_vec();
        assert_eq!(
            post_webhook(&app, junk.clone(), Some(signature::sign(key, now, &junk))).await,
            StatusCode::BAD_REQUEST
        );
        let stats = ctx.queue.stats(&["booking"]).await.unwrap();
        assert_eq!(
            stats[0].ready + stats[0].scheduled,
            0,
            "{backend:?}: nothing enqueued"
        );

        // A good one is queued once, however often Calendly retries it.
        let good = Some(signature::sign(key, now, &body));
        assert_eq!(
            post_webhook(&app, body.clone(), good.clone()).await,
            StatusCode::ACCEPTED
        );
        assert_eq!(post_webhook(&app, body.clone(), good).await, StatusCode::OK);
        let stats = ctx.queue.stats(&["booking"]).await.unwrap();
        assert_eq!(stats[0].ready, 1, "{backend:?}");
        if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
            r.purge().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_booking_stops_outreach_and_only_a_won_meeting_makes_a_client_who_goes_live_task_by_task()
{
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let ids = pitched(ctx, 1).await;
    send_step(ctx, &ids[0], 0).await.unwrap();
    let b = booking::handle(
        ctx,
        booking_job(
            "invitee.created",
            "https://api.calendly.com/i/1",
            &ids[0],
            false,
        ),
    )
    .await
    .unwrap();
    assert_eq!(b.prospect_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(b.meeting_type, "demo");
    assert_eq!(b.state, MeetingState::Scheduled);
    // The sequence stopped.
    let step = send_step(ctx, &ids[0], 1).await.unwrap();
    assert_eq!(step.status, MessageStatus::Skipped);
    // A booking alone makes no client, and nothing is recorded before the meeting.
    let out = start_onboarding(ctx, &b.meeting_id).await;
    assert_eq!(out["client_id"], serde_json::Value::Null);
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("only a won meeting"),
        "{out}"
    );
    let early = won(ctx, &b.meeting_id, "professional").await.unwrap_err();
    assert!(
        early.to_string().contains("starts at 2026-01-09 16:00 UTC"),
        "{early}"
    );

    // Won at the call's end: onboarding starts an hour later, on the tier sold.
    ctx.clock.set(meeting_start() + chrono::Duration::hours(1));
    let r = won(ctx, &b.meeting_id, "enterprise").await.unwrap();
    assert_eq!(
        (r.previous, r.state),
        (MeetingState::Scheduled, MeetingState::Won)
    );
    assert_eq!(r.onboarding_at, Some(ctx.now() + HOUR));
    let out = start_onboarding(ctx, &b.meeting_id).await;
    assert_eq!(out["state"], "documents requested");
    assert_eq!(out["billing_tier"], "enterprise");
    assert_eq!(
        out["documents_required"].as_array().unwrap().len(),
        8,
        "dental: 5 + 3"
    );
    let tasks = out["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 6);
    let task = |i: usize| tasks[i]["id"].as_str().unwrap().to_owned();
    // Out of order is refused, naming the dependency.
    let err = onboarding::complete_task(ctx, &task(1), ctx.now())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("depends on `collect documents`"),
        "{err}"
    );
    let mut at = ctx.now();
    for i in 0..6 {
        at += 24 * HOUR;
        let done = onboarding::complete_task(ctx, &task(i), at).await.unwrap();
        assert!(done.on_time);
        assert_eq!(done.live, i == 5);
    }
    let (state, live): (String, Option<i64>) = sqlx::query_as("SELECT state, live_at FROM clients")
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(state, "live");
    assert_eq!(live, Some(at));
    // A second delivery of the start job creates nothing new; recording the win again
    // changes nothing, with another tier it is refused.
    let again = start_onboarding(ctx, &b.meeting_id).await;
    assert_eq!(again["reason"], "already onboarding");
    assert_eq!(scalar(ctx, "SELECT COUNT(*) FROM tasks").await, 6);
    assert!(!won(ctx, &b.meeting_id, "enterprise").await.unwrap().changed);
    let err = won(ctx, &b.meeting_id, "starter").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("won already, with tier `enterprise`"),
        "{err}"
    );
    let stats = ctx.queue.stats(&["onboarding"]).await.unwrap();
    assert_eq!(
        stats[0].ready + stats[0].scheduled,
        1,
        "one start queued, by the win"
    );
}

async fn won(ctx: &Ctx, meeting: &str, tier: &str) -> Result<booking::Recorded, JobError> {
    let outcome = Outcome::Won { tier: tier.into() };
    booking::outcome::record(ctx, meeting, outcome, Reporter::Operator).await
}

async fn record(ctx: &Ctx, meeting: &str, outcome: Outcome) -> Result<booking::Recorded, JobError> {
    booking::outcome::record(ctx, meeting, outcome, Reporter::Operator).await
}

/// A signed Calendly no-show event (`created` or `deleted`) for invitee `uri`, sent at
/// `sent` (seconds).
async fn no_show(app: &axum::Router, event: &str, uri: &str, sent: i64) -> StatusCode {
    let body = serde_json::to_vec(&serde_json::json!({
        "event": event,
        "created_at": format!("2026-01-09T17:{:02}:00.000000Z", sent % 60),
        "payload": {
            "uri": uri, "email": "owner@example.com", "name": "Pat Owner", "status": "active",
            "no_show": {"uri": "https://api.calendly.com/invitee_no_shows/N1", "created_at": "2026-01-09T17:00:00.000000Z"}
        }
    }))
    .unwrap();
    let sig = signature::sign("calendly-test-key", sent, &body);
    post_webhook(app, body, Some(sig)).await
}

#[tokio::test]
async fn a_meeting_is_held_or_missed_then_won_or_lost_and_show_and_close_rates_follow() {
    let h = harness(Backend::Fleet, settings(), Clock::simulated(in_window())).await;
    let ctx = with_keys(&h.ctx);
    let ctx = &ctx;
    let ids = pitched(ctx, 4).await;
    let mut meetings = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let uri = format!("https://api.calendly.com/scheduled_events/E{n}/invitees/I{n}");
        let b = booking::handle(ctx, booking_job("invitee.created", &uri, id, false))
            .await
            .unwrap();
        meetings.push((uri, b.meeting_id));
    }
    let after = meeting_start() + chrono::Duration::hours(1);
    ctx.clock.set(after);
    let waiting = booking::to_review(ctx).await.unwrap();
    assert_eq!(waiting.len(), 4);
    assert!(
        waiting
            .iter()
            .all(|m| m.needs == booking::Needs::Attendance)
    );

    // Held, then lost with a reason: the prospect is lost, no client.
    let (_, m0) = &meetings[0];
    record(ctx, m0, Outcome::Held).await.unwrap();
    let blank = record(
        ctx,
        m0,
        Outcome::Lost {
            reason: "  ".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(blank.to_string().contains("needs a reason"), "{blank}");
    let lost = Outcome::Lost {
        reason: "price: over budget".into(),
    };
    let r = record(ctx, m0, lost).await.unwrap();
    assert_eq!(r.lost_reason.as_deref(), Some("price: over budget"));
    assert_eq!(prospect_status(ctx, &ids[0]).await, "lost");
    let out = start_onboarding(ctx, m0).await;
    assert_eq!(out["client_id"], serde_json::Value::Null);
    let err = won(ctx, m0, "starter").await.unwrap_err();
    assert!(
        err.to_string().contains("lost already; that is final"),
        "{err}"
    );

    // Calendly marks a no-show, takes it back, marks it again: each signed event counts.
    let app = http::router(ctx.clone());
    let (u1, m1) = &meetings[1];
    let t = after.timestamp();
    for (event, sent, state) in [
        ("invitee_no_show.created", t, "no_show"),
        ("invitee_no_show.deleted", t + 1, "scheduled"),
        ("invitee_no_show.created", t + 2, "no_show"),
    ] {
        assert_eq!(
            no_show(&app, event, u1, sent).await,
            StatusCode::ACCEPTED,
            "{event}"
        );
        drain(ctx).await;
        assert_eq!(
            meeting_state(ctx, m1).await,
            state,
            "after {event} at {sent}"
        );
    }
    // A retried delivery is the same event: queued once.
    assert_eq!(
        no_show(&app, "invitee_no_show.created", u1, t + 2).await,
        StatusCode::OK
    );
    let err = won(ctx, m1, "starter").await.unwrap_err();
    assert!(err.to_string().contains("record it held first"), "{err}");
    // A cancel after the fact changes nothing that happened.
    booking::handle(ctx, booking_job("invitee.canceled", u1, &ids[1], false))
        .await
        .unwrap();
    assert_eq!(meeting_state(ctx, m1).await, "no_show");

    // Won: the client starts on the tier sold. An unknown tier is refused naming them.
    let (_, m2) = &meetings[2];
    let err = won(ctx, m2, "platinum").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown tier `platinum`: the tiers are starter, professional, enterprise"),
        "{err}"
    );
    won(ctx, m2, "starter").await.unwrap();
    drain(ctx).await;
    assert_eq!(
        scalar(ctx, "SELECT COUNT(*) FROM clients").await,
        0,
        "an hour later"
    );
    ctx.clock.set(after + chrono::Duration::hours(2));
    drain(ctx).await;
    let (tier, prospect): (String, String) =
        sqlx::query_as("SELECT billing_tier, prospect_id FROM clients")
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
    assert_eq!(
        (tier.as_str(), prospect.as_str()),
        ("starter", ids[2].as_str())
    );

    // Held, nothing decided yet: the operator is asked for a decision.
    let (_, m3) = &meetings[3];
    record(ctx, m3, Outcome::Held).await.unwrap();
    let waiting = booking::to_review(ctx).await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].needs, booking::Needs::Decision);
    assert_eq!(waiting[0].suggested_tier.as_deref(), Some("professional"));

    // Show rate = held ÷ (held + no-show) = 3 ÷ 4; close rate = won ÷ held = 1 ÷ 3.
    let day = meeting_start().timestamp_millis();
    let o = feedback_loop::measure::meeting_outcomes(ctx, day - 24 * HOUR, day + 24 * HOUR)
        .await
        .unwrap();
    assert_eq!(o.show_rate(), (Some(0.75), 4));
    assert_eq!(o.close_rate(), (Some(1.0 / 3.0), 3));
    if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
        r.purge().await.unwrap();
    }
}

async fn meeting_state(ctx: &Ctx, id: &str) -> String {
    sqlx::query_as::<_, (String,)>("SELECT status FROM meetings WHERE id = $1")
        .bind(id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap()
        .0
}

/// A booking whose Calendly tracking is `tracking`, from `email`.
fn booking_with(uri: &str, email: &str, tracking: serde_json::Value) -> BookingJob {
    let body = serde_json::json!({
        "event": "invitee.created",
        "payload": {
            "uri": uri, "email": email, "name": "Pat Owner",
            "tracking": tracking,
            "scheduled_event": {"name": "Discovery", "start_time": "2026-01-09T16:00:00.000000Z"}
        }
    });
    let w: booking::Webhook = serde_json::from_value(body).unwrap();
    w.into_job().unwrap()
}

async fn prospect_status(ctx: &Ctx, id: &str) -> String {
    sqlx::query_as::<_, (String,)>("SELECT status FROM prospects WHERE id = $1")
        .bind(id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_booking_whose_tracking_does_not_verify_changes_no_prospect_until_the_operator_links_it()
{
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let ids = pitched(ctx, 2).await;
    for id in &ids {
        send_step(ctx, id, 0).await.unwrap();
    }
    let (victim, other) = (&ids[0], &ids[1]);
    // Anyone can book through the public page and write any tracking: another
    // prospect's id unsigned, signed with another key, or with another pitch's signature.
    let forged = [
        serde_json::json!({"utm_source": "cep", "utm_campaign": victim, "utm_content": "p"}),
        serde_json::json!({"utm_campaign": victim, "utm_content": "p",
            "utm_term": outreach::booking_signature("guessed-key", victim, "p")}),
        serde_json::json!({"utm_campaign": victim, "utm_content": "q",
            "utm_term": outreach::booking_signature(BOOKING_TEST_KEY, victim, "p")}),
    ];
    let mut meetings = Vec::new();
    for (n, tracking) in forged.into_iter().enumerate() {
        let b = booking::handle(
            ctx,
            booking_with(&format!("u{n}"), "mallory@evil.example", tracking),
        )
        .await
        .unwrap();
        assert_eq!(b.prospect_id, None, "forgery {n} was credited");
        assert_eq!(b.attributed_by, None);
        meetings.push(b.meeting_id);
    }
    assert_eq!(prospect_status(ctx, victim).await, "contacted");
    assert_eq!(
        send_step(ctx, victim, 1).await.unwrap().status,
        MessageStatus::Recorded,
        "its outreach goes on"
    );
    // No client with the stranger's address: a win needs the prospect linked first.
    ctx.clock.set(meeting_start() + chrono::Duration::hours(1));
    let err = won(ctx, &meetings[0], "starter").await.unwrap_err();
    assert!(
        err.to_string().contains("not linked to a prospect"),
        "{err}"
    );
    assert_eq!(scalar(ctx, "SELECT COUNT(*) FROM clients").await, 0);
    let waiting = booking::to_review(ctx).await.unwrap();
    assert_eq!(waiting.len(), 3);
    assert!(waiting.iter().all(|m| m.prospect_id.is_none()));

    // The link the prospect was sent is credited to it.
    assert_eq!(booking::to_review(ctx).await.unwrap().len(), 3);
    let b = booking::handle(
        ctx,
        booking_with(
            "u9",
            "owner@example.com",
            signed_tracking(other, "pitch-link"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(b.prospect_id.as_deref(), Some(other.as_str()));
    assert_eq!(b.attributed_by, Some(AttributedBy::Link));
    assert_eq!(prospect_status(ctx, other).await, "booked");

    // The operator links one: its prospect is booked; won, it becomes a client.
    let linked = booking::link(ctx, &meetings[0], victim).await.unwrap();
    assert_eq!(linked.state, MeetingState::Scheduled);
    assert_eq!(prospect_status(ctx, victim).await, "booked");
    let needs: Vec<booking::Needs> = booking::to_review(ctx)
        .await
        .unwrap()
        .iter()
        .map(|m| m.needs)
        .collect();
    use booking::Needs::{Attendance, Link};
    assert_eq!(needs, [Attendance, Link, Link, Attendance], "oldest first");
    won(ctx, &meetings[0], "starter").await.unwrap();
    let out = start_onboarding(ctx, &meetings[0]).await;
    assert!(out["client_id"].is_string(), "{out}");
    // Linking to nobody real is refused naming it.
    let err = booking::link(ctx, &meetings[1], "nobody")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no prospect `nobody`"), "{err}");
}

#[tokio::test]
async fn a_reschedule_keeps_the_conversion_and_a_cancel_reverses_it() {
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let ids = pitched(ctx, 1).await;
    let booked = |n: &str| booking_job("invitee.created", n, &ids[0], false);
    booking::handle(ctx, booked("u1")).await.unwrap();
    booking::handle(ctx, booking_job("invitee.canceled", "u1", &ids[0], true))
        .await
        .unwrap();
    booking::handle(ctx, booked("u2")).await.unwrap();
    let net = |ctx: &Ctx| {
        let ctx = ctx.clone();
        async move {
            scalar(&ctx, "SELECT COUNT(*) FROM events WHERE kind = 'booked'").await
                - scalar(&ctx, "SELECT COUNT(*) FROM events WHERE kind = 'canceled'").await
        }
    };
    assert_eq!(net(ctx).await, 1);
    let (status,): (String,) = sqlx::query_as("SELECT status FROM prospects WHERE id = $1")
        .bind(&ids[0])
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(status, "booked");
    booking::handle(ctx, booking_job("invitee.canceled", "u2", &ids[0], false))
        .await
        .unwrap();
    assert_eq!(net(ctx).await, 0);
}
