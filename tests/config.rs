//! The configuration users write: the checked-in file, strictness, validation.

use cep_shared::Settings;
use cep_shared::config::ConfigError;
use std::path::Path;

/// Removes the written file when dropped.
struct Written(std::path::PathBuf);

impl Drop for Written {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write(text: &str) -> (Written, std::path::PathBuf) {
    let p = std::env::temp_dir().join(format!(
        "cep-config-{}.yaml",
        cep_shared::queue::new_job_id()
    ));
    std::fs::write(&p, text).unwrap();
    (Written(p.clone()), p)
}

fn invalid_key(e: ConfigError) -> String {
    match e {
        ConfigError::Invalid { key, .. } => key,
        ConfigError::Load(m) => m,
    }
}

#[test]
fn the_checked_in_config_yaml_loads_and_documents_exactly_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let loaded = Settings::load_with_env(Some(&path), &[]).expect("config.yaml loads");
    assert_eq!(loaded, Settings::default());
}

#[test]
fn an_unknown_key_refuses_to_start_and_names_it() {
    let (_g, p) = write("worker:\n  concurrency: 4\n  concurency_typo: 8\n");
    let err = Settings::load_with_env(Some(&p), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("concurency_typo"), "{err}");
}

#[test]
fn weights_that_do_not_sum_to_one_are_refused() {
    let (_g, p) =
        write("containers:\n  sales: {weight: 0.5, timescale: daily, schedule: '0 0 6 * * * *'}\n");
    let err = Settings::load_with_env(Some(&p), &[]).unwrap_err();
    assert!(err.to_string().contains("sum to 1"), "{err}");
    assert_eq!(invalid_key(err), "containers");
}

#[test]
fn thresholds_must_ascend_and_cron_must_parse() {
    let (_g, p) = write("cep:\n  phi_thresholds: {machine: 0.99}\n");
    let err = Settings::load_with_env(Some(&p), &[]).unwrap_err();
    assert_eq!(invalid_key(err), "cep.phi_thresholds.production");
    let (_g2, p2) = write("schedules:\n  aggregation: 'every day at noon'\n");
    let err = Settings::load_with_env(Some(&p2), &[]).unwrap_err();
    assert_eq!(invalid_key(err), "schedules.aggregation");
}

#[test]
fn a_shutdown_deadline_longer_than_the_orphan_window_is_refused() {
    let (_g, p) = write(
        "queue: {heartbeat_interval_seconds: 5, missed_heartbeats: 2}\nworker: {shutdown_deadline_seconds: 30}\n",
    );
    let err = Settings::load_with_env(Some(&p), &[]).unwrap_err();
    assert_eq!(invalid_key(err), "worker.shutdown_deadline_seconds");
}

#[test]
fn a_fetch_batch_larger_than_one_redis_script_can_move_is_refused() {
    let (_g, p) = write("queue: {fetch_batch: 5000}\n");
    let err = Settings::load_with_env(Some(&p), &[]).unwrap_err();
    assert_eq!(invalid_key(err), "queue.fetch_batch");
    let (_g, p) = write("queue: {fetch_batch: 1000}\n");
    assert!(Settings::load_with_env(Some(&p), &[]).is_ok());
}

#[test]
fn environment_overrides_win_over_the_file() {
    let env = vec![
        ("CEP__WORKER__CONCURRENCY".to_string(), "3".to_string()),
        ("CEP__DATA_DIR".to_string(), "/tmp/cep-data".to_string()),
        (
            "REDIS_URL".to_string(),
            "redis://127.0.0.1:6379".to_string(),
        ),
        (
            "DATABASE_URL".to_string(),
            "postgres://cep:pw@127.0.0.1/cep".to_string(),
        ),
    ];
    let s = Settings::load_with_env(None, &env).unwrap();
    assert_eq!(s.worker.concurrency, 3);
    assert_eq!(s.data_dir, Path::new("/tmp/cep-data"));
    assert!(!s.backends.is_embedded());
}

