//! External HTTP APIs against local fakes (wiremock): what each answer means for the
//! job, the LLM pitch writers and their fallback, and fleet-wide rate limits.

use crate::helpers::*;
use cep_shared::config::{Limit, Per, PitchWriter, Provider};
use cep_shared::jobs::PitchJob;
use cep_shared::queue::Budget;
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

fn good_answer() -> String {
    serde_json::json!({
        "email": {"subject": "Oak Dental on Google Maps", "body": "Your profile has no photos and few reviews, so nearby patients pick other dentists. We can fix that; a free audit shows the three biggest gains. If this is not useful, reply and we will not write again."},
        "linkedin": {"body": "We help Miami dental practices get found on Google Maps. Happy to send a free audit."},
        "phone": {"body": "Hello, I am calling about how your practice appears on Google Maps. We offer a free audit."},
        "sms": {"body": "Free audit of your Google profile? Reply STOP to opt out."}
    })
    .to_string()
}

async fn pitch_with(
    writer: PitchWriter,
    server: &MockServer,
    tweak: impl FnOnce(&mut cep_shared::Settings),
) -> (
    Ctx,
    Result<cep_workers::layers::pitch_generation::PitchGenerationResult, JobError>,
    Harness,
) {
    let mut s = settings();
    s.providers.llm.writer = writer;
    s.providers.llm.ollama_url = server.uri();
    s.providers.llm.anthropic_url = server.uri();
    s.providers.llm.openai_url = server.uri();
    tweak(&mut s);
    let secrets = Secrets {
        anthropic_api_key: Some("sk-ant-test".into()),
        openai_api_key: Some("sk-openai-test".into()),
        ..Default::default()
    };
    let h = harness_with(Backend::Embedded, s, secrets, Clock::simulated(noon())).await;
    let ctx = h.ctx.clone();
    let id = leads(&ctx, 1).await.remove(0);
    let r = cep_workers::layers::pitch_generation::handle(&ctx, PitchJob { prospect_id: id }).await;
    (ctx, r, h)
}

#[tokio::test]
async fn ollama_writes_the_pitch_through_api_chat_with_a_json_schema() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .and(body_partial_json(
            serde_json::json!({"model": "llama3.1", "stream": false}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "model": "llama3.1", "done": true, "done_reason": "stop",
            "message": {"role": "assistant", "content": good_answer()}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (ctx, r, _h) = pitch_with(PitchWriter::Ollama, &server, |_| {}).await;
    let r = r.unwrap();
    assert_eq!(r.writer, "ollama");
    let email = r.pitches.iter().find(|p| p.subject.is_some()).unwrap();
    assert_eq!(email.subject.as_deref(), Some("Oak Dental on Google Maps"));
    assert_eq!(
        scalar(&ctx, "SELECT COUNT(*) FROM pitches WHERE writer = 'ollama'").await,
        4
    );
    let sent: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(
        sent["format"]["required"],
        serde_json::json!(["email", "linkedin", "phone", "sms"])
    );
    assert_eq!(sent["messages"][0]["role"], "system");
}

#[tokio::test]
async fn anthropic_gets_its_key_version_and_a_top_level_system_prompt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-ant-test"))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": good_answer()}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 20}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (_ctx, r, _h) = pitch_with(PitchWriter::Anthropic, &server, |_| {}).await;
    assert_eq!(r.unwrap().writer, "anthropic");
    let sent: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert!(sent["system"].as_str().unwrap().contains("opt-out"));
    assert_eq!(
        sent["messages"].as_array().unwrap().len(),
        1,
        "no system role in messages"
    );
    assert!(sent["max_tokens"].as_u64().is_some());
}

#[tokio::test]
async fn an_openai_compatible_server_gets_a_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-openai-test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": good_answer()}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (_ctx, r, _h) = pitch_with(PitchWriter::Openai, &server, |_| {}).await;
    assert_eq!(r.unwrap().writer, "openai");
}

async fn falls_back(answer: ResponseTemplate, reason: &str) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let (ctx, r, _h) = pitch_with(PitchWriter::Ollama, &server, |s| {
        s.providers.llm.timeout_seconds = 1;
    })
    .await;
    let r = r.unwrap();
    assert_eq!(r.writer, "template", "{reason}");
    assert_eq!(r.pitches.len(), 4);
    assert_eq!(
        scalar(
            &ctx,
            "SELECT COUNT(*) FROM pitches WHERE writer = 'template'"
        )
        .await,
        4
    );
    let m = cep_shared::metrics::get();
    assert_eq!(
        m.pitch_fallbacks
            .with_label_values(&["ollama", reason])
            .get(),
        1
    );
}

#[tokio::test]
async fn a_failing_llm_falls_back_to_the_template_writer_and_is_counted() {
    falls_back(
        ResponseTemplate::new(500).set_body_string("model crashed"),
        "error",
    )
    .await;
}

#[tokio::test]
async fn a_slow_llm_falls_back_to_the_template_writer() {
    falls_back(
        ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
        "timeout",
    )
    .await;
}

#[tokio::test]
async fn an_llm_answer_that_breaks_the_rules_falls_back_to_the_template_writer() {
    let no_opt_out = good_answer().replace(
        "If this is not useful, reply and we will not write again.",
        "",
    );
    let body =
        serde_json::json!({"done": true, "message": {"role": "assistant", "content": no_opt_out}});
    falls_back(ResponseTemplate::new(200).set_body_json(body), "invalid").await;
}

#[tokio::test]
async fn a_garbled_llm_answer_falls_back_to_the_template_writer() {
    falls_back(
        ResponseTemplate::new(200).set_body_string("{\"truncated"),
        "invalid",
    )
    .await;
}

#[tokio::test]
async fn a_spent_llm_budget_defers_the_pitch_without_calling_the_model() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "content": [{"type": "text", "text": good_answer()}], "stop_reason": "end_turn"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (ctx, first, _h) = pitch_with(PitchWriter::Anthropic, &server, |s| {
        s.providers.rate_limits.anthropic = vec![Limit {
            per: Per::Day,
            limit: 1,
        }];
    })
    .await;
    assert_eq!(first.unwrap().writer, "anthropic");
    let second = leads(&ctx, 2).await.remove(1);
    let e = cep_workers::layers::pitch_generation::handle(
        &ctx,
        PitchJob {
            prospect_id: second,
        },
    )
    .await
    .unwrap_err();
    let midnight = chrono::Utc.with_ymd_and_hms(2026, 3, 11, 0, 0, 0).unwrap();
    assert_eq!(
        e.disposition(),
        Disposition::RetryAt(midnight.timestamp_millis()),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("anthropic: the fleet's day budget is spent"),
        "{e}"
    );
}

#[tokio::test]
async fn a_writer_whose_key_is_missing_refuses_to_start() {
    let mut s = settings();
    s.providers.llm.writer = PitchWriter::Anthropic;
    let e = s
        .check_secrets(&Secrets::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("providers.llm.writer") && e.contains("ANTHROPIC_API_KEY"),
        "{e}"
    );
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
