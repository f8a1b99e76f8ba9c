//! Traces over OTLP: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `cep` exports a span per
//! job (layer, job id, attempt), and a job's span continues the trace of the job that
//! enqueued it — across the queue. The collector here is a local OTLP/HTTP endpoint.

use crate::helpers::{TempDir, cep_embedded, serve_locally};
use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    attrs: Vec<(String, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_spans_reach_the_collector_and_continue_their_enqueuers_trace() {
    let received: Arc<Mutex<Vec<Span>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut spans = sink.lock().unwrap();
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            spans.push(Span {
                                name: s.name,
                                trace_id: s.trace_id,
                                span_id: s.span_id,
                                parent: s.parent_span_id,
                                attrs: s
                                    .attributes
                                    .into_iter()
                                    .map(|kv| {
                                        let v = match kv.value.and_then(|v| v.value) {
                                            Some(Value::StringValue(s)) => s,
                                            Some(Value::IntValue(i)) => i.to_string(),
                                            other => format!("{other:?}"),
                                        };
                                        (kv.key, v)
                                    })
                                    .collect(),
                            });
                        }
                    }
                }
                ""
            }
        }),
    );
    let port = serve_locally(app).await;

    let dir = TempDir::new();
    let mut cmd = cep_embedded(&dir, &["simulate", "--days", "2", "--json"]);
    cmd.env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{port}"),
    )
    .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let spans = received.lock().unwrap().clone();
    let named = |n: &str| spans.iter().filter(|s| s.name == n).collect::<Vec<_>>();
    let prospecting = named("job prospecting");
    let pitches = named("job pitch_generation");
    assert!(
        !prospecting.is_empty() && !pitches.is_empty(),
        "{} spans",
        spans.len()
    );
    // The span carries the job's queue, id and attempt.
    let attr = |s: &Span, k: &str| {
        s.attrs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        attr(pitches[0], "queue").as_deref(),
        Some("pitch_generation")
    );
    assert!(attr(pitches[0], "job_id").is_some_and(|id| !id.is_empty()));
    assert_eq!(attr(pitches[0], "attempt").as_deref(), Some("1"));
    // A pitch job, enqueued by a prospecting job, runs in that job's trace as its child.
    let linked = pitches.iter().any(|p| {
        prospecting
            .iter()
            .any(|q| q.trace_id == p.trace_id && q.span_id == p.parent)
    });
    assert!(
        linked,
        "no pitch_generation span continues a prospecting trace"
    );
}
