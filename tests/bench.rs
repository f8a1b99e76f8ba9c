//! `cep bench --quick` as CI runs it: every scenario still runs end to end on real
//! Redis and Postgres and lands in the table and the JSON. It asserts what was
//! measured, never how fast.

use crate::helpers::*;

#[test]
fn the_quick_bench_runs_every_scenario_and_writes_its_table_as_json() {
    let dir = TempDir::new();
    let out = dir.0.join("bench.json");
    let admin = postgres_admin_url();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_cep"))
        .args(["bench", "--quick", "--out", out.to_str().unwrap()])
        .env("REDIS_URL", redis_url())
        .env("DATABASE_URL", &admin)
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["quick"], true);
    let rows = report["rows"].as_array().unwrap();
    for scenario in [
        "enqueue",
        "drain",
        "latency",
        "rss",
        "io_bound",
        "scheduler",
        "aggregation",
        "main_job",
        "sales_chain",
        "console",
    ] {
        let mine: Vec<&serde_json::Value> =
            rows.iter().filter(|r| r["scenario"] == scenario).collect();
        assert!(!mine.is_empty(), "no {scenario} figure in {report:#}");
        for r in mine {
            assert!(r["value"].as_f64().unwrap() > 0.0, "{r}");
            assert!(
                stdout.contains(r["metric"].as_str().unwrap()),
                "the table shows {r}"
            );
        }
    }
    // Two processes drained the same backlog between them, each job once.
    assert!(
        rows.iter()
            .any(|r| r["metric"] == "no-op, 2 worker processes, backlog 5000")
    );
}

#[test]
fn an_unknown_scenario_is_refused_by_name() {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_cep"))
        .args(["bench", "--only", "drian"])
        .env("REDIS_URL", redis_url())
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown scenario `drian`"));
}
