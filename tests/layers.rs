//! Layers 3–9 against a real store and queue: outreach caps, windows, headers,
//! suppression and at-most-once; the signed Calendly webhook; onboarding, finance and
//! the feedback loop's reversible parameters.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cep_shared::clock::HOUR;
use cep_shared::vocabulary::MessageStatus;
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::layers::{finance, outreach, params};
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
    assert!(html.contains("<form method=\"post\">"), "{html}");
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
    won_client(ctx, &ids[0], "u1", "professional").await;
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
    // Φ_sync computed on 30 March with finance short of its sample.
    let mar_30 = chrono::Utc
        .with_ymd_and_hms(2026, 3, 30, 23, 30, 0)
        .unwrap();
    sqlx::query(
        "INSERT INTO coherence_metrics (id, computed_at, phi_sync, status, sales_health, operations_health, finance_health, details)
         VALUES ('c1', $1, 0.712, 'factory', 0.7, 0.724, NULL, '{}')",
    )
    .bind(mar_30.timestamp_millis())
    .execute(ctx.store.pool())
    .await
    .unwrap();
    // February's close on 1 March, March's on 1 April: March is compared with
    // February's report, not with nothing.
    let feb = report("2026-02", on(3)).await.unwrap();
    let mar = report("2026-03", on(4)).await.unwrap();
    let agency = |r: &serde_json::Value| r["reports"][0].clone();
    let (f, m) = (agency(&feb), agency(&mar));
    // The agency's report says how Φ_sync stood, partial where it was.
    assert_eq!(
        f["coherence"],
        "no data: Φ_sync was not computed in this period"
    );
    assert_eq!(
        m["coherence"],
        "0.712 (partial: finance no data), status factory, on 2026-03-30"
    );
    let html = std::fs::read_to_string(m["path"].as_str().unwrap()).unwrap();
    assert!(
        html.contains("Φ_sync: 0.712 (partial: finance no data)"),
        "{html}"
    );
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
async fn cac_is_the_months_configured_tools_and_metered_calls_over_the_clients_won_to_the_last_instant()
 {
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
    won_client(ctx, &ids[0], "u1", "starter").await;
    // One call at January's last instant, one at February's first.
    let feb_1 = chrono::Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    for at in [feb_1 - chrono::Duration::milliseconds(1), feb_1] {
        ctx.clock.set(at);
        cep_workers::clients::provider::take_budget(ctx, Provider::Places, "")
            .await
            .unwrap();
    }
    ctx.clock
        .set(chrono::Utc.with_ymd_and_hms(2026, 2, 1, 4, 0, 0).unwrap());
    let jan = close(ctx, "2026-01").await.unwrap();
    // (6,000 + 9,900 + 4 × 4) ÷ 1 client.
    assert_eq!(jan["metrics"]["new_clients"], 1);
    assert_eq!(jan["metrics"]["cac_cents"], 15_916);
    let r = &ctx.settings.layers.finance;
    assert_eq!(
        jan["metrics"]["costs_cents"],
        15_916 + r.software_cost_cents + r.support_cost_cents,
        "acquisition spend is part of the month's costs"
    );
    // February: the tools again, no call and no client won: CAC unknown, not 0.
    ctx.clock
        .set(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 4, 0, 0).unwrap());
    let feb = close(ctx, "2026-02").await.unwrap();
    assert_eq!(feb["metrics"]["cac_cents"], serde_json::Value::Null);
    assert_eq!(
        feb["metrics"]["costs_cents"],
        6_000 + 9_900 + 4 + r.software_cost_cents + r.support_cost_cents,
        "February's first instant counts in February"
    );
}
