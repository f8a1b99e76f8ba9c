//! The LLM pitch writers (Ollama, Anthropic, OpenAI-compatible) against local fakes:
//! what each is sent, and the template writer standing in when one fails.

use crate::helpers::*;
use cep_shared::config::{Limit, Per, PitchWriter};
use cep_shared::jobs::PitchJob;
use cep_shared::{Clock, Secrets};
use cep_workers::{Ctx, Disposition, JobError};
use chrono::TimeZone;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn noon() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
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
