//! The testing engine in Debian's headless Chromium against pages served on localhost:
//! what a phone sees, checked against the business, with a screenshot.

use crate::helpers::*;
use axum::response::Html;
use axum::routing::get;
use cep_shared::Clock;
use cep_workers::engines::audit::{self, Expect};

const GOOD: &str = r#"<!doctype html><html><head>
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Oak Dental</title>
<script type="application/ld+json">{"@context":"https://schema.org","@graph":[{"@type":"WebSite"},{"@type":"Dentist","name":"Oak Dental","telephone":"+1 305-555-0100"}]}</script>
</head><body><h1>Oak Dental</h1><p>Family dentistry in Miami, FL. Call (305) 555-0100.</p></body></html>"#;

const BARE: &str = r#"<!doctype html><html><head><title>Welcome</title></head>
<body><p>Site under construction.</p></body></html>"#;

async fn site() -> String {
    let app = axum::Router::new()
        .route("/", get(|| async { Html(GOOD) }))
        .route("/bare", get(|| async { Html(BARE) }));
    format!("http://127.0.0.1:{}", serve_locally(app).await)
}

#[tokio::test]
async fn a_complete_site_passes_and_a_bare_one_fails_with_each_reason() {
    let base = site().await;
    let h = harness(Backend::Embedded, settings(), Clock::System).await;
    let ctx = &h.ctx;
    let shots = TempDir::new();
    let expect = Expect {
        name: "Oak Dental",
        phone: Some("+13055550100"),
        city: Some("Miami"),
    };

    let good = audit::website(ctx, &format!("{base}/"), &expect, &shots.0)
        .await
        .unwrap();
    assert_eq!(good.outcome, "passed", "{:?}", good.problems);
    assert!(good.signal.loads && good.signal.name_phone_city_match);
    assert!(good.signal.local_business_data && good.signal.mobile_viewport);
    assert!(good.structured_types.contains(&"Dentist".to_string()));
    let png = std::fs::read(good.screenshot.as_ref().unwrap()).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a real PNG screenshot");

    let bare = audit::website(ctx, &format!("{base}/bare"), &expect, &shots.0)
        .await
        .unwrap();
    assert_eq!(bare.outcome, "failed");
    for why in [
        "the business's name is not on the page",
        "the profile's phone number is not on the page",
        "no schema.org LocalBusiness structured data",
        "no mobile viewport",
    ] {
        assert!(
            bare.problems.iter().any(|p| p.contains(why)),
            "{why}: {:?}",
            bare.problems
        );
    }

    let gone = audit::website(ctx, "http://127.0.0.1:9/", &expect, &shots.0)
        .await
        .unwrap();
    assert_eq!(gone.outcome, "failed");
    assert!(!gone.signal.loads);
    assert!(
        gone.problems[0].contains("does not load"),
        "{:?}",
        gone.problems
    );
}

#[tokio::test]
async fn a_prospects_audit_lands_in_test_results_and_its_website_signal() {
    let base = site().await;
    let dir = TempDir::new();
    let mut s = settings();
    s.data_dir = dir.0.clone();
    let h = harness(Backend::Fleet, s, Clock::System).await;
    let ctx = &h.ctx;
    let id = leads(ctx, 1).await.remove(0);
    sqlx::query("UPDATE prospects SET website = $2 WHERE id = $1")
        .bind(&id)
        .bind(format!("{base}/bare"))
        .execute(ctx.store.pool())
        .await
        .unwrap();

    // The design record in force when the audit runs is the one it is linked to.
    let now = chrono::Utc::now();
    let design = cep::tools::architecture::check(&ctx.settings, &ctx.secrets, None, now);
    cep::tools::architecture::store(&ctx.store, &design, now.timestamp_millis())
        .await
        .unwrap();

    // With audits on, pitch generation audits the site before the first pitch.
    let mut s = (*ctx.settings).clone();
    s.engines.testing.audit_websites = true;
    let auditing = cep_workers::Ctx::new(
        s,
        (*ctx.secrets).clone(),
        ctx.store.clone(),
        ctx.queue.clone(),
        Clock::System,
    )
    .unwrap();
    cep_workers::layers::pitch_generation::handle(
        &auditing,
        cep_shared::jobs::PitchJob {
            prospect_id: id.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        scalar(
            ctx,
            &format!(
                "SELECT COUNT(*) FROM test_results WHERE subject = '{id}' AND outcome = 'failed' AND architecture_id = '{}'",
                design.id
            )
        )
        .await,
        1
    );
    let (signals,): (String,) = sqlx::query_as("SELECT signals FROM prospects WHERE id = $1")
        .bind(&id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&signals).unwrap();
    assert_eq!(v["website"]["loads"], true);
    assert_eq!(v["website"]["mobile_viewport"], false);
}
