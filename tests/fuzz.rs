//! A bounded HTTP fuzz run against every route of a served router: a few thousand
//! mutated requests (methods, paths, signature and auth headers, bodies flipped,
//! truncated, padded or replaced) and some broken framing. No answer is a 5xx, each
//! comes within a bound, the server stays up, and nothing without a valid signature or
//! token changes the store or the queue. `CEP_FUZZ_SEED=<n>` replays a run.

use crate::helpers::*;
use cep_shared::ids::SeededRng;
use cep_shared::{Clock, Secrets};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The project's seeded generator, with what building requests needs.
struct Rng(SeededRng);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Up to `max` random bytes.
    fn noise(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
    fn hex(&mut self, n: usize) -> String {
        self.bytes(n).iter().map(|b| format!("{b:02x}")).collect()
    }
}

const ROUTES: [&str; 8] = [
    "/webhooks/calendly",
    "/webhooks/stripe",
    "/inbound/email",
    "/unsubscribe/msg_0123456789abcdef",
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
];

const CALENDLY: &str = r#"{"event":"invitee.created","created_at":"2026-07-02T12:00:00.000000Z","payload":{"uri":"https://api.calendly.com/scheduled_events/E1/invitees/I1","email":"a@b.example","name":"A B","tracking":{"utm_campaign":"dir:x","utm_content":"p","utm_term":"00"},"scheduled_event":{"name":"Call","start_time":"2026-07-03T12:00:00Z"}}}"#;
const STRIPE: &str = r#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1","metadata":{"cep_invoice_id":"inv_1"},"status_transitions":{"paid_at":1767225600}}}}"#;
const MAIL: &str = "From: Ana <ana@oak.example>\r\nTo: unsubscribe@agency.example\r\nSubject: =?utf-8?q?unsubscribe_msg=5F1_00?=\r\nIn-Reply-To: <abc@agency.example>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; ana@oak.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <abc@agency.example>\r\n--b--\r\n";

/// A base body, mutated: bytes flipped, cut, repeated, or replaced by noise.
fn body(rng: &mut Rng) -> Vec<u8> {
    let base: &[u8] = match rng.below(5) {
        0 => CALENDLY.as_bytes(),
        1 => STRIPE.as_bytes(),
        2 => MAIL.as_bytes(),
        3 => b"List-Unsubscribe=One-Click",
        _ => b"",
    };
    let mut b = base.to_vec();
    match rng.below(6) {
        0 => {}
        1 => {
            for _ in 0..1 + rng.below(8) {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] = rng.next() as u8;
                }
            }
        }
        2 => b.truncate(rng.below(b.len() + 1)),
        3 => b = b.repeat(1 + rng.below(200)),
        4 => b = rng.noise(4096),
        _ => {
            let i = rng.below(b.len() + 1);
            let noise = rng.noise(64);
            b.splice(i..i, noise);
        }
    }
    b
}

fn path(rng: &mut Rng) -> String {
    let mut p = rng.pick(&ROUTES).to_owned();
    match rng.below(6) {
        0 => p.push_str(rng.pick(&[
            "/..",
            "%00",
            "%2e%2e%2f",
            "?token=",
            "?token=zz&token=00",
            "//",
        ])),
        1 => p.push_str(&"a".repeat(rng.below(4000))),
        2 => p.push_str(&format!("?token={}", rng.hex(16))),
        _ => {}
    }
    p
}

fn signature(rng: &mut Rng) -> String {
    let t = chrono::Utc::now().timestamp() + rng.below(1000) as i64 - 500;
    match rng.below(5) {
        0 => format!("t={t},v1={}", rng.hex(32)),
        1 => format!("t={t}{}", ",v1=00".repeat(rng.below(20))),
        2 => String::from_utf8_lossy(&rng.noise(200)).replace(['\r', '\n'], ""),
        3 => format!("t={},v1=", i64::MAX),
        _ => format!("v1={},t=-{t}", rng.hex(32)),
    }
}

