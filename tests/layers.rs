//! Layers 3–9 against a real store and queue: outreach caps, windows, headers,
//! suppression and at-most-once; the signed Calendly webhook; onboarding, finance and
//! the feedback loop's reversible parameters.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cep_shared::clock::HOUR;
use cep_shared::jobs::{BookingJob, OnboardingJob};
use cep_shared::vocabulary::{AttributedBy, MessageStatus};
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::clients::signature;
use cep_workers::layers::{booking, finance, onboarding, outreach, params};
use cep_workers::{Ctx, JobError, http};
use chrono::TimeZone;
use tower::ServiceExt;

/// Wednesday 2026-01-07 15:00 UTC: 10:00 in Miami, inside the send window.
#[tokio::test]
async fn an_email_is_recorded_whole_with_one_click_unsubscribe_and_the_next_step_chained() {
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ids = pitched(&h.ctx, 1).await;
    let r = send_step(&h.ctx, &ids[0], 0).await.unwrap();
    assert_eq!(r.status, MessageStatus::Recorded);
    assert_eq!(
        r.next_step_at,
        Some(in_window().timestamp_millis() + 24 * HOUR)
    );
    let (headers, body): (String, String) =
        sqlx::query_as("SELECT headers, body FROM messages WHERE id = $1")
            .bind(&r.message_id)
            .fetch_one(h.ctx.store.pool())
            .await
            .unwrap();
    let headers: Vec<(String, String)> = serde_json::from_str(&headers).unwrap();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
    };
    assert_eq!(get("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    assert!(get("List-Unsubscribe").starts_with("<http://127.0.0.1:8080/unsubscribe/"));
    assert!(get("Message-ID").ends_with("@agency.example>"));
    assert!(body.contains(&h.ctx.settings.layers.outreach.postal_address));
    assert!(body.contains("utm_campaign="), "the booking link is tagged");
    // The LinkedIn step waits a day from the first send (step 0 itself, chained by
    // pitch generation, is still in the queue: this test called the handler directly).
    let stats = h.ctx.queue.stats(&["outreach"]).await.unwrap();
    assert_eq!((stats[0].ready, stats[0].scheduled), (1, 1));
}

#[tokio::test]
async fn outside_the_send_window_a_step_waits_for_the_prospects_morning() {
    // 10:00 UTC is 05:00 in Miami.
    let early = chrono::Utc.with_ymd_and_hms(2026, 1, 7, 10, 0, 0).unwrap();
    let h = harness(Backend::Embedded, settings(), Clock::simulated(early)).await;
    let ids = pitched(&h.ctx, 1).await;
    match send_step(&h.ctx, &ids[0], 0).await {
        Err(JobError::Deferred { until, reason }) => {
            assert_eq!(
                until,
                in_window().timestamp_millis() - 2 * HOUR,
                "08:00 in Miami"
            );
            assert!(reason.contains("send window"), "{reason}");
        }
        other => panic!("expected a deferral, got {other:?}"),
    }
    assert_eq!(
        scalar(&h.ctx, "SELECT COUNT(*) FROM send_counters").await,
        0
    );
}

#[tokio::test]
async fn the_daily_cap_holds_across_backends_and_defers_to_the_next_day() {
    for backend in [Backend::Embedded, Backend::Fleet] {
        let mut s = settings();
        s.layers.outreach.daily_caps.email = 2;
        let h = harness(backend, s, Clock::simulated(in_window())).await;
        let ids = pitched(&h.ctx, 3).await;
        let mut recorded = 0;
        let mut deferred = 0;
        for id in &ids {
            match send_step(&h.ctx, id, 0).await {
                Ok(r) if r.status == MessageStatus::Recorded => recorded += 1,
                Err(JobError::Deferred { until, reason }) => {
                    assert!(reason.contains("daily email cap of 2"), "{reason}");
                    let midnight = chrono::Utc.with_ymd_and_hms(2026, 1, 8, 0, 0, 0).unwrap();
                    assert_eq!(until, midnight.timestamp_millis());
                    deferred += 1;
                }
                other => panic!("{backend:?}: {other:?}"),
            }
        }
        assert_eq!((recorded, deferred), (2, 1), "{backend:?}");
        if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
            r.purge().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_message_is_never_sent_twice_and_a_send_cut_short_is_flagged_not_resent() {
    let h = harness(Backend::Fleet, settings(), Clock::simulated(in_window())).await;
    let ids = pitched(&h.ctx, 2).await;
    // Delivered twice (a retry after a lost ack): one message, one delivery.
    let first = send_step(&h.ctx, &ids[0], 0).await.unwrap();
    let again = send_step(&h.ctx, &ids[0], 0).await.unwrap();
    assert_eq!(again.status, MessageStatus::Recorded);
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM events WHERE kind = 'delivered'"
        )
        .await,
        1
    );
    // A worker claimed the second message and died before recording the outcome.
    let second = send_step(&h.ctx, &ids[1], 0).await.unwrap();
    sqlx::query("UPDATE messages SET status = 'sending' WHERE id = $1")
        .bind(&second.message_id)
        .execute(h.ctx.store.pool())
        .await
        .unwrap();
    let redelivered = send_step(&h.ctx, &ids[1], 0).await.unwrap();
    assert_eq!(redelivered.status, MessageStatus::Unknown);
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM events WHERE kind = 'send_unknown'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM events WHERE kind = 'delivered'"
        )
        .await,
        2,
        "the unknown send was not repeated"
    );
    if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn one_click_unsubscribe_suppresses_the_address_and_stops_the_sequence() {
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ctx = with_keys(&h.ctx);
    let ids = pitched(&ctx, 1).await;
    let r = send_step(&ctx, &ids[0], 0).await.unwrap();
    let app = http::router(ctx.clone());
    let post = |uri: String| {
        Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("List-Unsubscribe=One-Click"))
            .unwrap()
    };
    let forged = app
        .clone()
        .oneshot(post(format!("/unsubscribe/{}?token=00ff", r.message_id)))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // A GET shows a button and unsubscribes nobody.
    let token = outreach::unsubscribe_token(ctx.secrets.unsubscribe_key.as_deref(), &r.message_id);
    let page = app
        .clone()
        .oneshot(
            Request::get(format!("/unsubscribe/{}?token={token}", r.message_id))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = axum::body::to_bytes(page.into_body(), 1 << 20)
        .await
        .unwrap();
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains("<form method=post>"), "{html}");
    assert!(
        !html.contains(&token),
        "the page echoes nothing from the request: {html}"
    );
    assert_eq!(scalar(&ctx, "SELECT COUNT(*) FROM suppressions").await, 0);
    let ok = app
        .oneshot(post(format!("/unsubscribe/{}?token={token}", r.message_id)))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(scalar(&ctx, "SELECT COUNT(*) FROM suppressions").await, 1);
    let next = send_step(&ctx, &ids[0], 1).await.unwrap();
    assert_eq!(next.status, MessageStatus::Skipped);
    assert!(next.reason.unwrap().contains("stopped"));
}

