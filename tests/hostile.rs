//! Hostile input at the fleet's edges: each is refused with a clear error, costs bounded
//! work, changes nothing and leaks nothing.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cep_shared::{Clock, Secrets};
use std::process::Command;
use tower::ServiceExt;

async fn text(r: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn a_signature_header_of_thousands_of_values_is_refused_before_any_mac_and_big_bodies_unread()
{
    let secrets = Secrets {
        calendly_signing_key: Some("calendly-key".into()),
        ..Secrets::default()
    };
    let h = harness_with(Backend::Embedded, settings(), secrets, Clock::System).await;
    let app = cep_workers::http::router(h.ctx.clone());
    // What froze the server: a body near the old 2 MB limit and 3,000 signatures.
    let now = chrono::Utc::now().timestamp();
    let header = format!("t={now}{}", ",v1=00".repeat(3000));
    let post = |uri: &str, header: &str, body: Vec<u8>| {
        Request::post(uri)
            .header("Calendly-Webhook-Signature", header)
            .body(Body::from(body))
            .unwrap()
    };
    let small = vec![b'{'; 60 * 1024];
    let r = app
        .clone()
        .oneshot(post("/webhooks/calendly", &header, small))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(text(r).await.contains("longer than 1 KiB"));
    // A body past what Calendly sends is refused unread.
    let big = vec![b'{'; 1024 * 1024];
    let signed = cep_workers::clients::signature::sign("calendly-key", now, &big);
    let r = app
        .clone()
        .oneshot(post("/webhooks/calendly", &signed, big))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A stale signature is called stale, without telling how far our clock is.
    let stale = cep_workers::clients::signature::sign("calendly-key", now - 12_345, b"{}");
    let r = app
        .oneshot(post("/webhooks/calendly", &stale, b"{}".to_vec()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let said = text(r).await;
    assert!(said.contains("stale") && !said.contains("1234"), "{said}");
    assert_eq!(
        h.ctx.queue.stats(&["booking"]).await.unwrap()[0].ready,
        0,
        "nothing was enqueued"
    );
}

fn cep(args: &[&str], dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cep"));
    c.args(args)
        .current_dir(dir)
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env("CEP__DATA_DIR", dir.join("data"))
        .env("RUST_LOG", "error");
    c
}

#[test]
fn cep_config_hides_the_passwords_in_urls_and_fails_when_a_switched_on_provider_has_no_key() {
    let dir = TempDir::new();
    let out = cep(&["config"], &dir.0)
        .env("REDIS_URL", "redis://:redis-s3cret@127.0.0.1:6379/0")
        .env(
            "DATABASE_URL",
            "postgres://cep:pg-s3cret@127.0.0.1/cep?password=query-s3cret&sslmode=prefer",
        )
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("postgres://cep:***@127.0.0.1/cep?password=***&sslmode=prefer"),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
    // Switched on without its key: refused, as `cep serve` refuses it.
    let out = cep(&["config"], &dir.0)
        .env("CEP__PROVIDERS__STRIPE__CREATE_INVOICES", "true")
        .env_remove("STRIPE_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("providers.stripe.create_invoices") && err.contains("STRIPE_API_KEY"),
        "{err}"
    );
}

#[test]
fn cep_layer_refuses_a_period_that_is_not_one_and_an_endless_input_file() {
    let dir = TempDir::new();
    let input = dir.0.join("finance.json");
    for period in ["9999-99", "2026-13"] {
        std::fs::write(&input, format!(r#"{{"period": "{period}"}}"#)).unwrap();
        let out = cep(&["layer", "finance", "--input"], &dir.0)
            .arg(&input)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{period} ran");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("period `{period}` is not a day")),
            "{err}"
        );
    }
    let out = cep(&["layer", "prospecting", "--input", "/dev/zero"], &dir.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than 1 MiB"), "{err}");
}

/// Reads until the server closes the connection or answers; what it said, and how long
/// that took.
async fn until_closed(s: &mut tokio::net::TcpStream) -> (String, std::time::Duration) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server held a stalled connection for 10 s"),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_surplus_clients_are_cut_off_and_the_server_keeps_answering() {
    use tokio::io::AsyncWriteExt;
    let mut s = settings();
    s.server.max_connections = 4;
    s.server.header_timeout_seconds = 1;
    s.server.request_timeout_seconds = 2;
    let h = harness(Backend::Embedded, s, Clock::System).await;
    let server = Served::fleet(&h.ctx).await;
    let addr = server.addr();
    let connect = || tokio::net::TcpStream::connect(addr);
    let refused = || {
        cep_shared::metrics::get()
            .http_refused
            .with_label_values(&["connections"])
            .get()
    };

    // Headers a byte at a time, never finished: cut off after the header timeout.
    let mut slow = connect().await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let (_, after) = until_closed(&mut slow).await;
    assert!(
        after < std::time::Duration::from_secs(5),
        "held for {after:?}"
    );

    // Four stalled connections fill the server; a fifth is closed at once and counted.
    let before = refused();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(connect().await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut surplus = connect().await.unwrap();
    let (said, _) = until_closed(&mut surplus).await;
    assert_eq!(said, "", "a connection past the cap is closed unanswered");
    assert_eq!(refused(), before + 1);

    // The stalled ones time out, and the server answers again.
    for mut s in stalled {
        until_closed(&mut s).await;
    }
    let mut ok = connect().await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (said, _) = until_closed(&mut ok).await;
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");

    // A body that never finishes arriving: 408 once the request timeout passes.
    let mut trickle = connect().await.unwrap();
    trickle
        .write_all(
            b"POST /webhooks/calendly HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"",
        )
        .await
        .unwrap();
    let (said, after) = until_closed(&mut trickle).await;
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(
        after < std::time::Duration::from_secs(5),
        "held for {after:?}"
    );

    server.stop().await;
}

/// The status line and body of `GET path` on `addr`.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_listener_the_public_one_serves_neither_metrics_nor_readiness() {
    let mut s = settings();
    s.server.bind = "127.0.0.1:0".into();
    s.server.metrics_bind = Some("127.0.0.2:0".into());
    let h = harness(Backend::Embedded, s, Clock::System).await;
    let server = Served::start(
        &h.ctx,
        cep_workers::http::bind_role(&h.ctx, true).await.unwrap(),
    );
    let (public, metrics) = (server.addrs[0], server.addrs[1]);

    for path in ["/metrics", "/readyz", "/healthz"] {
        assert_eq!(raw_get(public, path).await.0, 404, "{path} is public");
        assert_eq!(raw_get(metrics, path).await.0, 200, "{path}");
    }
    assert!(
        raw_get(metrics, "/metrics")
            .await
            .1
            .contains("cep_jobs_total")
    );
    // The public routes are on the public listener only.
    assert_ne!(raw_get(public, "/unsubscribe/msg_1").await.0, 404);
    assert_eq!(raw_get(metrics, "/unsubscribe/msg_1").await.0, 404);

    // A worker's or scheduler's listener, with the key set, serves the ops endpoints
    // on it alone.
    let ops = cep_workers::http::bind_role(&h.ctx, false).await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].1.local_addr().unwrap().ip(), metrics.ip());
    server.stop().await;
}

#[tokio::test]
async fn a_client_past_its_rate_limit_gets_429_on_the_posting_routes_and_reaches_no_handler() {
    let mut s = settings();
    s.server.rate_limit.per_minute = 6;
    s.server.rate_limit.burst = 3;
    let secrets = Secrets {
        inbound_token: Some("inbound-key".into()),
        ..Secrets::default()
    };
    let h = harness_with(Backend::Embedded, s, secrets, Clock::System).await;
    let app = cep_workers::http::router(h.ctx.clone());
    let refused = || {
        cep_shared::metrics::get()
            .http_refused
            .with_label_values(&["rate_limited"])
            .get()
    };
    let before = refused();
    let inbound = || {
        Request::post("/inbound/email")
            .header("authorization", "Bearer inbound-key")
            .body(Body::from("From: a@b.example\r\nSubject: hi\r\n\r\nhello"))
            .unwrap()
    };
    for _ in 0..3 {
        let r = app.clone().oneshot(inbound()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // The budget is the client's, across the routes: the webhooks refuse it too.
    for uri in ["/inbound/email", "/webhooks/calendly", "/webhooks/stripe"] {
        let req = if uri == "/inbound/email" {
            inbound()
        } else {
            Request::post(uri).body(Body::from("{}")).unwrap()
        };
        let r = app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{uri}");
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=10).contains(&wait), "Retry-After {wait}");
    }
    assert!(refused() >= before + 3);
    // Unsubscribe links and the ops endpoints are not limited.
    for uri in ["/unsubscribe/msg_1", "/healthz"] {
        let r = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{uri}");
    }

    // Over TCP the budget is the client address's: one client spent, another is served.
    let server = Served::fleet(&h.ctx).await;
    let post_from = |source: &'static str| {
        let addr = server.addr();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
            let mut s = socket.connect(addr).await.unwrap();
            s.write_all(b"POST /webhooks/calendly HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out.split(' ').nth(1).unwrap().parse::<u16>().unwrap()
        }
    };
    let mut first = Vec::new();
    for _ in 0..4 {
        first.push(post_from("127.0.0.1").await);
    }
    assert!(first[..3].iter().all(|s| *s != 429), "{first:?}");
    assert_eq!(first[3], 429, "{first:?}");
    assert_ne!(
        post_from("127.0.0.2").await,
        429,
        "another client has its own budget"
    );
    server.stop().await;
}

#[test]
fn a_role_that_sends_refuses_to_start_live_with_placeholders_and_cep_config_lists_them() {
    let dir = TempDir::new();
    let config = dir.0.join("config.yaml");
    std::fs::write(
        &config,
        "layers:\n  outreach:\n    dry_run: false\nproviders:\n  smtp:\n    host: smtp.oakgrowth.co\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        cep_embedded(&dir, &all)
            .env_remove("CEP_UNSUBSCRIBE_KEY")
            .output()
            .unwrap()
    };
    // `cep config` prints the settings, then every item not ready, and fails.
    let out = run(&["config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "layers.outreach.dry_run",
        "layers.outreach.from_name",
        "layers.outreach.from_address",
        "layers.outreach.postal_address",
        "server.public_url",
    ] {
        assert!(err.contains(key), "{key} not listed:\n{err}");
    }
    // A worker that sends refuses to start, naming the first; it never reaches the store.
    for role in [&["worker", "--layers", "outreach"][..], &["run"]] {
        let out = run(role);
        assert!(!out.status.success(), "{role:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("CEP_UNSUBSCRIBE_KEY"), "{role:?}: {err}");
    }
}
