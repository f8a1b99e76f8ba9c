//! Calling an external provider: take a call from its fleet-wide budget, send, and
//! turn the answer into what the job does next.
//!
//! | answer                          | the job                                  |
//! |---------------------------------|------------------------------------------|
//! | budget exhausted (ours)         | deferred to the window's end             |
//! | 429 / 503 with `Retry-After`    | deferred by that much                    |
//! | 429 without it, 408, 5xx        | retried with backoff                     |
//! | timeout, connection refused     | retried with backoff                     |
//! | other 4xx                       | dead letter: retrying cannot help        |
//! | 2xx with a body that won't parse| retried, then dead letter with the reason|

use crate::{Ctx, JobError};
use cep_shared::config::Provider;
use cep_shared::queue::Budget;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

/// A successful answer.
#[derive(Debug)]
pub struct Reply {
    pub provider: Provider,
    pub body: Vec<u8>,
}

impl Reply {
    /// Decodes the body; one that does not decode is a failed call, retried (a proxy's
    /// error page) and dead-lettered with its reason when it persists.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            count(self.provider, "malformed");
            JobError::Transient(format!(
                "{}: the answer does not decode ({e}): {}",
                self.provider.as_str(),
                snippet(&self.body)
            ))
        })
    }
}

pub fn count(p: Provider, result: &str) {
    cep_shared::metrics::get()
        .provider_calls
        .with_label_values(&[p.as_str(), result])
        .inc();
}

/// The first 200 characters of a body, on one line, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date.
pub fn retry_after(value: &str, now_millis: i64) -> Option<i64> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.min(31 * 86_400) as i64 * 1000);
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some((at.timestamp_millis() - now_millis).max(0))
}

/// Takes one call from `provider`'s budget (per `scope`), or defers the job.
pub async fn take_budget(ctx: &Ctx, provider: Provider, scope: &str) -> Result<(), JobError> {
    let limits = ctx.settings.providers.rate_limits.get(provider);
    match ctx.queue.take_budget(provider, scope, limits).await? {
        // The sampler (`ops::sample_queue`) reports what is left, fleet-wide.
        Budget::Granted { .. } => record_spend(ctx, provider).await,
        Budget::Exhausted { per, until } => {
            count(provider, "budget_exhausted");
            Err(JobError::deferred(
                until,
                format!(
                    "{}: the fleet's {} budget is spent; next window at {}",
                    provider.as_str(),
                    per.as_str(),
                    cep_shared::clock::from_millis(until).to_rfc3339()
                ),
            ))
        }
    }
}

/// A paid call's configured cost, added to the day's acquisition spend on that provider
/// (one row per provider and day, dated the day's start) when the call is made.
async fn record_spend(ctx: &Ctx, provider: Provider) -> Result<(), JobError> {
    let cents = ctx
        .settings
        .layers
        .finance
        .acquisition_costs
        .per_call
        .of(provider);
    if cents <= 0 {
        return Ok(());
    }
    let day = cep_shared::period::Period::containing(cep_shared::period::Kind::Day, ctx.now());
    let id = cep_shared::ids::stable_id("txn", &["metered", provider.as_str(), &day.to_string()]);
    sqlx::query(
        "INSERT INTO transactions (id, kind, category, client_id, amount_cents, occurred_at)
         VALUES ($1, 'cost', 'acquisition', $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET amount_cents = transactions.amount_cents + excluded.amount_cents",
    )
    .bind(id)
    .bind(format!("metered:{}", provider.as_str()))
    .bind(cents)
    .bind(day.span_millis().0)
    .execute(ctx.store.pool())
    .await?;
    Ok(())
}

/// Sends `req` to `provider` within its budget and classifies the answer.
pub async fn call(
    ctx: &Ctx,
    provider: Provider,
    scope: &str,
    req: reqwest::RequestBuilder,
) -> Result<Reply, JobError> {
    take_budget(ctx, provider, scope).await?;
    send(ctx, provider, req).await
}

/// Sends without touching the budget (for a caller that took it already).
pub async fn send(
    ctx: &Ctx,
    provider: Provider,
    req: reqwest::RequestBuilder,
) -> Result<Reply, JobError> {
    let name = provider.as_str();
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            count(provider, "failed");
            // A refused connection never reached the provider; a timeout or anything
            // else may have.
            return Err(if e.is_timeout() {
                let secs = ctx.settings.providers.http_timeout_seconds;
                JobError::Unanswered(format!("{name}: no answer within {secs} s"))
            } else if e.is_connect() {
                JobError::Transient(format!("{name}: cannot connect"))
            } else {
                JobError::Unanswered(format!("{name}: no answer: {}", e.without_url()))
            });
        }
    };
    let status = resp.status();
    let wait = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, ctx.now()));
    let body = match resp.bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) => {
            count(provider, "failed");
            return Err(JobError::Transient(format!(
                "{name}: the answer broke off: {}",
                e.without_url()
            )));
        }
    };
    if status.is_success() {
        count(provider, "ok");
        return Ok(Reply { provider, body });
    }
    let what = format!("{name}: HTTP {}: {}", status.as_u16(), snippet(&body));
    match (status, wait) {
        (StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE, Some(wait)) => {
            count(provider, "rate_limited");
            Err(JobError::deferred(
                ctx.now() + wait,
                format!("{what} (retry after {} s)", wait / 1000),
            ))
        }
        (StatusCode::TOO_MANY_REQUESTS, None) => {
            count(provider, "rate_limited");
            Err(JobError::Transient(what))
        }
        (s, _) if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
            count(provider, "failed");
            Err(JobError::Transient(what))
        }
        (s, _) => {
            count(provider, "rejected");
            let hint = match s {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    " (check the API key and its permissions)"
                }
                _ => "",
            };
            Err(JobError::Invalid(format!("{what}{hint}")))
        }
    }
}

/// `fetch`'s answer, served from the fleet's cache under `key` while it is younger than
/// `ttl_seconds` (0: always fetched); the flag says it came from the cache.
pub async fn cached<T, F>(
    ctx: &Ctx,
    key: &str,
    ttl_seconds: u64,
    fetch: F,
) -> Result<(T, bool), JobError>
where
    T: serde::Serialize + DeserializeOwned,
    F: std::future::Future<Output = Result<T, JobError>>,
{
    if ttl_seconds > 0
        && let Some(hit) = ctx.queue.cache_get(key).await?
        && let Ok(v) = serde_json::from_str(&hit)
    {
        return Ok((v, true));
    }
    let v = fetch.await?;
    ctx.queue
        .cache_put(key, &serde_json::to_string(&v)?, ttl_seconds)
        .await?;
    Ok((v, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(retry_after("120", 0), Some(120_000));
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T08:49:07Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            retry_after("Sat, 21 Nov 2026 08:49:37 GMT", now),
            Some(30_000)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn snippets_stay_short_and_on_one_line() {
        let long = "x ".repeat(500);
        let s = snippet(long.as_bytes());
        assert!(s.chars().count() <= 201 && !s.contains('\n'));
        assert_eq!(snippet(b"bad\n request"), "bad request");
    }
}
