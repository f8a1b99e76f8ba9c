//! Monitoring: the alert rules, generated from config.yaml, committed, valid for
//! Prometheus and behaving as their unit tests say (`promtool`, from Debian's
//! `prometheus` package, which `.ci/run` installs; a missing promtool fails the test);
//! and the Grafana dashboard, whose queries read exported metrics and whose bands are
//! the configured thresholds.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("promtool is needed (apt-get install prometheus): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_committed_rules_are_what_config_yaml_generates() {
    let settings = cep_shared::Settings::load(Some(&root().join("config.yaml"))).unwrap();
    let committed = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    assert_eq!(
        committed,
        cep::alerts::rules_yaml(&settings),
        "regenerate with `cargo run -- alerts > deploy/prometheus/alerts.yml`"
    );
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    let checked = promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = promtool(&["test", "rules", "deploy/prometheus/alerts.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_metric_a_rule_reads_is_one_the_fleet_exports() {
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    let exported = cep_shared::metrics::get().names();
    let mut seen = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if word.starts_with("cep_") {
            let base = word
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(exported.iter().any(|n| n == base), "{word} is not exported");
            seen += 1;
        }
    }
    assert!(seen > 5);
}

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("deploy/grafana/cep-fleet.json")).unwrap();
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// `cep_*` names an expression reads, with histogram suffixes removed.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("cep_"))
        .map(|w| {
            w.trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count")
                .to_owned()
        })
        .collect()
}

#[test]
fn every_dashboard_query_reads_metrics_the_fleet_exports() {
    let d = dashboard();
    assert_eq!(d["uid"], "cep-fleet");
    let exported = cep_shared::metrics::get().names();
    let mut queries = 0;
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr} reads no cep_ metric");
            for n in names {
                assert!(
                    exported.contains(&n),
                    "panel {}: {n} is not exported",
                    p["title"]
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 12, "{queries}");
}

#[test]
fn the_phi_panel_draws_the_configured_threshold_bands() {
    let settings = cep_shared::Settings::load(Some(&root().join("config.yaml"))).unwrap();
    let d = dashboard();
    let phi = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Φ_sync")
        .expect("a Φ_sync panel");
    let steps: Vec<f64> = phi["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect();
    let configured: Vec<f64> = settings
        .cep
        .phi_thresholds
        .ascending()
        .iter()
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(steps, configured);
    // Partial values are drawn apart from complete ones.
    let exprs: Vec<&str> = phi["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert_eq!(exprs.len(), 2, "{exprs:?}");
    assert!(
        exprs.iter().all(|e| e.contains("cep_phi_sync_complete")),
        "{exprs:?}"
    );
}

#[test]
fn the_grafana_provisioning_file_names_a_dashboard_provider() {
    let text = std::fs::read_to_string(root().join("deploy/grafana/provisioning.yaml")).unwrap();
    let v: serde_json::Value = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Yaml))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    assert_eq!(v["apiVersion"], 1);
    assert_eq!(v["providers"][0]["type"], "file");
    assert!(v["providers"][0]["options"]["path"].as_str().is_some());
}
