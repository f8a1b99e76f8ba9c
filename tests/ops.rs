//! Health and metrics as a platform engineer sees them: `/readyz` answers for the store
//! and the queue, `/metrics` counts real jobs and shows queue depth and Φ_sync.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cep_shared::jobs::ProspectingJob;
use cep_shared::queue::NewJob;
use cep_shared::{Clock, JobKind, Layer};
use chrono::TimeZone;
use tower::ServiceExt;

async fn get(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The value of one exposed series, by its full `name{labels}` text.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_real_jobs_and_show_queue_depth_and_phi() {
    let clock = Clock::simulated(chrono::Utc.with_ymd_and_hms(2026, 1, 5, 6, 0, 0).unwrap());
    let h = harness(Backend::Fleet, settings(), clock).await;
    let app = cep_workers::http::router(h.ctx.clone());
    let before = get(&app, "/metrics").await.1;
    let ok = |m: &str| {
        value(
            m,
            r#"cep_jobs_total{outcome="succeeded",queue="prospecting"}"#,
        )
    };
    let job = ProspectingJob {
        period: "2026-01-05".into(),
        location: "Denver, CO".into(),
        category: "roofing".into(),
        max_prospects: Some(4),
    };
    h.ctx
        .queue
        .push(NewJob::new(JobKind::Layer(Layer::Prospecting), &job, 0))
        .await
        .unwrap();
    // A job due later waits in the queue: the sampler shows it as scheduled.
    h.ctx
        .queue
        .push(NewJob::new(
            JobKind::AGGREGATION,
            &serde_json::json!({"period": "later"}),
            h.ctx.now() + 3_600_000,
        ))
        .await
        .unwrap();
    drain(&h.ctx).await;
    cep_workers::handle(&h.ctx, JobKind::AGGREGATION, r#"{"period":"2026-01-05"}"#)
        .await
        .unwrap();
    cep_workers::http::ops::sample_queue(&h.ctx).await.unwrap();
    let after = get(&app, "/metrics").await.1;
    assert!(
        ok(&after).unwrap_or(0.0) >= ok(&before).unwrap_or(0.0) + 1.0,
        "{after}"
    );
    assert!(after.contains("cep_job_duration_seconds_bucket{queue=\"prospecting\",le=\"0.005\"}"));
    assert_eq!(
        value(
            &after,
            r#"cep_queue_jobs{queue="aggregation",state="scheduled"}"#
        ),
        Some(1.0)
    );
    assert!(value(&after, "cep_last_aggregation_timestamp_seconds").unwrap() > 1.7e9);
    assert!(after.contains("cep_phi_sync "));
    assert!(after.contains("cep_queue_oldest_waiting_age_seconds{queue=\"outreach\"}"));
    // Every exported name is a cep_* name.
    for name in cep_shared::metrics::get().names() {
        assert!(name.starts_with("cep_"), "{name}");
    }
    if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn readyz_answers_for_store_and_queue_and_refuses_an_unmigrated_store() {
    for backend in [Backend::Embedded, Backend::Fleet] {
        let h = harness(backend, settings(), Clock::System).await;
        let app = cep_workers::http::router(h.ctx.clone());
        assert_eq!(get(&app, "/healthz").await, (StatusCode::OK, "ok".into()));
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
        assert!(
            body.contains("store: ok") && body.contains("queue: ok"),
            "{body}"
        );
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
            .execute(h.ctx.store.pool())
            .await
            .unwrap();
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("store: FAILED") && body.contains("cep migrate"),
            "{body}"
        );
        if let cep_shared::queue::Queue::Redis(r) = &h.ctx.queue {
            r.purge().await.unwrap();
        }
    }
}

#[test]
fn cep_health_fails_on_an_unmigrated_store_and_passes_after_migrate() {
    let dir = TempDir::new();
    let cep = |args: &[&str]| cep_embedded(&dir, args).output().expect("run cep");
    let out = cep(&["health"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAILED  store") && text.contains("cep migrate"),
        "{text}"
    );
    assert!(cep(&["migrate"]).status.success());
    let out = cep(&["health"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("coherence: Φ_sync no data"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_aggregate_pushes_its_metrics_to_the_pushgateway() {
    let pushed: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let sink = pushed.clone();
    let app = axum::Router::new().route(
        "/metrics/job/{job}/instance/{instance}",
        axum::routing::put(
            move |axum::extract::Path((job, _instance)): axum::extract::Path<(String, String)>,
                  body: String| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push((job, body));
                    ""
                }
            },
        ),
    );
    let port = serve_locally(app).await;
    let dir = TempDir::new();
    let mut cmd = cep_embedded(&dir, &["aggregate"]);
    cmd.env(
        "CEP__SERVER__PUSHGATEWAY_URL",
        format!("http://127.0.0.1:{port}"),
    );
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = pushed.lock().unwrap().clone();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].0, "cep_aggregate");
    assert!(
        value(&pushed[0].1, "cep_last_aggregation_timestamp_seconds").unwrap() > 1.7e9,
        "{}",
        pushed[0].1
    );
}
