//! The alert rules: generated from config.yaml, committed, valid for Prometheus and
//! behaving as their unit tests say (`promtool`, from Debian's `prometheus` package,
//! which `.ci/run` installs; a missing promtool fails the test).

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
