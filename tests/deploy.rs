//! The Kubernetes manifests, checked offline: every core object against the Kubernetes
//! schema (`kubernetes-validate --strict`, which `.ci/run` installs from PyPI), the KEDA
//! objects against their fields, every kustomization's references, and the settings the
//! manifests must agree with (grace period vs shutdown deadline, the Redis key KEDA
//! reads, the layers each worker consumes).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn k8s() -> PathBuf {
    root().join("deploy/k8s")
}

/// Every YAML document of a file, as JSON.
fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .map(|d| {
            config::Config::builder()
                .add_source(config::File::from_str(d, config::FileFormat::Yaml))
                .build()
                .and_then(|c| c.try_deserialize::<Value>())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(yaml_files(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn manifests() -> Vec<(PathBuf, Value)> {
    yaml_files(&k8s())
        .into_iter()
        .filter(|p| p.file_name().unwrap() != "kustomization.yaml")
        .flat_map(|p| docs(&p).into_iter().map(move |d| (p.clone(), d)))
        .collect()
}

#[test]
fn core_objects_pass_the_kubernetes_schema_strictly() {
    let files: Vec<PathBuf> = yaml_files(&k8s())
        .into_iter()
        .filter(|p| p.file_name().unwrap() != "kustomization.yaml")
        .filter(|p| !p.to_string_lossy().contains("components/keda"))
        .collect();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.32.0"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubernetes-validate is needed (pip install kubernetes-validate): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("ERROR"), "{text}");
    assert!(text.matches("passed").count() >= 15, "{text}");
}

#[test]
fn every_kustomization_reference_exists_and_the_config_map_is_the_root_config() {
    let mut generator = false;
    for k in yaml_files(&k8s())
        .into_iter()
        .filter(|p| p.file_name().unwrap() == "kustomization.yaml")
    {
        let dir = k.parent().unwrap();
        let doc = &docs(&k)[0];
        for key in ["resources", "components"] {
            for r in doc[key].as_array().into_iter().flatten() {
                let p = dir.join(r.as_str().unwrap());
                assert!(p.exists(), "{}: {} is missing", k.display(), p.display());
            }
        }
        for g in doc["configMapGenerator"].as_array().into_iter().flatten() {
            for f in g["files"].as_array().unwrap() {
                let (_, path) = f.as_str().unwrap().split_once('=').unwrap();
                let p = dir.join(path).canonicalize().unwrap();
                assert_eq!(p, root().join("config.yaml").canonicalize().unwrap());
                generator = true;
            }
        }
    }
    assert!(generator, "the ConfigMap is generated from config.yaml");
}

#[test]
fn the_keda_objects_use_only_known_fields_and_target_the_outreach_workers() {
    let settings = cep_shared::Settings::load(Some(&root().join("config.yaml"))).unwrap();
    let all = manifests();
    let deployments: Vec<&str> = all
        .iter()
        .filter(|(_, d)| d["kind"] == "Deployment")
        .map(|(_, d)| d["metadata"]["name"].as_str().unwrap())
        .collect();
    let so = all
        .iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == "ScaledObject")
        .expect("a ScaledObject");
    assert_eq!(so["apiVersion"], "keda.sh/v1alpha1");
    let spec = so["spec"].as_object().unwrap();
    let known = [
        "scaleTargetRef",
        "pollingInterval",
        "cooldownPeriod",
        "initialCooldownPeriod",
        "idleReplicaCount",
        "minReplicaCount",
        "maxReplicaCount",
        "fallback",
        "advanced",
        "triggers",
    ];
    for k in spec.keys() {
        assert!(
            known.contains(&k.as_str()),
            "unknown ScaledObject field {k}"
        );
    }
    let target = spec["scaleTargetRef"]["name"].as_str().unwrap();
    assert!(
        deployments.contains(&target),
        "{target} is not a Deployment"
    );
    assert_eq!(target, "cep-worker-outreach");
    let trigger = &spec["triggers"][0];
    assert_eq!(trigger["type"], "redis");
    assert_eq!(
        trigger["metadata"]["listName"],
        format!("{{{}}}:ready:outreach", settings.queue.key_prefix),
        "KEDA reads the outreach queue's ready list"
    );
    let auth = trigger["authenticationRef"]["name"].as_str().unwrap();
    assert!(
        all.iter()
            .any(|(_, d)| d["kind"] == "TriggerAuthentication" && d["metadata"]["name"] == auth)
    );
}

#[test]
fn pods_stop_in_time_and_workers_consume_real_queues() {
    let settings = cep_shared::Settings::load(Some(&root().join("config.yaml"))).unwrap();
    let mut consumed = std::collections::BTreeSet::new();
    for (path, d) in manifests() {
        if d["kind"] != "Deployment" {
            continue;
        }
        let pod = &d["spec"]["template"]["spec"];
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(
            grace > settings.worker.shutdown_deadline_seconds,
            "{}: grace {grace} s must exceed the shutdown deadline",
            path.display()
        );
        let c = &pod["containers"][0];
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        if args[0] == "worker" {
            for kind in cep::app::parse_kinds(args[2]).unwrap() {
                assert!(
                    consumed.insert(kind.queue()),
                    "{} consumed twice",
                    kind.queue()
                );
            }
        }
    }
    let all: std::collections::BTreeSet<&str> =
        cep_shared::JobKind::all().map(|k| k.queue()).collect();
    assert_eq!(
        consumed, all,
        "every queue has exactly one worker Deployment"
    );
}

#[test]
fn metrics_and_probes_are_served_on_their_own_port_and_only_the_api_has_a_public_one() {
    for (path, d) in manifests() {
        if d["kind"] != "Deployment" {
            continue;
        }
        let where_ = path.display();
        let pod = &d["spec"]["template"];
        let c = &pod["spec"]["containers"][0];
        let env = c["env"].as_array().unwrap();
        let metrics_bind = env
            .iter()
            .find(|e| e["name"] == "CEP__SERVER__METRICS_BIND")
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("{where_}: no CEP__SERVER__METRICS_BIND"));
        let port: u64 = metrics_bind.rsplit(':').next().unwrap().parse().unwrap();
        let ports: Vec<(&str, u64)> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap(),
                    p["containerPort"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(ports.contains(&("metrics", port)), "{where_}: {ports:?}");
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{where_}: {probe}");
        }
        assert_eq!(
            pod["metadata"]["annotations"]["prometheus.io/port"],
            port.to_string(),
            "{where_}: Prometheus scrapes the metrics port"
        );
        let public = c["args"][0] == "serve";
        assert_eq!(
            ports.iter().any(|(name, _)| *name == "http"),
            public,
            "{where_}: only `cep serve` has a public port"
        );
    }
    // The Service the ingress reaches exposes the public port alone.
    let (_, service) = manifests()
        .into_iter()
        .find(|(_, d)| d["kind"] == "Service" && d["metadata"]["name"] == "cep-api")
        .unwrap();
    let targets: Vec<&str> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["targetPort"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["http"]);
}
