//! External HTTP APIs against local fakes (wiremock): what each answer means for the
//! job, fleet-wide rate limits and the prospect sources (Overpass, Places).

use crate::helpers::*;
use cep_shared::config::{Limit, Per, Provider};
use cep_shared::jobs::PitchJob;
use cep_shared::queue::Budget;
use cep_shared::signals::Signal;
use cep_shared::vocabulary::LeadClass;
use cep_shared::{Clock, Secrets};
use cep_workers::clients::provider;
use cep_workers::{Ctx, Disposition, JobError};
use chrono::TimeZone;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn noon() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

async fn get(ctx: &Ctx, server: &MockServer) -> Result<provider::Reply, JobError> {
    let req = ctx.http.get(format!("{}/thing", server.uri()));
    provider::call(ctx, Provider::Places, "", req).await
}

async fn answering(t: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/thing"))
        .respond_with(t)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn each_kind_of_answer_ends_as_the_right_retry_deferral_or_dead_letter() {
    let mut s = settings();
    s.providers.http_timeout_seconds = 1;
    let h = harness(Backend::Embedded, s, Clock::simulated(noon())).await;
    let ctx = &h.ctx;
    let now = ctx.now();

    let ok = answering(ResponseTemplate::new(200).set_body_string(r#"{"n": 3}"#)).await;
    let v: serde_json::Value = get(ctx, &ok).await.unwrap().json().unwrap();
    assert_eq!(v["n"], 3);

    let bad = answering(ResponseTemplate::new(400).set_body_string("fieldMask is required")).await;
    let e = get(ctx, &bad).await.unwrap_err();
    assert_eq!(e.disposition(), Disposition::Abort, "{e}");
    assert!(
        e.to_string()
            .contains("places: HTTP 400: fieldMask is required"),
        "{e}"
    );

    let denied = answering(ResponseTemplate::new(403)).await;
    let e = get(ctx, &denied).await.unwrap_err();
    assert_eq!(e.disposition(), Disposition::Abort);
    assert!(e.to_string().contains("check the API key"), "{e}");

    let slow_down = answering(ResponseTemplate::new(429).insert_header("Retry-After", "30")).await;
    let e = get(ctx, &slow_down).await.unwrap_err();
    assert_eq!(e.disposition(), Disposition::RetryAt(now + 30_000), "{e}");

    let bare_429 = answering(ResponseTemplate::new(429)).await;
    assert_eq!(
        get(ctx, &bare_429).await.unwrap_err().disposition(),
        Disposition::Retry
    );

    let down = answering(ResponseTemplate::new(502).set_body_string("bad gateway")).await;
    let e = get(ctx, &down).await.unwrap_err();
    assert_eq!(e.disposition(), Disposition::Retry);
    assert!(e.to_string().contains("HTTP 502: bad gateway"), "{e}");

    let slow = answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    let e = get(ctx, &slow).await.unwrap_err();
    assert_eq!(e.disposition(), Disposition::Retry);
    assert!(e.to_string().contains("no answer within 1 s"), "{e}");

    let garbled = answering(ResponseTemplate::new(200).set_body_string("<html>oops")).await;
    let e = get(ctx, &garbled)
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap_err();
    assert_eq!(e.disposition(), Disposition::Retry);
    assert!(e.to_string().contains("does not decode"), "{e}");

    // Nothing listening: retried.
    let gone = ctx.http.get("http://127.0.0.1:9/thing");
    let e = provider::call(ctx, Provider::Places, "", gone)
        .await
        .unwrap_err();
    assert_eq!(e.disposition(), Disposition::Retry, "{e}");

    let m = cep_shared::metrics::get();
    let calls = |r: &str| m.provider_calls.with_label_values(&["places", r]).get();
    assert_eq!(calls("ok"), 2, "the garbled body was an HTTP success");
    assert_eq!(calls("rejected"), 2);
    assert_eq!(calls("rate_limited"), 2);
    assert_eq!(calls("malformed"), 1);
}

async fn budget_is_never_exceeded(backend: Backend) {
    let mut s = settings();
    s.providers.rate_limits.firecrawl = vec![
        Limit {
            per: Per::Minute,
            limit: 7,
        },
        Limit {
            per: Per::Month,
            limit: 20,
        },
    ];
    let clock = Clock::simulated(noon());
    let h = harness(backend, s.clone(), clock.clone()).await;
    let limits = s.providers.rate_limits.firecrawl.clone();
    // Several takers at once, each on a connection of its own.
    let mut takers = Vec::new();
    for _ in 0..4 {
        let queue = match backend {
            Backend::Fleet => redis_queue(&s, clock.clone()).await,
            Backend::Embedded => h.ctx.queue.clone(),
        };
        let limits = limits.clone();
        takers.push(tokio::spawn(async move {
            let mut granted = 0;
            for _ in 0..5 {
                if let Budget::Granted { .. } = queue
                    .take_budget(Provider::Firecrawl, "", &limits)
                    .await
                    .unwrap()
                {
                    granted += 1;
                }
            }
            granted
        }));
    }
    let mut granted = 0;
    for t in takers {
        granted += t.await.unwrap();
    }
    assert_eq!(granted, 7, "exactly the minute's limit was granted");
    let next_minute = noon().timestamp_millis() + 60_000;
    assert_eq!(
        h.ctx
            .queue
            .take_budget(Provider::Firecrawl, "", &limits)
            .await
            .unwrap(),
        Budget::Exhausted {
            per: Per::Minute,
            until: next_minute
        }
    );
    let left = h
        .ctx
        .queue
        .budget_left(Provider::Firecrawl, "", &limits)
        .await
        .unwrap();
    assert_eq!(left, [(Per::Minute, 0), (Per::Month, 13)]);

    // Later minutes: the month's 20 run out, and a refusal names the month's end.
    for minute in 1..=3 {
        clock.set(noon() + chrono::Duration::minutes(minute));
        for _ in 0..7 {
            h.ctx
                .queue
                .take_budget(Provider::Firecrawl, "", &limits)
                .await
                .unwrap();
        }
    }
    let april = chrono::Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    assert_eq!(
        h.ctx
            .queue
            .take_budget(Provider::Firecrawl, "", &limits)
            .await
            .unwrap(),
        Budget::Exhausted {
            per: Per::Month,
            until: april.timestamp_millis()
        }
    );
    // Another scope (a GBP location) has a budget of its own.
    assert!(matches!(
        h.ctx
            .queue
            .take_budget(Provider::Firecrawl, "loc-2", &limits)
            .await
            .unwrap(),
        Budget::Granted { left: Some(6) }
    ));
    if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
        r.purge().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_wide_budget_shared_over_redis_is_never_exceeded() {
    budget_is_never_exceeded(Backend::Fleet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_budget_is_never_exceeded() {
    budget_is_never_exceeded(Backend::Embedded).await;
}

async fn prospect_with(
    s: cep_shared::Settings,
    secrets: Secrets,
) -> (
    Harness,
    Result<cep_workers::layers::prospecting::ProspectSearchResult, JobError>,
) {
    let h = harness_with(Backend::Embedded, s, secrets, Clock::simulated(noon())).await;
    let r = search_miami_dentists(&h.ctx, "2026-03-10").await;
    (h, r)
}

/// One prospecting run for Miami dentists in `period`.
async fn search_miami_dentists(
    ctx: &Ctx,
    period: &str,
) -> Result<cep_workers::layers::prospecting::ProspectSearchResult, JobError> {
    cep_workers::layers::prospecting::handle(
        ctx,
        cep_shared::jobs::ProspectingJob {
            period: period.into(),
            location: "Miami, FL".into(),
            category: "dental".into(),
            max_prospects: Some(20),
        },
    )
    .await
}

#[tokio::test]
async fn overpass_finds_dentists_by_both_tags_and_keeps_what_osm_knows() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/interpreter"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "elements": [
                {"type": "node", "id": 1, "lat": 25.77, "lon": -80.19,
                 "tags": {"amenity": "dentist", "name": "Bayfront Dental", "website": "https://bayfront.example",
                          "phone": "+1 305 555 0100", "opening_hours": "Mo-Fr 08:00-17:00"}},
                {"type": "way", "id": 2, "center": {"lat": 25.8, "lon": -80.2},
                 "tags": {"healthcare": "dentist", "name": "Little Havana Smiles"}},
                {"type": "node", "id": 3, "lat": 25.7, "lon": -80.1, "tags": {"amenity": "dentist"}}
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut s = settings();
    s.providers.prospects.source = cep_shared::config::ProspectSource::Overpass;
    s.providers.prospects.overpass_url = format!("{}/api/interpreter", server.uri());
    let (h, r) = prospect_with(s, Secrets::default()).await;
    let r = r.unwrap();
    assert_eq!(r.total_found, 2, "the element without a name is skipped");
    let query =
        String::from_utf8(server.received_requests().await.unwrap()[0].body.clone()).unwrap();
    let query: String = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "data")
        .unwrap()
        .1
        .into_owned();
    assert!(
        query.contains(r#"["amenity"="dentist"]"#) && query.contains(r#"["healthcare"="dentist"]"#),
        "{query}"
    );
    let (website, offset): (Option<String>, i64) =
        sqlx::query_as("SELECT website, utc_offset_minutes FROM prospects WHERE id = 'osm:node/1'")
            .fetch_one(h.ctx.store.pool())
            .await
            .unwrap();
    assert_eq!(website.as_deref(), Some("https://bayfront.example"));
    assert_eq!(offset, -300);
    // OSM tells nothing of the Google profile: unknown, not absent. Neither is pitched
    // "no Google Business Profile".
    for p in &r.prospects {
        assert_eq!(p.lead_class, LeadClass::NeedsData, "{p:?}");
        assert_eq!((p.coverage, p.revenue_lost), (0.0, None));
        assert_eq!(p.unknown_signals, Signal::ALL);
        assert!(p.opportunities.is_empty());
    }
    let pitches = h.ctx.queue.stats(&["pitch_generation"]).await.unwrap();
    assert_eq!(
        pitches[0].ready, 0,
        "a prospect that needs data is not pitched"
    );
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM research_logs WHERE citations LIKE '%OpenStreetMap contributors%'"
        )
        .await,
        1
    );

    // The same search within the hour is answered from the cache.
    let again = search_miami_dentists(&h.ctx, "2026-03-11").await.unwrap();
    assert_eq!(again.total_found, 2);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn with_a_places_key_an_osm_prospect_is_looked_up_and_classed_on_what_places_tells() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/interpreter"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "elements": [
                {"type": "node", "id": 1, "lat": 25.77, "lon": -80.19,
                 "tags": {"amenity": "dentist", "name": "Bayfront Dental"}},
                {"type": "node", "id": 2, "lat": 25.8, "lon": -80.2,
                 "tags": {"amenity": "dentist", "name": "Little Havana Smiles"}}
            ]
        })))
        .mount(&server)
        .await;
    // Bayfront has a profile: 3 reviews at 4.6, 2 photos, hours, no website linked.
    Mock::given(method("POST"))
        .and(path("/v1/places:searchText"))
        .and(header("X-Goog-Api-Key", "places-test-key"))
        .and(body_partial_json(serde_json::json!({
            "textQuery": "Bayfront Dental, Miami, FL", "pageSize": 1
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "places": [{"id": "ChIJ-bay", "businessStatus": "OPERATIONAL", "rating": 4.6,
                        "userRatingCount": 3, "photos": [{"name": "a"}, {"name": "b"}],
                        "regularOpeningHours": {"periods": []}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    // Little Havana Smiles has none.
    Mock::given(method("POST"))
        .and(path("/v1/places:searchText"))
        .and(body_partial_json(serde_json::json!({
            "textQuery": "Little Havana Smiles, Miami, FL"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let mut s = settings();
    s.providers.prospects.source = cep_shared::config::ProspectSource::Overpass;
    s.providers.prospects.overpass_url = format!("{}/api/interpreter", server.uri());
    s.providers.prospects.places_url = server.uri();
    let secrets = Secrets {
        places_api_key: Some("places-test-key".into()),
        ..Default::default()
    };
    let (h, r) = prospect_with(s, secrets).await;
    let r = r.unwrap();
    let by_id = |id: &str| r.prospects.iter().find(|p| p.id == id).unwrap().clone();
    // Known: profile 10, photos 15, reviews 15, rating 5, hours 5, website 10 = 60 points;
    // earned 10 + 10 + 10 + 5 + 5 = 40 → 67, coverage 0.6: a cold lead, kept unpitched.
    let bay = by_id("osm:node/1");
    assert_eq!((bay.gbp_score, bay.coverage), (67, 0.6));
    assert_eq!(bay.lead_class, LeadClass::Cold);
    assert_eq!(
        bay.unknown_signals,
        [
            Signal::Claimed,
            Signal::RecentPost,
            Signal::Services,
            Signal::Description,
            Signal::OwnerReplies
        ]
    );
    assert_eq!(
        bay.opportunities,
        ["add more photos", "get more reviews", "link the website"]
    );
    // No place matches: no profile, and so everything about it is known.
    let havana = by_id("osm:node/2");
    assert_eq!((havana.gbp_score, havana.coverage), (0, 1.0));
    assert_eq!(havana.lead_class, LeadClass::Hot);
    assert_eq!(havana.opportunities[0], "create the profile");
    let pitches = h.ctx.queue.stats(&["pitch_generation"]).await.unwrap();
    assert_eq!(pitches[0].ready, 1, "the hot lead is pitched");
    // A rerun within the cache's time asks Places nothing more (each mock expects one).
    search_miami_dentists(&h.ctx, "2026-03-10").await.unwrap();
}

#[tokio::test]
async fn a_busy_overpass_defers_the_prospecting_run() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;
    let mut s = settings();
    s.providers.prospects.source = cep_shared::config::ProspectSource::Overpass;
    s.providers.prospects.overpass_url = server.uri();
    let (_h, r) = prospect_with(s, Secrets::default()).await;
    let e = r.unwrap_err();
    assert_eq!(
        e.disposition(),
        Disposition::RetryAt(noon().timestamp_millis() + 120_000),
        "{e}"
    );
}

#[tokio::test]
async fn places_pages_through_text_search_and_stores_only_the_place_id_and_our_scores() {
    let server = MockServer::start().await;
    let place = |id: &str, status: &str| {
        serde_json::json!({"id": id, "businessStatus": status, "rating": 3.6, "userRatingCount": 4,
                           "photos": [{"name": "p"}], "utcOffsetMinutes": -300})
    };
    Mock::given(method("POST"))
        .and(path("/v1/places:searchText"))
        .and(header("X-Goog-Api-Key", "places-test-key"))
        .and(body_partial_json(
            serde_json::json!({"pageToken": "page-2"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "places": [place("ChIJ-b", "OPERATIONAL"), place("ChIJ-gone", "CLOSED_PERMANENTLY")]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/places:searchText"))
        .and(body_partial_json(
            serde_json::json!({"textQuery": "dental in Miami, FL", "pageSize": 20}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "places": [place("ChIJ-a", "OPERATIONAL")], "nextPageToken": "page-2"
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/places/ChIJ-a"))
        .and(header("X-Goog-FieldMask", "displayName"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "displayName": {"text": "Coral Way Dentistry", "languageCode": "en"}
        })))
        .mount(&server)
        .await;
    let mut s = settings();
    s.providers.prospects.source = cep_shared::config::ProspectSource::Places;
    s.providers.prospects.places_url = server.uri();
    let secrets = Secrets {
        places_api_key: Some("places-test-key".into()),
        ..Default::default()
    };
    let (h, r) = prospect_with(s, secrets).await;
    let r = r.unwrap();
    assert_eq!(r.total_found, 2, "two pages, the closed place left out");
    let masks: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("x-goog-fieldmask")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert!(
        masks
            .iter()
            .all(|m| m.contains("places.id") && m.contains("nextPageToken")),
        "{masks:?}"
    );
    assert_eq!(scalar(&h.ctx, "SELECT COUNT(*) FROM prospects WHERE id = 'places:ChIJ-a' AND website IS NULL AND phone IS NULL").await, 1);
    assert_eq!(
        scalar(
            &h.ctx,
            "SELECT COUNT(*) FROM prospects WHERE name LIKE '%Coral Way%'"
        )
        .await,
        0
    );

    // The pitch reads the name back from Places when it is written.
    let pitch = cep_workers::layers::pitch_generation::handle(
        &h.ctx,
        PitchJob {
            prospect_id: "places:ChIJ-a".into(),
        },
    )
    .await
    .unwrap();
    assert!(
        pitch
            .pitches
            .iter()
            .any(|p| p.body.contains("Coral Way Dentistry"))
    );
}