/// One well-framed request.
fn request(rng: &mut Rng) -> Vec<u8> {
    let method = rng.pick(&["POST", "POST", "POST", "GET", "PUT", "DELETE", "OPTIONS"]);
    let body = body(rng);
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n",
        path(rng)
    );
    if rng.below(2) == 0 {
        head.push_str(&format!(
            "Calendly-Webhook-Signature: {}\r\n",
            signature(rng)
        ));
    }
    if rng.below(2) == 0 {
        head.push_str(&format!("Stripe-Signature: {}\r\n", signature(rng)));
    }
    match rng.below(3) {
        // The genuine token: the inbound parser sees the mutated mail.
        0 => head.push_str("Authorization: Bearer fuzz-inbound\r\n"),
        1 => head.push_str(&format!("Authorization: Bearer {}\r\n", rng.hex(8))),
        _ => {}
    }
    let ct = rng.pick(&[
        "application/json",
        "message/rfc822",
        "application/x-www-form-urlencoded",
        "text/plain; charset=\u{0}",
        "",
    ]);
    if !ct.is_empty() {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend(body);
    out
}

/// Broken framing: the server may answer 4xx or close, and must stay up.
fn broken(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => rng.noise(2000),
        1 => {
            b"POST /inbound/email HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec()
        }
        2 => {
            b"POST /webhooks/calendly HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()
        }
        _ => format!(
            "GET /{} HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(20_000),
            "b".repeat(100_000)
        )
        .into_bytes(),
    }
}

/// Sends raw bytes; the answer's status, if one came. A well-framed request asks for
/// `Connection: close`; broken framing is followed by closing our side.
async fn send(addr: SocketAddr, raw: &[u8], framed: bool) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(raw).await;
    if !framed {
        let _ = s.shutdown().await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

async fn effects(ctx: &cep_workers::Ctx) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "events",
        "meetings",
        "suppressions",
        "messages",
        "invoices",
        "clients",
    ] {
        counts.push(scalar(ctx, &format!("SELECT COUNT(*) FROM {table}")).await);
    }
    let kinds: Vec<_> = cep_shared::JobKind::all().collect();
    let queues: Vec<&str> = kinds.iter().map(|k| k.queue()).collect();
    for s in ctx.queue.stats(&queues).await.unwrap() {
        counts.push((s.ready + s.scheduled + s.running + s.dead) as i64);
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_mutated_requests_get_no_5xx_change_nothing_and_leave_the_server_up() {
    let seed: u64 = std::env::var("CEP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64);
    eprintln!("fuzz seed: CEP_FUZZ_SEED={seed}");
    let mut rng = Rng(SeededRng::new(seed));
    let secrets = Secrets {
        calendly_signing_key: Some("fuzz-calendly".into()),
        stripe_webhook_secret: Some("fuzz-stripe".into()),
        inbound_token: Some("fuzz-inbound".into()),
        unsubscribe_key: Some("fuzz-unsubscribe".into()),
        booking_link_key: Some("fuzz-booking".into()),
        ..Secrets::default()
    };
    let mut s = settings();
    // The limits are tested on their own; here every request reaches its handler.
    s.server.rate_limit.per_minute = 1_000_000;
    s.server.rate_limit.burst = 1_000_000;
    s.server.request_timeout_seconds = 5;
    s.server.header_timeout_seconds = 2;
    let h = harness_with(Backend::Embedded, s, secrets, Clock::System).await;
    let before = effects(&h.ctx).await;
    let server = Served::fleet(&h.ctx).await;
    let addr = server.addr();

    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut statuses = std::collections::BTreeMap::new();
    for n in 0..3_000 {
        let (raw, framed) = if n % 10 == 9 {
            (broken(&mut rng), false)
        } else {
            (request(&mut rng), true)
        };
        let t = Instant::now();
        let status = send(addr, &raw, framed).await;
        slowest = slowest.max(t.elapsed());
        match status {
            Some(code) => {
                assert!(
                    code < 500,
                    "seed {seed}, request {n}: {code} for {:?}",
                    String::from_utf8_lossy(&raw[..raw.len().min(300)])
                );
                *statuses.entry(code).or_insert(0) += 1;
            }
            None => assert!(
                !framed,
                "seed {seed}, request {n}: no answer to a well-framed request"
            ),
        }
    }
    eprintln!(
        "fuzz: {statuses:?} in {:?}, slowest {slowest:?}",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(3),
        "seed {seed}: a request took {slowest:?}"
    );
    assert_eq!(
        send(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            true
        )
        .await,
        Some(200)
    );
    assert_eq!(
        effects(&h.ctx).await,
        before,
        "seed {seed}: the fuzz changed the store or the queue"
    );
    server.stop().await;
}
