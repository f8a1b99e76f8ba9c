//! `cep architecture check` as an operator runs it: the shipped configuration and
//! manifests pass, a broken design fails naming what is wrong, the record is stored
//! with its findings linked, and an LLM (a local fake of Anthropic) reviews it.

use crate::helpers::*;
use cep_shared::Settings;
use cep_shared::store::Store;
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn repo(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn check(dir: &TempDir, config: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec!["--config", config, "architecture", "check", "--json"];
    args.extend_from_slice(extra);
    let mut cmd = cep_embedded(dir, &args);
    cmd.env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY");
    cmd
}

fn record(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON record ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn store_in(dir: &TempDir) -> Store {
    let s = Settings {
        data_dir: dir.0.clone(),
        ..Settings::default()
    };
    Store::open(&s).await.unwrap()
}

#[tokio::test]
async fn the_shipped_design_passes_and_its_record_is_stored_with_linked_findings() {
    let dir = TempDir::new();
    let files = dir.0.join("records");
    let out = check(
        &dir,
        &repo("config.yaml"),
        &[
            "--manifests",
            &repo("deploy/k8s"),
            "--out",
            files.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let r = record(&out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(r["verdict"], "pass", "{:#}", r["findings"]);
    assert!(r["review"].is_null(), "no key, no review");
    let grace = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["detail"].as_str().unwrap().contains("grace period"))
        .expect("the drain deadline is compared with the manifests");
    assert!(grace["detail"].as_str().unwrap().contains("45 s"));

    let id = r["id"].as_str().unwrap();
    let md = std::fs::read_to_string(files.join(format!("{id}.md"))).unwrap();
    assert!(md.contains("```mermaid\nflowchart LR"));
    assert!(md.contains("booking -->|\"a meeting won (the operator records it)\"| onboarding"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(files.join(format!("{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(json["id"], id);

    let store = store_in(&dir).await;
    let (document,): (String,) = sqlx::query_as("SELECT document FROM architectures WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert_eq!(stored["markdown"], r["markdown"]);
    let (linked,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM test_results WHERE architecture_id = $1 AND outcome = 'pass'",
    )
    .bind(id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(linked as usize, r["findings"].as_array().unwrap().len());
}

#[tokio::test]
async fn a_drain_longer_than_the_pods_grace_fails_naming_the_manifest() {
    let dir = TempDir::new();
    let manifests = dir.0.join("k8s");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("worker.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      terminationGracePeriodSeconds: 20\n",
    )
    .unwrap();
    let config = dir.0.join("config.yaml");
    std::fs::write(&config, "worker:\n  shutdown_deadline_seconds: 35\n").unwrap();
    let out = check(
        &dir,
        config.to_str().unwrap(),
        &["--manifests", manifests.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let r = record(&out);
    assert_eq!(r["verdict"], "fail");
    let failed: Vec<&serde_json::Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["key"], "worker.shutdown_deadline_seconds");
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("worker.yaml: 20 s")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the design fails its strict rules"));
    // A failing design is still recorded: the record is the audit trail.
    let store = store_in(&dir).await;
    let (outcome,): (String,) = sqlx::query_as(
        "SELECT outcome FROM test_results WHERE architecture_id = $1 AND subject = 'architecture:deadlines' AND outcome = 'fail'",
    )
    .bind(r["id"].as_str().unwrap())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "fail");
}

#[test]
fn an_invalid_configuration_reports_every_broken_part_and_is_not_stored() {
    let dir = TempDir::new();
    let config = dir.0.join("config.yaml");
    std::fs::write(
        &config,
        "containers:\n  sales:\n    weight: 0.5\n    timescale: daily\n    schedule: '0 0 6 * * Sat *'\n",
    )
    .unwrap();
    let out = check(&dir, config.to_str().unwrap(), &[]).output().unwrap();
    assert!(!out.status.success());
    let r = record(&out);
    let keys: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "fail")
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"containers"), "{keys:?}");
    assert!(keys.contains(&"containers.sales.schedule"), "{keys:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("the record was not stored"));
    // The store is never opened for an invalid configuration.
    let files: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["config.yaml"]);
}

#[tokio::test]
async fn an_llm_reviews_the_record_and_a_bad_review_is_kept_as_its_reason() {
    let server = MockServer::start().await;
    let answer = serde_json::json!({
        "summary": "Sound design; outreach capacity is the bottleneck.",
        "concerns": ["The email cap of 50 a day limits a growing pipeline."]
    });
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-ant-test"))
        .and(body_partial_json(
            serde_json::json!({ "model": "claude-3-sonnet" }),
        ))
        .and(body_string_contains("CEP fleet design record"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "content": [{ "type": "text", "text": answer.to_string() }],
            "stop_reason": "end_turn"
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "content": [{ "type": "text", "text": "I would rather not." }],
            "stop_reason": "end_turn"
        })))
        .mount(&server)
        .await;

    let dir = TempDir::new();
    let run = || {
        let mut cmd = check(&dir, &repo("config.yaml"), &[]);
        cmd.env("ANTHROPIC_API_KEY", "sk-ant-test")
            .env("CEP__PROVIDERS__LLM__ANTHROPIC_URL", server.uri());
        cmd.output().unwrap()
    };
    let out = run();
    assert!(out.status.success());
    let r = record(&out);
    assert_eq!(r["review"]["by"], "anthropic");
    assert_eq!(
        r["review"]["summary"],
        "Sound design; outreach capacity is the bottleneck."
    );
    assert!(
        r["markdown"]
            .as_str()
            .unwrap()
            .contains("- The email cap of 50 a day limits a growing pipeline.")
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("sk-ant-test"),
        "the key never reaches the output"
    );

    let out = run();
    assert!(
        out.status.success(),
        "a failed review does not fail the check"
    );
    let r = record(&out);
    assert!(r["review"]["summary"].is_null());
    assert!(
        r["review"]["error"]
            .as_str()
            .unwrap()
            .contains("not the JSON asked for")
    );
}
