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
