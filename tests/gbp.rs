//! The optimization layer on a real Business Profile (a local fake of Google's APIs):
//! missing fields patched, due posts published, unanswered reviews replied to — each
//! once, within 10 edits a minute per profile, and nothing but a record in dry run.

use crate::helpers::*;
use cep_shared::config::{Limit, Per};
use cep_shared::jobs::OptimizationJob;
use cep_shared::{Clock, Secrets, Settings};
use cep_workers::layers::optimization::{self, gbp};
use cep_workers::{Ctx, Disposition};
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const LOCATION: &str = "accounts/123/locations/456";
const V4: &str = "/v4/accounts/123/locations/456";

async fn google() -> MockServer {
    let server = MockServer::start().await;
    let ok = |body: serde_json::Value| ResponseTemplate::new(200).set_body_json(body);
    Mock::given(method("GET"))
        .and(path("/v1/locations/456"))
        .and(query_param("readMask", gbp::READ_MASK))
        .respond_with(ok(
            serde_json::json!({ "name": "locations/456", "websiteUri": "https://oak.example" }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v1/locations/456"))
        .and(query_param("updateMask", "profile.description"))
        .respond_with(ok(serde_json::json!({ "name": "locations/456" })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{V4}/localPosts")))
        .and(body_partial_json(
            serde_json::json!({ "topicType": "STANDARD", "languageCode": "en" }),
        ))
        .respond_with(ok(
            serde_json::json!({ "name": format!("{LOCATION}/localPosts/p1") }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V4}/reviews")))
        .respond_with(ok(serde_json::json!({ "reviews": [
            { "reviewId": "r1", "starRating": "FIVE", "reviewer": { "displayName": "Ana Diaz" } },
            { "reviewId": "r2", "starRating": "TWO", "reviewReply": { "comment": "Sorry!" } }
        ] })))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{V4}/reviews/r1/reply")))
        .respond_with(ok(serde_json::json!({ "comment": "ok" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V4}/media")))
        .respond_with(ok(
            serde_json::json!({ "mediaItems": [], "totalMediaItemCount": 0 }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V4}/localPosts")))
        .respond_with(ok(serde_json::json!({ "localPosts": [] })))
        .mount(&server)
        .await;
    performance_fake(&server).await;
    server
}

/// Google's Performance API for location 456, answering for the days asked in its real
/// shape: calls on a day are its day of the month, website clicks 1 on weekdays, 10
/// views on Maps from phones, every other metric zero (left out, as Google leaves zeros out). Search keywords: one
/// counted, one withheld under a threshold.
pub async fn performance_fake(server: &MockServer) {
    struct Daily;
    impl wiremock::Respond for Daily {
        fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
            let q: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
            let get = |k: &str| {
                q.iter()
                    .find(|(n, _)| n == k)
                    .and_then(|(_, v)| v.parse::<u32>().ok())
                    .unwrap_or(0)
            };
            let day = |end: &str| {
                chrono::NaiveDate::from_ymd_opt(
                    get(&format!("dailyRange.{end}.year")) as i32,
                    get(&format!("dailyRange.{end}.month")),
                    get(&format!("dailyRange.{end}.day")),
                )
            };
            let (Some(from), Some(to)) = (day("start_date"), day("end_date")) else {
                return ResponseTemplate::new(400).set_body_json(serde_json::json!({
                    "error": { "code": 400, "status": "INVALID_ARGUMENT", "message": "dailyRange" }
                }));
            };
            let series: Vec<serde_json::Value> = q
                .iter()
                .filter(|(k, _)| k == "dailyMetrics")
                .map(|(_, metric)| {
                    let values: Vec<serde_json::Value> = from
                        .iter_days()
                        .take_while(|d| *d <= to)
                        .map(|d| {
                            use chrono::Datelike;
                            let date = serde_json::json!({ "year": d.year(), "month": d.month(), "day": d.day() });
                            let weekday = d.weekday().number_from_monday() <= 5;
                            match metric.as_str() {
                                "CALL_CLICKS" => serde_json::json!({ "date": date, "value": d.day().to_string() }),
                                "WEBSITE_CLICKS" if weekday => serde_json::json!({ "date": date, "value": "1" }),
                                "BUSINESS_IMPRESSIONS_MOBILE_MAPS" => serde_json::json!({ "date": date, "value": "10" }),
                                _ => serde_json::json!({ "date": date }),
                            }
                        })
                        .collect();
                    serde_json::json!({ "dailyMetric": metric, "timeSeries": { "datedValues": values } })
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "multiDailyMetricTimeSeries": [{ "dailyMetricTimeSeries": series }]
            }))
        }
    }
    Mock::given(method("GET"))
        .and(path("/v1/locations/456:fetchMultiDailyMetricsTimeSeries"))
        .respond_with(Daily)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/locations/456/searchkeywords/impressions/monthly"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "searchKeywordsCounts": [
                { "searchKeyword": "dentist near me", "insightsValue": { "value": "128" } },
                { "searchKeyword": "oak dental", "insightsValue": { "threshold": "15" } }
            ]
        })))
        .mount(server)
        .await;
}

/// A profile as Google's APIs answer for it: the location's fields, media, reviews and
/// posts.
pub async fn profile_reads(server: &MockServer, description: Option<&str>, posted: Option<&str>) {
    let ok = |body: serde_json::Value| ResponseTemplate::new(200).set_body_json(body);
    let mut location = serde_json::json!({
        "name": "locations/456", "websiteUri": "https://oak.example",
        "regularHours": { "periods": [{ "openDay": "MONDAY", "closeDay": "MONDAY" }] }
    });
    if let Some(d) = description {
        location["profile"] = serde_json::json!({ "description": d });
    }
    Mock::given(method("GET"))
        .and(path("/v1/locations/456"))
        .respond_with(ok(location))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V4}/media")))
        .respond_with(ok(serde_json::json!({
            "mediaItems": [{ "name": "m1" }], "totalMediaItemCount": 3
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V4}/reviews")))
        .respond_with(ok(serde_json::json!({
            "averageRating": 4.5, "totalReviewCount": 2,
            "reviews": [
                { "reviewId": "r1", "starRating": "FIVE", "createTime": "2026-01-02T10:00:00Z",
                  "reviewReply": { "comment": "Thanks!", "updateTime": "2026-01-03T09:00:00Z" } },
                { "reviewId": "r2", "starRating": "FOUR", "createTime": "2026-01-05T12:00:00Z" }
            ]
        })))
        .mount(server)
        .await;
    let posts = match posted {
        Some(at) => serde_json::json!({ "localPosts": [{ "name": "p", "createTime": at }] }),
        None => serde_json::json!({}),
    };
    Mock::given(method("GET"))
        .and(path(format!("{V4}/localPosts")))
        .respond_with(ok(posts))
        .mount(server)
        .await;
    performance_fake(server).await;
}

#[tokio::test]
async fn a_linked_profiles_score_is_what_its_reading_shows_and_the_gain_is_measured() {
    let server = MockServer::start().await;
    // Week 1: website, hours, 3 photos, 2 reviews at 4.5 with half answered; no
    // description, services or recent post. Profile 10 + claimed 10 + photos 10 +
    // reviews 10 + rating 5 + hours 5 + website 10 + replies 5 = 65.
    profile_reads(&server, None, None).await;
    let (s, secrets) = live(&server, true);
    let mut secrets = secrets;
    // Dry run with a token: the profile is read, no edit is made.
    secrets.gbp_access_token = Some("gbp-test-token".into());
    let clock = Clock::simulated(in_window());
    let h = harness_with(Backend::Fleet, s, secrets, clock.clone()).await;
    let ctx = &h.ctx;
    a_client(ctx).await;
    gbp::link(ctx, "client_1", LOCATION).await.unwrap();
    let first = optimize(ctx, "2026-W02").await.unwrap();
    assert_eq!(first.score_after, Some(65));
    // One reading serves the score and the edits: each resource is read once.
    let requests = server.received_requests().await.unwrap();
    for resource in [
        "/v1/locations/456",
        "/reviews",
        "/media",
        "/localPosts",
        ":fetchMultiDailyMetricsTimeSeries",
    ] {
        let reads = requests
            .iter()
            .filter(|r| r.url.path().ends_with(resource))
            .count();
        assert_eq!(reads, 1, "{resource} read {reads} times");
    }
    assert_eq!(
        (first.score_gain, first.visibility_gain),
        (None, None),
        "a first reading"
    );
    assert_eq!(scalar(ctx, "SELECT gbp_score FROM clients").await, 65);

    // Week 2: the owner added a description and posted last week: +5 and +10.
    server.reset().await;
    let week = chrono::Duration::days(7);
    let posted = (in_window() + chrono::Duration::days(3)).to_rfc3339();
    profile_reads(&server, Some("Family dentistry in Miami."), Some(&posted)).await;
    clock.set(in_window() + week);
    let second = optimize(ctx, "2026-W03").await.unwrap();
    assert_eq!(second.score_after, Some(80));
    assert_eq!(second.score_gain, Some(15));
    assert_eq!(second.visibility_gain, Some(12.0));
    assert!(
        second.optimizations_completed.is_empty(),
        "dry run: nothing done by us"
    );
    assert!(
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| r.method.as_str() == "GET"),
        "dry run reads, never writes"
    );

    // The month's report shows what was read, before and after, and the measured gain.
    clock.set(in_window() + week + chrono::Duration::hours(1));
    let report = cep_workers::handle(
        ctx,
        cep_shared::JobKind::Layer(cep_shared::Layer::Reporting),
        &serde_json::json!({ "period": "2026-01" }).to_string(),
    )
    .await
    .unwrap();
    let client = report["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["client_id"] == "client_1")
        .unwrap()
        .clone();
    let metric = |name: &str| {
        client["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["value"].as_f64().unwrap())
    };
    assert_eq!(metric("observed_score_before"), Some(65.0));
    assert_eq!(metric("observed_score_after"), Some(80.0));
    assert_eq!(metric("score_gain"), Some(15.0));
    assert_eq!(metric("visibility_gain"), Some(12.0));
    if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
        r.purge().await.unwrap();
    }
}

pub fn live(server: &MockServer, dry_run: bool) -> (Settings, Secrets) {
    let mut s = settings();
    s.providers.gbp.dry_run = dry_run;
    s.providers.gbp.business_information_url = server.uri();
    s.providers.gbp.v4_url = server.uri();
    s.providers.gbp.performance_url = server.uri();
    let mut secrets = Secrets::default();
    if !dry_run {
        secrets.gbp_access_token = Some("gbp-test-token".into());
    }
    (s, secrets)
}

pub async fn optimize(
    ctx: &Ctx,
    period: &str,
) -> Result<optimization::OptimizationResult, cep_workers::JobError> {
    optimization::handle(
        ctx,
        OptimizationJob {
            client_id: "client_1".into(),
            period: period.into(),
        },
    )
    .await
}

async fn calls(server: &MockServer, verb: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == verb)
        .count()
}

#[tokio::test]
async fn a_linked_profile_gets_each_edit_once_within_its_edits_per_minute() {
    let server = google().await;
    let (mut s, secrets) = live(&server, false);
    s.providers.rate_limits.gbp_edits = vec![Limit {
        per: Per::Minute,
        limit: 2,
    }];
    // This agency publishes its planned posts unread.
    s.layers.optimization.auto_approve = true;
    let clock = Clock::simulated(in_window());
    let h = harness_with(Backend::Fleet, s, secrets, clock.clone()).await;
    let ctx = &h.ctx;
    a_client(ctx).await;
    let e = gbp::link(ctx, "client_1", "locations/456")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("expected accounts/<account id>/locations/<location id>"),
        "{e}"
    );
    gbp::link(ctx, "client_1", LOCATION).await.unwrap();

    // Two edits fit this minute (the description, today's post); the review reply waits
    // for the next one.
    let e = optimize(ctx, "2026-W02").await.unwrap_err();
    let next_minute = (ctx.now() / 60_000 + 1) * 60_000;
    assert_eq!(e.disposition(), Disposition::RetryAt(next_minute), "{e}");
    assert_eq!(calls(&server, "PATCH").await, 1);
    assert_eq!(calls(&server, "POST").await, 1);
    assert_eq!(calls(&server, "PUT").await, 0);

    clock.set(in_window() + chrono::Duration::minutes(1));
    let r = optimize(ctx, "2026-W02").await.unwrap();
    let g = r.gbp.unwrap();
    assert_eq!(
        (g.profile_fields.len(), g.posts, g.review_replies),
        (0, 0, 1),
        "{g:?}"
    );
    // Nothing twice: the rerun made only the reply; the answered review got none.
    assert_eq!(calls(&server, "PATCH").await, 1);
    assert_eq!(calls(&server, "POST").await, 1);
    assert_eq!(calls(&server, "PUT").await, 1);

    let reqs = server.received_requests().await.unwrap();
    let put = reqs.iter().find(|r| r.method.as_str() == "PUT").unwrap();
    assert_eq!(
        put.headers.get("authorization").unwrap(),
        "Bearer gbp-test-token"
    );
    let reply: serde_json::Value = serde_json::from_slice(&put.body).unwrap();
    assert!(
        reply["comment"]
            .as_str()
            .unwrap()
            .starts_with("Thank you, Ana!")
    );
    let patch = reqs.iter().find(|r| r.method.as_str() == "PATCH").unwrap();
    let patch: serde_json::Value = serde_json::from_slice(&patch.body).unwrap();
    assert!(
        patch["profile"]["description"]
            .as_str()
            .unwrap()
            .contains("Oak Dental")
    );
    assert!(
        patch.get("websiteUri").is_none(),
        "the website was set already"
    );
    assert_eq!(
        scalar(
            ctx,
            "SELECT COUNT(*) FROM posts WHERE gbp_post = 'accounts/123/locations/456/localPosts/p1'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            ctx,
            "SELECT COUNT(*) FROM gbp_edits WHERE status = 'applied'"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn dry_run_records_the_edits_and_sends_nothing_until_it_is_turned_off() {
    let server = google().await;
    let (s, secrets) = live(&server, true);
    let clock = Clock::simulated(in_window());
    let h = harness_with(Backend::Fleet, s, secrets, clock.clone()).await;
    let ctx = &h.ctx;
    a_client(ctx).await;
    gbp::link(ctx, "client_1", LOCATION).await.unwrap();

    // Posts are drafts: none is due for publishing until the operator approves it.
    // In dry run the rest are proposals: nothing done, no gain claimed.
    let r = optimize(ctx, "2026-W02").await.unwrap();
    assert_eq!(r.gbp.as_ref().unwrap().posts, 0);
    assert!(r.optimizations_completed.is_empty());
    assert_eq!(r.optimizations_proposed.len(), 5);
    assert_eq!((r.score_after, r.visibility_gain), (None, None));
    let pending = optimization::store::posts(ctx, true, Some("client_1"), 100)
        .await
        .unwrap();
    assert_eq!(pending.len(), r.posts_scheduled, "every planned post waits");
    assert!(pending[0].body.contains("Oak Dental"), "{:?}", pending[0]);
    assert!(
        optimization::store::approve(ctx, &pending[0].id, "operator")
            .await
            .unwrap()
    );
    assert!(
        !optimization::store::approve(ctx, &pending[0].id, "operator")
            .await
            .unwrap()
    );
    let err = optimization::store::approve(ctx, "post_nope", "operator")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no post `post_nope`"), "{err}");
    let left = optimization::store::posts(ctx, true, None, 100)
        .await
        .unwrap();
    assert_eq!(left.len(), pending.len() - 1);

    let r = optimize(ctx, "2026-W02").await.unwrap();
    assert_eq!(
        r.gbp.as_ref().unwrap().posts,
        1,
        "the approved one, recorded"
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "dry run calls nothing"
    );
    assert!(r.optimizations_completed.is_empty());
    assert_eq!(scalar(ctx, "SELECT gbp_score FROM clients").await, 40);
    assert_eq!(
        scalar(
            ctx,
            "SELECT COUNT(*) FROM gbp_edits WHERE status = 'dry_run' AND kind = 'post'"
        )
        .await,
        1
    );

    // The same store with dry run off: the recorded post goes out, once.
    let (s, secrets) = live(&server, false);
    let live_ctx = Ctx::new(s, secrets, ctx.store.clone(), ctx.queue.clone(), clock).unwrap();
    let r = optimize(&live_ctx, "2026-W03").await.unwrap();
    assert_eq!(r.gbp.unwrap().posts, 1);
    assert_eq!(calls(&server, "POST").await, 1);
    assert!(
        r.optimizations_completed
            .contains(&"posts published: 1".to_string()),
        "only what the API accepted is done: {:?}",
        r.optimizations_completed
    );
    optimize(&live_ctx, "2026-W04").await.unwrap();
    assert_eq!(calls(&server, "POST").await, 1);
}
