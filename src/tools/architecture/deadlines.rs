//! The drain deadline against the queue's orphan window, each external call's timeout
//! and the pods' grace periods.

use super::configuration::fails;
use super::record::{Finding, Status, finding};
use cep_shared::config::Finding as ConfigFinding;
use cep_shared::config::Settings;
use std::collections::BTreeSet;
use std::path::Path;

/// Kubernetes' grace period when a manifest sets none.
const DEFAULT_GRACE_SECONDS: u64 = 30;

/// `terminationGracePeriodSeconds` of every manifest under `dir`, by file.
fn grace_periods(dir: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                let text = std::fs::read_to_string(&path)?;
                for line in text.lines() {
                    if let Some(v) = line.trim().strip_prefix("terminationGracePeriodSeconds:")
                        && let Ok(n) = v.trim().parse()
                    {
                        out.push((path.display().to_string(), n));
                    }
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The drain deadline against the orphan window and the pods' grace period, and the
/// longest external call against the deadline and the job timeout.
pub(super) fn deadlines(
    s: &Settings,
    config: &[ConfigFinding],
    manifests: Option<&Path>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let deadline = s.worker.shutdown_deadline_seconds;
    let window = s.queue.orphan_window().as_secs();
    let key = "worker.shutdown_deadline_seconds";
    // Whether the drain fits the orphan window is the configuration's own finding.
    let fits = !fails(config, key);
    findings.push(finding(
        "deadlines",
        key,
        if fits { Status::Pass } else { Status::Fail },
        format!(
            "drain deadline {deadline} s against the orphan window {window} s: {}",
            if fits {
                "a draining worker's jobs are never taken as orphans"
            } else {
                "a draining worker's jobs would be recovered and run twice"
            }
        ),
    ));
    // Without manifests there is no pod to compare with (the embedded default).
    let graces = manifests.map(|dir| {
        grace_periods(dir).map(|g| {
            if g.is_empty() {
                vec![(
                    format!("{} (none set: Kubernetes' default)", dir.display()),
                    DEFAULT_GRACE_SECONDS,
                )]
            } else {
                g
            }
        })
    });
    match graces {
        None => {}
        Some(Err(e)) => findings.push(finding(
            "deadlines",
            key,
            Status::Fail,
            format!("cannot read the manifests: {e}"),
        )),
        Some(Ok(graces)) => {
            let short: Vec<String> = graces
                .iter()
                .filter(|(_, g)| *g <= deadline)
                .map(|(f, g)| format!("{f}: {g} s"))
                .collect();
            findings.push(if short.is_empty() {
                finding(
                    "deadlines",
                    key,
                    Status::Pass,
                    format!(
                        "{deadline} s fits in every grace period ({})",
                        graces
                            .iter()
                            .map(|g| g.1.to_string())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect::<Vec<_>>()
                            .join(", ")
                            + " s"
                    ),
                )
            } else {
                finding(
                    "deadlines",
                    key,
                    Status::Fail,
                    format!(
                        "Kubernetes kills the pod before the {deadline} s drain ends: {}",
                        short.join("; ")
                    ),
                )
            });
        }
    }
    let calls = [
        (
            "providers.http_timeout_seconds",
            s.providers.http_timeout_seconds,
        ),
        (
            "providers.llm.timeout_seconds",
            s.providers.llm.timeout_seconds,
        ),
        (
            "providers.smtp.timeout_seconds",
            s.providers.smtp.timeout_seconds,
        ),
        (
            "engines.testing.timeout_seconds",
            s.engines.testing.timeout_seconds,
        ),
    ];
    for (call_key, secs) in calls {
        if secs >= deadline {
            findings.push(finding(
                "deadlines",
                call_key,
                Status::Warn,
                format!(
                    "a {secs} s call outlasts the {deadline} s drain: a job waiting on it is handed back and run again"
                ),
            ));
        }
        if secs >= s.worker.job_timeout_seconds {
            findings.push(finding(
                "deadlines",
                call_key,
                Status::Fail,
                format!(
                    "a {secs} s call outlasts worker.job_timeout_seconds ({} s): the job is cancelled first",
                    s.worker.job_timeout_seconds
                ),
            ));
        }
    }
    findings
}
