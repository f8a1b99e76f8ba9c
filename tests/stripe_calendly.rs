//! Stripe and Calendly against local fakes: invoices mirrored once with idempotency
//! keys, signed payment events, and the webhook subscription kept alive.

use crate::helpers::*;
use cep_shared::{Clock, Secrets};
use chrono::TimeZone;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn noon() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

#[tokio::test]
async fn finance_mirrors_each_invoice_to_stripe_once_with_idempotency_keys() {
    let server = MockServer::start().await;
    for (p, id) in [
        ("/v1/customers", "cus_1"),
        ("/v1/invoices", "in_1"),
        ("/v1/invoiceitems", "ii_1"),
        ("/v1/invoices/in_1/finalize", "in_1"),
    ] {
        Mock::given(method("POST"))
            .and(path(p))
            .and(header("authorization", "Bearer sk_test_cep"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": id})))
            .mount(&server)
            .await;
    }
    let mut s = settings();
    s.providers.stripe.create_invoices = true;
    s.providers.stripe.api_url = server.uri();
    let secrets = Secrets {
        stripe_api_key: Some("sk_test_cep".into()),
        ..Default::default()
    };
    let h = harness_with(Backend::Embedded, s, secrets, Clock::simulated(noon())).await;
    a_client(&h.ctx).await;
    let job = cep_shared::jobs::FinanceJob {
        period: "2026-03".into(),
    };
    cep_workers::layers::finance::handle(&h.ctx, job.clone())
        .await
        .unwrap();

    let sent = server.received_requests().await.unwrap();
    let keys: Vec<String> = sent
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        keys.len(),
        6,
        "customer, invoice, 3 items, finalize: {keys:?}"
    );
    assert!(keys[0].starts_with("cep-customer-client_1"));
    let items: Vec<String> = sent
        .iter()
        .filter(|r| r.url.path() == "/v1/invoiceitems")
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    // Starter: 500.00 a month, 1,000.00 setup, 8 % tax on 1,500.00.
    for amount in ["amount=50000", "amount=100000", "amount=12000"] {
        assert!(
            items
                .iter()
                .any(|b| b.contains(amount) && b.contains("invoice=in_1")),
            "{items:?}"
        );
    }
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM invoices WHERE stripe_invoice_id = 'in_1'"
        )
        .await,
        1
    );

    // A rerun of the period pushes nothing again.
    cep_workers::layers::finance::handle(&h.ctx, job)
        .await
        .unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
}

#[tokio::test]
async fn a_signed_stripe_event_records_the_payment_once_and_a_bad_one_changes_nothing() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;
    let secrets = Secrets {
        stripe_webhook_secret: Some("whsec_test".into()),
        ..Default::default()
    };
    let h = harness_with(
        Backend::Embedded,
        settings(),
        secrets,
        Clock::simulated(noon()),
    )
    .await;
    a_client(&h.ctx).await;
    let period = cep_shared::jobs::FinanceJob {
        period: "2026-03".into(),
    };
    let inv = cep_workers::layers::finance::handle(&h.ctx, period)
        .await
        .unwrap()
        .invoices
        .remove(0);
    let body = serde_json::to_vec(&serde_json::json!({
        "id": "evt_1", "type": "invoice.paid", "created": noon().timestamp(),
        "data": {"object": {"id": "in_9", "object": "invoice", "status": "paid",
                            "metadata": {"cep_invoice_id": inv.id},
                            "status_transitions": {"paid_at": noon().timestamp()}}}
    }))
    .unwrap();
    let app = cep_workers::http::router(h.ctx.clone());
    let post = |sig: String| {
        Request::post("/webhooks/stripe")
            .header("Stripe-Signature", sig)
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let now = noon().timestamp();
    let sign = cep_workers::clients::signature::sign;
    for bad in [
        sign("whsec_other", now, &body),
        sign("whsec_test", now - 301, &body),
    ] {
        let r = app.clone().oneshot(post(bad)).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // Signed, but paid at a time no payment was made: refused, not stored overflowed.
    for paid_at in [i64::MAX, i64::MIN, -1] {
        let odd = serde_json::to_vec(&serde_json::json!({
            "id": "evt_odd", "type": "invoice.paid", "created": paid_at,
            "data": {"object": {"id": "in_9", "object": "invoice", "status": "paid",
                                "metadata": {"cep_invoice_id": inv.id},
                                "status_transitions": {"paid_at": paid_at}}}
        }))
        .unwrap();
        let r = app
            .clone()
            .oneshot(
                Request::post("/webhooks/stripe")
                    .header("Stripe-Signature", sign("whsec_test", now, &odd))
                    .body(Body::from(odd))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "paid_at {paid_at}");
    }
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM invoices WHERE paid_at IS NOT NULL"
        )
        .await,
        0
    );
    for _ in 0..2 {
        let r = app
            .clone()
            .oneshot(post(sign("whsec_test", now, &body)))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM invoices WHERE paid_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM transactions WHERE kind = 'revenue'"
        )
        .await,
        1,
        "Stripe's redelivery records the payment once"
    );
}

