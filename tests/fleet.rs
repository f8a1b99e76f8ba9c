//! The fleet end to end as a platform engineer runs it: a scheduler and two worker
//! processes on Redis + Postgres, a real Prometheus (Debian's package) scraping them on
//! loopback. Prometheus sees Φ_sync and job metrics from both workers; one worker gets
//! SIGTERM under load and every job still completes exactly once. Two worker processes
//! share one provider's rate limit through Redis and defer what it does not allow.

use crate::helpers::*;
use cep_shared::jobs::ProspectingJob;
use cep_shared::queue::NewJob;
use cep_shared::{Clock, JobKind, Layer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cep(role: &[&str], port: u16, db: &str, prefix: &str, dir: &std::path::Path) -> Proc {
    cep_with(role, port, db, prefix, dir, &[])
}

fn cep_with(
    role: &[&str],
    port: u16,
    db: &str,
    prefix: &str,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_cep"))
            .args(role)
            .envs(env.iter().copied())
            .env("REDIS_URL", redis_url())
            .env("DATABASE_URL", db)
            .env("CEP__QUEUE__KEY_PREFIX", prefix)
            .env("CEP__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("CEP__SERVER__SAMPLE_SECONDS", "1")
            .env("CEP__WORKER__CONCURRENCY", "1")
            .env("CEP__DATA_DIR", dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cep"),
    )
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query.
fn query(prom: u16, q: &str) -> Vec<serde_json::Value> {
    let body = http_get(prom, &format!("/api/v1/query?query={}", encode(q))).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn wait_for(what: &str, deadline: Instant, mut ok: impl FnMut() -> bool) {
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_fleet_and_a_sigterm_under_load_loses_nothing() {
    let (db, store) = fresh_postgres_with_url().await;
    let s = settings();
    let prefix = s.queue.key_prefix.clone();
    let queue = redis_queue(&s, Clock::System).await;
    let dir = TempDir::new();

    // Load: one prospecting job per city × category × day, 12 days (1,632 jobs) now and
    // 12 more just before the SIGTERM, and one aggregation so Φ_sync has a stored value.
    let (mut jobs, more) = (prospecting_load(5..17, 2), prospecting_load(17..29, 2));
    let total = (jobs.len() + more.len()) as i64;
    jobs.push(NewJob::new(
        JobKind::AGGREGATION,
        &serde_json::json!({"period": "2026-01-10"}),
        0,
    ));

    let (pw1, pw2, ps, pp) = (free_port(), free_port(), free_port(), free_port());
    let layers = ["worker", "--layers", "prospecting,aggregation"];
    let mut w1 = cep(&layers, pw1, &db, &prefix, &dir.0);
    let _w2 = cep(&layers, pw2, &db, &prefix, &dir.0);
    // The scheduler looks back an hour when it starts, so run between 06:00 and 07:00 UTC
    // it would add the day's sales round to the counted load: its containers' rounds are
    // set in a year gone by, and it is here to be scraped.
    let past = [
        ("CEP__CONTAINERS__SALES__SCHEDULE", "0 0 6 * * * 2025"),
        (
            "CEP__CONTAINERS__OPERATIONS__SCHEDULE",
            "0 0 5 * * Mon 2025",
        ),
        ("CEP__CONTAINERS__FINANCE__SCHEDULE", "0 0 4 1 * * 2025"),
    ];
    let _sched = cep_with(&["scheduler"], ps, &db, &prefix, &dir.0, &past);

    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cep\n    static_configs:\n      - targets: ['127.0.0.1:{pw1}', '127.0.0.1:{pw2}', '127.0.0.1:{ps}']\n"
        ),
    )
    .unwrap();
    let _prom = Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pp}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus is needed (apt-get install prometheus): {e}")),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    wait_for("prometheus to be ready", deadline, || {
        http_get(pp, "/-/ready").is_some_and(|b| b.contains("Ready"))
    });
    queue.push_many(jobs).await.unwrap();

    // Both workers' job counters reach Prometheus while the load runs.
    let succeeded = r#"cep_jobs_total{queue="prospecting",outcome="succeeded"} > 0"#;
    wait_for("job metrics from both workers", deadline, || {
        query(pp, succeeded).len() == 2
    });
    let instances: std::collections::BTreeSet<String> = query(pp, succeeded)
        .iter()
        .map(|r| r["metric"]["instance"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(instances.len(), 2, "{instances:?}");

    // SIGTERM one worker under load: it stops fetching, finishes or hands back its jobs.
    // The second half of the load goes in first, so the first half finishing while
    // Prometheus scraped cannot leave the workers idle at the SIGTERM.
    queue.push_many(more).await.unwrap();
    let (done,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM job_outcomes WHERE queue = 'prospecting'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(done < total, "the load was still running at SIGTERM");
    let status = Command::new("kill")
        .args(["-TERM", &w1.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = w1.0.wait().unwrap();
    assert!(
        exit.success(),
        "a terminated worker drains and exits 0, got {exit}"
    );

    // The other worker finishes everything; each job's effect is recorded once.
    loop {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM job_outcomes WHERE queue = 'prospecting' AND outcome = 'succeeded'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if n == total {
            break;
        }
        assert!(Instant::now() < deadline, "{n} of {total} jobs finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (logs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM research_logs")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(logs, total, "one research log per run, none twice");
    let (failed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM job_outcomes WHERE outcome <> 'succeeded'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(failed, 0);

    // Prometheus answers for Φ_sync (the stored aggregation, from every process).
    wait_for("cep_phi_sync in Prometheus", deadline, || {
        !query(pp, "cep_last_aggregation_timestamp_seconds > 0").is_empty()
    });
    assert!(!query(pp, "cep_phi_sync").is_empty());
    let stats = queue.stats(&["prospecting"]).await.unwrap();
    assert_eq!((stats[0].ready, stats[0].running, stats[0].dead), (0, 0, 0));
    if let cep_shared::queue::Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}

/// Answers like Overpass and notes when each request arrived.
struct TimedOverpass(std::sync::Arc<std::sync::Mutex<Vec<chrono::DateTime<chrono::Utc>>>>);

impl wiremock::Respond for TimedOverpass {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.0.lock().unwrap().push(chrono::Utc::now());
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({ "elements": [
            {"type": "node", "id": 1, "lat": 25.77, "lon": -80.19,
             "tags": {"amenity": "dentist", "name": "Bayfront Dental"}}
        ] }))
    }
}

/// A metric's value on one process's `/metrics` (0 when absent).
fn metric(port: u16, series: &str) -> f64 {
    http_get(port, "/metrics")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_share_one_rate_limit_and_defer_what_it_does_not_allow() {
    let server = wiremock::MockServer::start().await;
    let arrivals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(TimedOverpass(arrivals.clone()))
        .mount(&server)
        .await;
    let (db, store) = fresh_postgres_with_url().await;
    let s = settings();
    let prefix = s.queue.key_prefix.clone();
    let queue = redis_queue(&s, Clock::System).await;
    let dir = TempDir::new();
    let config = dir.0.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "queue:\n  fetch_batch: 1\nproviders:\n  prospects:\n    source: overpass\n    overpass_url: {}\n  rate_limits:\n    overpass:\n      - {{per: minute, limit: 3}}\n",
            server.uri()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (p1, p2) = (free_port(), free_port());
    let role = ["--config", config, "worker", "--layers", "prospecting"];
    let _w1 = cep(&role, p1, &db, &prefix, &dir.0);
    let _w2 = cep(&role, p2, &db, &prefix, &dir.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_for("both workers ready", deadline, || {
        [p1, p2]
            .iter()
            .all(|p| http_get(*p, "/readyz").is_some_and(|b| b.contains("ok")))
    });

    // Eight searches, each a different city: none is answered from the cache.
    let cities = cep_workers::layers::prospecting::directory::CITIES;
    let jobs: Vec<NewJob> = (0..8)
        .map(|i| {
            let job = ProspectingJob {
                period: "2026-01-05".into(),
                location: cities[i].0.into(),
                category: "dental".into(),
                max_prospects: Some(1),
            };
            NewJob::new(JobKind::Layer(Layer::Prospecting), &job, 0)
        })
        .collect();
    queue.push_many(jobs).await.unwrap();

    let exhausted = r#"cep_provider_calls_total{provider="overpass",result="budget_exhausted"}"#;
    let ok = r#"cep_provider_calls_total{provider="overpass",result="ok"}"#;
    wait_for("the budget to run out", deadline, || {
        metric(p1, exhausted) + metric(p2, exhausted) >= 1.0
    });
    // Long enough for a busy loop to show, short of most of a window.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let arrivals = arrivals.lock().unwrap().clone();
    let mut per_minute = std::collections::BTreeMap::new();
    for t in &arrivals {
        *per_minute.entry(t.timestamp() / 60).or_insert(0) += 1;
    }
    assert!(
        per_minute.values().all(|n| *n <= 3),
        "at most 3 Overpass calls in any minute, fleet-wide: {per_minute:?}"
    );
    assert!(arrivals.len() >= 3, "the budget was used: {arrivals:?}");
    let calls = metric(p1, ok) + metric(p2, ok);
    assert_eq!(
        calls as usize,
        arrivals.len(),
        "every call the workers made was counted"
    );
    for p in [p1, p2] {
        assert!(
            metric(p, ok) + metric(p, exhausted) >= 1.0,
            "worker on :{p} took part"
        );
    }

    // What the budget did not allow waits for the next window: not failed, not dead.
    let (succeeded, failed): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE outcome = 'succeeded'), COUNT(*) FILTER (WHERE outcome <> 'succeeded') FROM job_outcomes WHERE queue = 'prospecting'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(failed, 0);
    assert_eq!(succeeded as usize, arrivals.len());
    let stats = queue.stats(&["prospecting"]).await.unwrap();
    assert_eq!(stats[0].dead, 0);
    assert_eq!(
        stats[0].scheduled + stats[0].ready + stats[0].running,
        8 - succeeded as u64,
        "{stats:?}"
    );
    assert!(
        stats[0].scheduled >= 1,
        "deferred to the next window: {stats:?}"
    );
    if let cep_shared::queue::Queue::Redis(r) = &queue {
        r.purge().await.unwrap();
    }
}
