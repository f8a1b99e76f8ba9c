//! The research engine against local fakes of SearxNG, DuckDuckGo, Firecrawl and an
//! Ollama summary: every fact cites a page that was read, results are cached and logged.

use crate::helpers::*;
use cep_shared::config::{PitchWriter, ResearchSearch};
use cep_shared::{Clock, Secrets};
use cep_workers::engines::research;
use wiremock::matchers::{
    body_partial_json, body_string_contains, header, method, path, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn search_scrape_and_summary_cite_every_fact_and_are_cached() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .and(query_param("format", "json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "results": [
            { "url": "https://reviews.example/oak", "title": "Oak Dental reviews", "content": "4.8 stars from 120 patients." },
            { "url": "https://news.example/oak", "title": "Oak Dental opens second office", "content": "Opened in 2025." }
        ] })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/scrape"))
        .and(header("authorization", "Bearer fc-test"))
        .and(body_partial_json(serde_json::json!({ "formats": ["markdown"] })))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "success": true,
            "data": { "markdown": "# Oak Dental\nImplants and family care.", "metadata": { "title": "Oak Dental", "description": "Family dentist" } }
        })))
        .mount(&server)
        .await;
    let answer = serde_json::json!({ "facts": [
        { "fact": "Rated 4.8 by 120 patients.", "source": "https://reviews.example/oak" },
        { "fact": "Offers implants.", "source": "https://oak.example/" },
        { "fact": "Open on Sundays.", "source": "https://made-up.example/" }
    ] });
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "message": { "role": "assistant", "content": answer.to_string() }, "done": true, "done_reason": "stop"
        })))
        .mount(&server)
        .await;

    let mut s = settings();
    s.engines.research.provider = ResearchSearch::Searxng;
    s.engines.research.searxng_url = server.uri();
    s.engines.research.firecrawl = true;
    s.engines.research.firecrawl_url = server.uri();
    s.providers.llm.writer = PitchWriter::Ollama;
    s.providers.llm.ollama_url = server.uri();
    let secrets = Secrets {
        firecrawl_api_key: Some("fc-test".into()),
        ..Secrets::default()
    };
    let h = harness_with(Backend::Fleet, s, secrets, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let id = leads(ctx, 1).await.remove(0);
    sqlx::query("UPDATE prospects SET website = 'https://oak.example/' WHERE id = $1")
        .bind(&id)
        .execute(ctx.store.pool())
        .await
        .unwrap();

    let r = research::prospect(ctx, &id).await.unwrap();
    assert!(!r.cached);
    assert_eq!(r.summary_by, "ollama");
    assert_eq!(
        r.sources.len(),
        3,
        "the scraped site and two search results"
    );
    assert_eq!(r.sources[0].url, "https://oak.example/");
    let facts: Vec<&str> = r.findings.iter().map(|f| f.fact.as_str()).collect();
    assert_eq!(facts, ["Rated 4.8 by 120 patients.", "Offers implants."]);
    assert!(
        r.notes.iter().any(|n| n.contains("1 fact(s) dropped")),
        "{:?}",
        r.notes
    );
    assert_eq!(
        scalar(
            ctx,
            &format!("SELECT COUNT(*) FROM research_logs WHERE subject = '{id}'")
        )
        .await,
        1
    );
    let calls = server.received_requests().await.unwrap().len();
    assert_eq!(calls, 3);

    // Within the cache's lifetime nothing is called again.
    let again = research::prospect(ctx, &id).await.unwrap();
    assert!(again.cached);
    assert_eq!(again.findings, r.findings);
    assert_eq!(server.received_requests().await.unwrap().len(), calls);
}

#[tokio::test]
async fn a_rate_limited_duckduckgo_leaves_a_note_and_its_results_parse_otherwise() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/html/"))
        .respond_with(ResponseTemplate::new(202).set_body_string("<html>anomaly</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/html/"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"<a class="result__a" href="//duckduckgo.com/l/?uddg=https%3A%2F%2Foak.example%2F">Oak Dental</a>
               <a class="result__snippet" href="x">Family dentist in Miami.</a>"#,
        ))
        .mount(&server)
        .await;
    let mut s = settings();
    s.engines.research.provider = ResearchSearch::Duckduckgo;
    s.engines.research.duckduckgo_url = server.uri();
    s.engines.research.cache.profile_analysis_seconds = 0;
    let h = harness(Backend::Embedded, s, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let id = leads(ctx, 1).await.remove(0);

    let r = research::prospect(ctx, &id).await.unwrap();
    assert!(r.sources.is_empty());
    assert!(
        r.notes[0].contains("HTTP 202 (rate limited)"),
        "{:?}",
        r.notes
    );

    let r = research::prospect(ctx, &id).await.unwrap();
    assert_eq!(r.summary_by, "sources");
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].source, "https://oak.example/");
    assert_eq!(r.findings[0].fact, "Family dentist in Miami.");
}