#[test]
fn only_one_of_the_fleet_urls_is_refused() {
    let env = vec![(
        "REDIS_URL".to_string(),
        "redis://127.0.0.1:6379".to_string(),
    )];
    let err = Settings::load_with_env(None, &env).unwrap_err();
    assert_eq!(invalid_key(err), "backends");
}

#[test]
fn a_partial_file_or_a_single_override_changes_only_the_keys_it_names() {
    let defaults = Settings::default();
    // One nested key in a file: the rest of its table keeps the defaults.
    let (_g, p) =
        write("containers:\n  sales:\n    weight: 0.4\n  operations:\n    weight: 0.26\n");
    let s = Settings::load_with_env(Some(&p), &[]).unwrap();
    assert_eq!(s.containers.sales.weight, 0.4);
    assert_eq!(
        s.containers.sales.timescale,
        defaults.containers.sales.timescale
    );
    assert_eq!(s.queue, defaults.queue);
    // A list in a file replaces the default list whole.
    let (_g, p) = write("layers:\n  prospecting:\n    categories: [dental]\n");
    let s = Settings::load_with_env(Some(&p), &[]).unwrap();
    assert_eq!(s.layers.prospecting.categories, ["dental"]);
    // The same key alone from the environment.
    let env = vec![(
        "CEP__CONTAINERS__SALES__TIMESCALE".to_string(),
        "weekly".to_string(),
    )];
    let s = Settings::load_with_env(None, &env).unwrap();
    assert_eq!(s.containers.sales.weight, defaults.containers.sales.weight);
    assert_ne!(
        s.containers.sales.timescale,
        defaults.containers.sales.timescale
    );
}

#[test]
fn a_webhook_tolerance_of_none_or_past_an_hour_is_refused_naming_it() {
    for (yaml, key) in [
        (
            "layers: {booking: {signature_tolerance_seconds: 0}}\n",
            "layers.booking.signature_tolerance_seconds",
        ),
        (
            "providers: {stripe: {webhook_tolerance_seconds: 86400}}\n",
            "providers.stripe.webhook_tolerance_seconds",
        ),
    ] {
        let (_g, p) = write(yaml);
        let err = Settings::load_with_env(Some(&p), &[]).unwrap_err();
        assert_eq!(invalid_key(err), key, "{yaml}");
    }
}

#[test]
fn a_yaml_alias_bomb_is_refused_before_it_is_expanded() {
    let mut yaml = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i", "j"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let items = vec![format!("*{prev}"); 10].join(", ");
        yaml.push_str(&format!("{name}: &{name} [{items}]\n"));
    }
    let (_g, p) = write(&yaml);
    let started = std::time::Instant::now();
    let err = Settings::load_with_env(Some(&p), &[]).unwrap_err();
    assert!(
        invalid_key(err).contains("aliases expand to more than 100000 values"),
        "refused for another reason"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // An alias or two, as people use them, still loads.
    let (_g, p) = write("layers:\n  prospecting:\n    categories: &c [dental]\n");
    assert!(Settings::load_with_env(Some(&p), &[]).is_ok());
}

#[test]
fn a_fraction_where_a_whole_number_belongs_is_refused_naming_the_key() {
    let (_g, p) = write("queue:\n  max_attempts: 2.5\n");
    let err = Settings::load_with_env(Some(&p), &[]).unwrap_err();
    assert_eq!(invalid_key(err), "queue.max_attempts");
    let env = vec![("CEP__WORKER__CONCURRENCY".to_string(), "1.5".to_string())];
    let err = Settings::load_with_env(None, &env).unwrap_err();
    assert_eq!(invalid_key(err), "worker.concurrency");
    // A whole number written as one still loads, and a fraction where one belongs.
    let (_g, p) = write(
        "queue:\n  max_attempts: 3\ncontainers:\n  sales:\n    weight: 0.4\n  operations:\n    weight: 0.26\n",
    );
    let s = Settings::load_with_env(Some(&p), &[]).unwrap();
    assert_eq!(s.queue.max_attempts, 3);
}
