//! What a platform engineer watches: `/healthz` (alive), `/readyz` (store and queue
//! reachable, migrations applied), `/metrics` (Prometheus), and the queue sampler that
//! keeps the queue gauges current. Every long-running role serves these.

use crate::Ctx;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cep_shared::vocabulary::QueueState;
use cep_shared::{Container, JobKind};
use std::time::Duration;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

/// What `/readyz` and `cep health` check.
pub async fn readiness(ctx: &Ctx) -> Vec<(&'static str, Result<String, String>)> {
    let store = match ctx.store.migrations_applied().await {
        Ok(true) => Ok(format!(
            "{} reachable, migrations applied",
            ctx.store.kind_name()
        )),
        Ok(false) => Err("reachable, but not migrated to this version (run `cep migrate`)".into()),
        Err(e) => Err(e.to_string()),
    };
    let queue = match ctx.queue.stats(&[JobKind::AGGREGATION.queue()]).await {
        Ok(_) => Ok(format!("{} reachable", ctx.queue.backend_name())),
        Err(e) => Err(e.to_string()),
    };
    vec![("store", store), ("queue", queue)]
}

async fn readyz(State(ctx): State<Ctx>) -> impl IntoResponse {
    let checks = readiness(&ctx).await;
    let ok = checks.iter().all(|(_, r)| r.is_ok());
    let body: String = checks
        .iter()
        .map(|(name, r)| match r {
            Ok(s) => format!("{name}: ok ({s})\n"),
            Err(e) => format!("{name}: FAILED ({e})\n"),
        })
        .collect();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        cep_shared::metrics::get().render(),
    )
}

/// Reads queue depths, waiting ages and the latest stored Φ_sync into the gauges once.
/// Every process exports the same stored aggregation, whichever ran it.
pub async fn sample_queue(ctx: &Ctx) -> Result<(), cep_shared::queue::QueueError> {
    let latest: Result<Option<CoherenceRow>, sqlx::Error> = sqlx::query_as(
        "SELECT computed_at, phi_sync, sales_health, operations_health, finance_health
           FROM coherence_metrics ORDER BY computed_at DESC LIMIT 1",
    )
    .fetch_optional(ctx.store.pool())
    .await;
    match latest {
        Ok(Some(r)) => cep_shared::metrics::get().record_phi(
            r.phi_sync,
            &[
                (Container::Sales, r.sales_health),
                (Container::Operations, r.operations_health),
                (Container::Finance, r.finance_health),
            ],
            r.computed_at,
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the latest Φ_sync"),
    }
    let kinds: Vec<JobKind> = JobKind::all().collect();
    let queues: Vec<&str> = kinds.iter().map(|k| k.queue()).collect();
    let m = cep_shared::metrics::get();
    for s in ctx.queue.stats(&queues).await? {
        for (state, n) in [
            (QueueState::Ready, s.ready),
            (QueueState::Scheduled, s.scheduled),
            (QueueState::Running, s.running),
            (QueueState::Dead, s.dead),
        ] {
            m.queue_jobs
                .with_label_values(&[s.queue.as_str(), state.as_str()])
                .set(n as i64);
        }
    }
    let now = ctx.now();
    for (q, due) in ctx.queue.oldest_due(&queues).await? {
        let age = due.map_or(0.0, |d| ((now - d).max(0)) as f64 / 1000.0);
        m.oldest_waiting_age
            .with_label_values(&[q.as_str()])
            .set(age);
    }
    let limits = &ctx.settings.providers.rate_limits;
    for p in cep_shared::config::Provider::ALL {
        // Per-location budgets (GBP edits) have no single fleet-wide remainder.
        if p == cep_shared::config::Provider::GbpEdits {
            continue;
        }
        for (per, left) in ctx.queue.budget_left(p, "", limits.get(p)).await? {
            m.rate_limit_remaining
                .with_label_values(&[p.as_str(), per.as_str()])
                .set(left as i64);
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct CoherenceRow {
    computed_at: i64,
    phi_sync: Option<f64>,
    sales_health: Option<f64>,
    operations_health: Option<f64>,
    finance_health: Option<f64>,
}

/// Samples the queue every `every` until shutdown.
pub async fn sample_forever(
    ctx: Ctx,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = sample_queue(&ctx).await {
            tracing::warn!(error = %e, "could not sample the queue");
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Binds `addr`, naming the configuration `key` it comes from when it cannot.
pub async fn bind(addr: &str, key: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({key}): {e}"))?;
    tracing::info!(bind = %listener.local_addr()?, key, "http server listening");
    Ok(listener)
}

/// Serves each router on its listener, with the queue sampler beside them, until
/// shutdown.
pub async fn serve_on(
    ctx: Ctx,
    served: Vec<(Router, tokio::net::TcpListener)>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let m = cep_shared::metrics::get();
    m.init_labels();
    m.init_budgets(&ctx.settings.providers.rate_limits);
    let sampler = tokio::spawn(sample_forever(
        ctx.clone(),
        Duration::from_secs(ctx.settings.server.sample_seconds),
        shutdown.clone(),
    ));
    let limits = &ctx.settings.server;
    futures::future::join_all(
        served
            .into_iter()
            .map(|(router, listener)| serve_limited(limits, router, listener, shutdown.clone())),
    )
    .await;
    let _ = sampler.await;
    Ok(())
}

/// Serves HTTP/1.1 with what a public server needs against slow or many clients: at most
/// `server.max_connections` at once (one past it is closed at once), headers within
/// `server.header_timeout_seconds` (an idle kept-alive connection is closed after as
/// long), and each request, its body included, within `server.request_timeout_seconds`
/// (408). Refusals are counted in `cep_http_refused_total`, not logged one by one. On
/// shutdown it stops accepting and lets open connections finish their request.
async fn serve_limited(
    limits: &cep_shared::config::ServerSettings,
    router: Router,
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::sync::Arc;
    let refused = &cep_shared::metrics::get().http_refused;
    let request_timeout = Duration::from_secs(limits.request_timeout_seconds);
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            match tokio::time::timeout(request_timeout, next.run(req)).await {
                Ok(response) => response,
                Err(_) => {
                    cep_shared::metrics::get()
                        .http_refused
                        .with_label_values(&["timeout"])
                        .inc();
                    (
                        axum::http::StatusCode::REQUEST_TIMEOUT,
                        "the request took too long",
                    )
                        .into_response()
                }
            }
        },
    ));
    let header_timeout = Duration::from_secs(limits.header_timeout_seconds);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors, or the like: pause instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused.with_label_values(&["connections"]).inc();
            drop(stream);
            continue;
        };
        // Handlers see the client's address (the rate limits key on it).
        let service =
            hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
                router.clone(),
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req
                },
            ));
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopped(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    // Open connections finish the request they are serving, within its timeout.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(request_timeout, slots.acquire_many(all)).await;
}

/// Resolves once shutdown is signalled (or its sender is gone).
async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|v| *v).await;
}