fn ollama_says(answer: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "message": { "role": "assistant", "content": answer.to_string() }, "done": true, "done_reason": "stop"
    }))
}

#[tokio::test]
async fn the_llm_pitch_is_written_from_cited_facts_and_the_website_audit_and_cached_for_its_lifetime()
 {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "results": [
            { "url": "https://reviews.example/oak", "title": "Oak Dental reviews", "content": "4.8 stars from 120 patients." }
        ] })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .and(body_string_contains(
            "You summarize what public web pages say",
        ))
        .respond_with(ollama_says(serde_json::json!({ "facts": [
            { "fact": "Rated 4.8 by 120 patients.", "source": "https://reviews.example/oak" }
        ] })))
        .mount(&server)
        .await;
    // The pitch writer is answered only when its brief carries both the researched
    // fact with its source and what the audit found on the website.
    let pitch = serde_json::json!({
        "email": {"subject": "Your 4.8 stars, hidden on Maps", "body": "Patients rate you 4.8, yet your site is hard to use on a phone. A free audit? If this is not useful, reply and we will not write again."},
        "linkedin": {"body": "Your patients rate you 4.8; we help dentists show it on Maps."},
        "phone": {"body": "Hello, I am calling about your Google profile and your 4.8 rating."},
        "sms": {"body": "Free audit of your Google profile? Reply STOP to opt out."}
    });
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .and(body_string_contains("cold outreach"))
        .and(body_string_contains(
            "Rated 4.8 by 120 patients. (https://reviews.example/oak)",
        ))
        .and(body_string_contains(
            "the website is not laid out for phones",
        ))
        .respond_with(ollama_says(pitch.clone()))
        .mount(&server)
        .await;

    let mut s = settings();
    s.engines.research.provider = ResearchSearch::Searxng;
    s.engines.research.searxng_url = server.uri();
    s.engines.research.before_pitch = true;
    s.engines.research.cache.pitch_seconds = 2;
    s.providers.llm.writer = PitchWriter::Ollama;
    s.providers.llm.ollama_url = server.uri();
    let h = harness(Backend::Fleet, s, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let id = leads(ctx, 1).await.remove(0);
    // The testing engine's verdict on the site, as an earlier audit left it.
    let (signals,): (String,) = sqlx::query_as("SELECT signals FROM prospects WHERE id = $1")
        .bind(&id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    let mut signals: serde_json::Value = serde_json::from_str(&signals).unwrap();
    signals["website"] = serde_json::json!({
        "loads": true, "name_phone_city_match": true, "local_business_data": true,
        "mobile_viewport": false, "load_ms": 900
    });
    sqlx::query("UPDATE prospects SET signals = $2 WHERE id = $1")
        .bind(&id)
        .bind(signals.to_string())
        .execute(ctx.store.pool())
        .await
        .unwrap();

    let write = || async {
        sqlx::query("DELETE FROM pitches WHERE prospect_id = $1")
            .bind(&id)
            .execute(ctx.store.pool())
            .await
            .unwrap();
        cep_workers::layers::pitch_generation::handle(
            ctx,
            cep_shared::jobs::PitchJob {
                prospect_id: id.clone(),
            },
        )
        .await
        .unwrap()
    };
    let pitch_calls = || async {
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains("cold outreach"))
            .count()
    };

    let first = write().await;
    assert_eq!(first.writer, "ollama", "the brief reached the LLM");
    assert_eq!(
        first.pitches[0].subject.as_deref(),
        Some("Your 4.8 stars, hidden on Maps")
    );
    assert_eq!(pitch_calls().await, 1);

    // The same brief within the pitch cache's lifetime: no second LLM call.
    let second = write().await;
    assert_eq!(second.writer, "ollama");
    assert_eq!(second.pitches[0].body, first.pitches[0].body);
    assert_eq!(pitch_calls().await, 1);

    // After it, the LLM is asked again.
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    write().await;
    assert_eq!(pitch_calls().await, 2);
}
