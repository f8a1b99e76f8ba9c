//! Per-client rate limits on the routes anyone can post to (webhooks, inbound mail): a
//! token bucket per client address, refilled at `server.rate_limit.per_minute`, holding
//! at most `server.rate_limit.burst`. A request past it gets 429 with `Retry-After`, is
//! counted in `cep_http_refused_total{reason="rate_limited"}` and costs nothing else.
//!
//! The client is the connection's peer address. Behind an ingress every request comes
//! from the ingress, so the limit then bounds the whole route; the senders retry a 429
//! (Calendly and Stripe with backoff, a mail forwarder by its queue).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cep_shared::config::RateLimit;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The most clients remembered at once: past it, full buckets (clients idle long enough
/// to have refilled) are forgotten first, then the stalest.
const MAX_CLIENTS: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by client address, shared by the routes one router limits.
#[derive(Clone)]
pub struct Limiter {
    rule: RateLimit,
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
}

impl Limiter {
    pub fn new(rule: RateLimit) -> Self {
        Self {
            rule,
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes one request's token for `client` at `now`; when there is none, how many
    /// seconds until there is.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let per_second = f64::from(self.rule.per_minute) / 60.0;
        let burst = f64::from(self.rule.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            forget_some(&mut buckets, now, per_second, burst);
        }
        let b = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Makes room for a new client: drops every bucket that has refilled, or else the
/// stalest tenth.
fn forget_some(buckets: &mut HashMap<IpAddr, Bucket>, now: Instant, per_second: f64, burst: f64) {
    let before = buckets.len();
    buckets.retain(|_, b| {
        b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst
    });
    if buckets.len() < before {
        return;
    }
    let mut ages: Vec<(Instant, IpAddr)> = buckets.iter().map(|(ip, b)| (b.at, *ip)).collect();
    ages.sort_unstable();
    for (_, ip) in ages.iter().take(before / 10 + 1) {
        buckets.remove(ip);
    }
}

/// The middleware: 429 with `Retry-After` past the client's budget.
pub async fn limit(State(limiter): State<Limiter>, req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.take(client, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            cep_shared::metrics::get()
                .http_refused
                .with_label_values(&["rate_limited"])
                .inc();
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests; retry later",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_gets_its_burst_then_one_request_per_refill_and_others_are_not_charged() {
        let l = Limiter::new(RateLimit {
            per_minute: 60,
            burst: 3,
        });
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take(a, t0), Ok(()));
        }
        assert_eq!(l.take(a, t0), Err(1));
        assert_eq!(l.take(b, t0), Ok(()), "another client has its own bucket");
        assert_eq!(l.take(a, t0 + Duration::from_millis(1_000)), Ok(()));
        assert_eq!(l.take(a, t0 + Duration::from_millis(1_000)), Err(1));
    }

    #[test]
    fn a_flood_of_distinct_clients_keeps_memory_bounded() {
        let l = Limiter::new(RateLimit {
            per_minute: 60,
            burst: 2,
        });
        let t0 = Instant::now();
        for n in 0..(3 * MAX_CLIENTS as u32) {
            let ip = IpAddr::V4(Ipv4Addr::from(n));
            let _ = l.take(ip, t0);
            let _ = l.take(ip, t0);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_CLIENTS);
    }
}
