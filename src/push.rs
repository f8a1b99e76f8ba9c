//! Short-lived roles push their metrics to a Prometheus Pushgateway when one is
//! configured (`server.pushgateway_url`): a Kubernetes Job ends before any scrape.

use cep_shared::config::Settings;

/// PUTs this process's metrics under `job` (grouped by instance = host name). Does
/// nothing without a configured Pushgateway.
pub async fn push(settings: &Settings, job: &str) -> anyhow::Result<()> {
    let Some(base) = &settings.server.pushgateway_url else {
        return Ok(());
    };
    let instance = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    let url = format!(
        "{}/metrics/job/{job}/instance/{instance}",
        base.trim_end_matches('/')
    );
    let body = cep_shared::metrics::get().render();
    let resp = reqwest::Client::new()
        .put(&url)
        .header("content-type", "text/plain; version=0.0.4")
        .timeout(std::time::Duration::from_secs(10))
        .body(body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot push metrics to {url}: {e}"))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "the Pushgateway at {url} answered {}",
        resp.status()
    );
    Ok(())
}