#[tokio::test]
async fn the_calendly_subscription_is_created_kept_and_recreated_once_disabled() {
    let server = MockServer::start().await;
    let org = "https://api.calendly.com/organizations/ORG1";
    Mock::given(method("GET"))
        .and(path("/users/me"))
        .and(header("authorization", "Bearer cal-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "resource": {"uri": "https://api.calendly.com/users/U1", "current_organization": org}
        })))
        .mount(&server)
        .await;
    let listing = |state: Option<&str>| {
        let collection = match state {
            Some(state) => serde_json::json!([
                {"uri": "https://api.calendly.com/webhook_subscriptions/OTHER", "callback_url": "https://elsewhere.example/hook", "state": "active"},
                {"uri": format!("{}/webhook_subscriptions/W1", server.uri()), "callback_url": "http://127.0.0.1:8080/webhooks/calendly", "state": state}
            ]),
            None => serde_json::json!([]),
        };
        ResponseTemplate::new(200).set_body_json(serde_json::json!({"collection": collection}))
    };
    let created = ResponseTemplate::new(201).set_body_json(serde_json::json!({"resource": {
        "uri": "https://api.calendly.com/webhook_subscriptions/W2",
        "callback_url": "http://127.0.0.1:8080/webhooks/calendly", "state": "active"}}));
    Mock::given(method("POST"))
        .and(path("/webhook_subscriptions"))
        .and(body_partial_json(serde_json::json!({
            "url": "http://127.0.0.1:8080/webhooks/calendly", "organization": org,
            "scope": "organization", "signing_key": "signing-key",
            "events": ["invitee.created", "invitee.canceled"]
        })))
        .respond_with(created)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/webhook_subscriptions/W1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut s = settings();
    s.providers.calendly.api_url = server.uri();
    let secrets = Secrets {
        calendly_api_token: Some("cal-token".into()),
        calendly_signing_key: Some("signing-key".into()),
        ..Default::default()
    };
    let h = harness_with(Backend::Embedded, s, secrets, Clock::simulated(noon())).await;
    use cep_workers::layers::booking::calendly_api::ensure_subscription;
    for (state, action) in [
        (None, "created"),
        (Some("active"), "kept"),
        (Some("disabled"), "recreated"),
    ] {
        let list = Mock::given(method("GET"))
            .and(path("/webhook_subscriptions"))
            .respond_with(listing(state))
            .mount_as_scoped(&server)
            .await;
        let done = ensure_subscription(&h.ctx).await.unwrap();
        assert_eq!(done.action, action);
        drop(list);
    }
    let listed = server.received_requests().await.unwrap();
    let query = listed
        .iter()
        .find(|r| r.url.path() == "/webhook_subscriptions" && r.method.as_str() == "GET")
        .unwrap();
    assert!(
        query.url.query().unwrap().contains("scope=organization"),
        "{}",
        query.url
    );
}