fn calendly_body(event: &str, uri: &str, prospect: &str, rescheduled: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event": event,
        "payload": {
            "uri": uri, "email": "owner@example.com", "name": "Pat Owner",
            "rescheduled": rescheduled,
            "questions_and_answers": [{"question": "Topic", "answer": "a demo", "position": 0}],
            "tracking": signed_tracking(prospect, "pitch-link"),
            "scheduled_event": {"name": "Discovery", "start_time": "2026-01-09T16:00:00.000000Z"}
        }
    }))
    .unwrap()
}

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

/// Runs the onboarding job a booking chains, through the dispatcher.
async fn start_onboarding(ctx: &Ctx, meeting_id: &str) -> serde_json::Value {
    let job = OnboardingJob::Start {
        meeting_id: meeting_id.into(),
    };
    cep_workers::handle(
        ctx,
        JobKind::Layer(Layer::Onboarding),
        &serde_json::to_string(&job).unwrap(),
    )
    .await
    .unwrap()
}

fn booking_job(action: &str, uri: &str, prospect: &str, rescheduled: bool) -> BookingJob {
    let w: booking::Webhook =
        serde_json::from_slice(&calendly_body(action, uri, prospect, rescheduled)).unwrap();
    w.into_job().unwrap()
}

#[tokio::test]
async fn a_booking_stops_outreach_chains_onboarding_and_a_client_goes_live_task_by_task() {
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
    // The meeting starts 2026-01-09 16:00; onboarding an hour later.
    let start = chrono::Utc.with_ymd_and_hms(2026, 1, 9, 17, 0, 0).unwrap();
    assert_eq!(b.onboarding_at, Some(start.timestamp_millis()));
    // The sequence stopped.
    let step = send_step(ctx, &ids[0], 1).await.unwrap();
    assert_eq!(step.status, MessageStatus::Skipped);

    ctx.clock.set(start);
    let out = start_onboarding(ctx, &b.meeting_id).await;
    assert_eq!(out["state"], "documents requested");
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
    // A second delivery of the start job creates nothing new.
    let again = start_onboarding(ctx, &b.meeting_id).await;
    assert_eq!(again["reason"], "already onboarding");
    assert_eq!(scalar(ctx, "SELECT COUNT(*) FROM tasks").await, 6);
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
    // Onboarding waits for the operator: no client with the stranger's address.
    let out = start_onboarding(ctx, &meetings[0]).await;
    assert_eq!(out["client_id"], serde_json::Value::Null);
    assert!(
        out["reason"].as_str().unwrap().contains("not linked"),
        "{out}"
    );
    assert_eq!(scalar(ctx, "SELECT COUNT(*) FROM clients").await, 0);
    let waiting = booking::to_review(ctx).await.unwrap();
    assert_eq!(waiting.len(), 3);
    assert!(waiting.iter().all(|m| m.prospect_id.is_none()));

    // The link the prospect was sent is credited to it.
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

    // The operator links one: its prospect is booked and onboarding starts.
    let linked = booking::link(ctx, &meetings[0], victim).await.unwrap();
    assert!(linked.onboarding_at.is_some());
    assert_eq!(prospect_status(ctx, victim).await, "booked");
    assert_eq!(booking::to_review(ctx).await.unwrap().len(), 2);
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

/// The finance close of `period`, through the dispatcher.
async fn close(ctx: &Ctx, period: &str) -> Result<serde_json::Value, JobError> {
    let job = serde_json::json!({ "period": period }).to_string();
    cep_workers::handle(ctx, JobKind::Layer(Layer::Finance), &job).await
}

#[tokio::test]
async fn invoices_bill_setup_once_in_cents_and_payments_become_revenue() {
    let h = harness(Backend::Fleet, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let ids = pitched(ctx, 1).await;
    let b = booking::handle(ctx, booking_job("invitee.created", "u1", &ids[0], false))
        .await
        .unwrap();
    start_onboarding(ctx, &b.meeting_id).await;
    let (tier,): (String,) = sqlx::query_as("SELECT billing_tier FROM clients")
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    let t = ctx.settings.layers.finance.tier(&tier).unwrap().clone();
    ctx.clock
        .set(chrono::Utc.with_ymd_and_hms(2026, 2, 1, 4, 0, 0).unwrap());
    let run = |period: &'static str| async move { close(ctx, period).await.unwrap() };
    // The close of January, on 1 February.
    let jan = run("2026-01").await;
    let inv = &jan["invoices"][0];
    let subtotal = t.monthly_cents + t.setup_cents;
    assert_eq!(inv["subtotal_cents"], subtotal);
    assert_eq!(inv["tax_cents"], subtotal * 8 / 100);
    // January's running costs count in January's close; no acquisition cost is
    // configured, so none is invented and CAC is unknown.
    let r = &ctx.settings.layers.finance;
    assert_eq!(
        jan["metrics"]["costs_cents"],
        r.software_cost_cents + r.support_cost_cents
    );
    assert_eq!(jan["metrics"]["cac_cents"], serde_json::Value::Null);
    // Rerun of the same month: nothing new. Next month: no setup fee.
    assert!(
        run("2026-01").await["invoices"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    ctx.clock
        .set(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 4, 0, 0).unwrap());
    let feb = run("2026-02").await;
    assert_eq!(feb["invoices"][0]["subtotal_cents"], t.monthly_cents);
    assert_eq!(feb["metrics"]["mrr_cents"], t.monthly_cents);
    // A month that has not begun is refused, naming it.
    let err = close(ctx, "2026-04").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("`2026-04` is after the current one"),
        "{err}"
    );
    let id = inv["id"].as_str().unwrap();
    assert!(
        finance::record_payment(ctx, id, ctx.now() + HOUR)
            .await
            .unwrap()
    );
    assert!(
        !finance::record_payment(ctx, id, ctx.now() + 2 * HOUR)
            .await
            .unwrap()
    );
    let (revenue,): (i64,) = sqlx::query_as(
        "SELECT CAST(SUM(amount_cents) AS BIGINT) FROM transactions WHERE kind = 'revenue'",
    )
    .fetch_one(ctx.store.pool())
    .await
    .unwrap();
    assert_eq!(revenue, subtotal, "revenue excludes the tax, counted once");
    // Finance chained the feedback loop.
    let stats = ctx.queue.stats(&["feedback_loop"]).await.unwrap();
    assert_eq!(stats[0].scheduled + stats[0].ready, 2);
    if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn parameter_changes_are_recorded_and_roll_back() {
    let h = harness(Backend::Fleet, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let w1: std::collections::BTreeMap<String, f64> =
        [("a".into(), 0.75), ("b".into(), 1.5)].into();
    let first = params::set(
        ctx,
        params::PITCH_VARIANT_WEIGHTS,
        &w1,
        "b replies more",
        "2026-02:response_rate",
    )
    .await
    .unwrap()
    .unwrap();
    // The same decision again is a no-op.
    assert!(
        params::set(
            ctx,
            params::PITCH_VARIANT_WEIGHTS,
            &w1,
            "again",
            "2026-02:response_rate"
        )
        .await
        .unwrap()
        .is_none()
    );
    let w2: std::collections::BTreeMap<String, f64> = [("a".into(), 0.5), ("b".into(), 2.0)].into();
    let second = params::set(
        ctx,
        params::PITCH_VARIANT_WEIGHTS,
        &w2,
        "still",
        "2026-03:response_rate",
    )
    .await
    .unwrap()
    .unwrap();
    let err = params::rollback(ctx, &first).await.unwrap_err();
    assert!(
        err.to_string().contains("roll back the later change first"),
        "{err}"
    );
    params::rollback(ctx, &second).await.unwrap();
    let now: std::collections::BTreeMap<String, f64> =
        params::get(ctx, params::PITCH_VARIANT_WEIGHTS)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(now, w1);
    params::rollback(ctx, &first).await.unwrap();
    let none: Option<std::collections::BTreeMap<String, f64>> =
        params::get(ctx, params::PITCH_VARIANT_WEIGHTS)
            .await
            .unwrap();
    assert!(none.is_none(), "back to the configured default");
}

#[tokio::test]
async fn a_months_report_covers_its_calendar_month_and_compares_with_the_month_before() {
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    a_client(ctx).await;
    let report = |period: &'static str, at: chrono::DateTime<chrono::Utc>| {
        let ctx = ctx.clone();
        async move {
            ctx.clock.set(at);
            cep_workers::handle(
                &ctx,
                JobKind::Layer(Layer::Reporting),
                &serde_json::json!({ "period": period }).to_string(),
            )
            .await
        }
    };
    let on = |m: u32| chrono::Utc.with_ymd_and_hms(2026, m, 1, 4, 0, 0).unwrap();
    // February's close on 1 March, March's on 1 April: March is compared with
    // February's report, not with nothing.
    let feb = report("2026-02", on(3)).await.unwrap();
    let mar = report("2026-03", on(4)).await.unwrap();
    let agency = |r: &serde_json::Value| r["reports"][0].clone();
    let (f, m) = (agency(&feb), agency(&mar));
    let span = |r: &serde_json::Value| (r["period_start"].as_i64(), r["period_end"].as_i64());
    let millis = |mo: u32| Some(on(mo).timestamp_millis() - 4 * HOUR);
    assert_eq!(span(&f), (millis(2), millis(3)), "February, 28 days");
    assert_eq!(span(&m), (millis(3), millis(4)), "March, 31 days");
    let metrics = m["metrics"].as_array().unwrap();
    assert!(!metrics.is_empty());
    for metric in metrics {
        let before = f["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == metric["name"]);
        if let Some(before) = before {
            assert_eq!(metric["previous"], before["value"], "{metric}");
        }
    }
    assert!(
        metrics.iter().any(|x| !x["previous"].is_null()),
        "March's report found February's"
    );
    // A month that has not begun is refused, naming it.
    let err = report("2026-05", on(4)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("`2026-05` is after the current one"),
        "{err}"
    );
}

#[tokio::test]
async fn cac_is_the_months_configured_tools_and_metered_calls_over_the_clients_won() {
    use cep_shared::config::Provider;
    let mut s = settings();
    let ac = &mut s.layers.finance.acquisition_costs;
    ac.monthly.insert("mailboxes".into(), 6_000);
    ac.monthly.insert("data".into(), 9_900);
    ac.per_call.places = 4;
    let h = harness(Backend::Embedded, s, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    // Three paid lookups in January, each recorded as it is made.
    for _ in 0..3 {
        cep_workers::clients::provider::take_budget(ctx, Provider::Places, "")
            .await
            .unwrap();
    }
    // One client won in January.
    let ids = pitched(ctx, 1).await;
    let b = booking::handle(ctx, booking_job("invitee.created", "u1", &ids[0], false))
        .await
        .unwrap();
    start_onboarding(ctx, &b.meeting_id).await;
    ctx.clock
        .set(chrono::Utc.with_ymd_and_hms(2026, 2, 1, 4, 0, 0).unwrap());
    let jan = close(ctx, "2026-01").await.unwrap();
    // (6,000 + 9,900 + 3 × 4) ÷ 1 client.
    assert_eq!(jan["metrics"]["new_clients"], 1);
    assert_eq!(jan["metrics"]["cac_cents"], 15_912);
    let r = &ctx.settings.layers.finance;
    assert_eq!(
        jan["metrics"]["costs_cents"],
        15_912 + r.software_cost_cents + r.support_cost_cents,
        "acquisition spend is part of the month's costs"
    );
    // February: the tools again, no call and no client won: CAC unknown, not 0.
    ctx.clock
        .set(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 4, 0, 0).unwrap());
    let feb = close(ctx, "2026-02").await.unwrap();
    assert_eq!(feb["metrics"]["cac_cents"], serde_json::Value::Null);
}
