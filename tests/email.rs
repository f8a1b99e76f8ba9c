//! Email for real against a real SMTP server (Debian's python3-aiosmtpd, started by
//! each test): the headers that arrive, bounces and deferrals, replies and bounces
//! coming back through the inbound endpoint, and a worker killed mid-send.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cep_shared::config::SmtpTls;
use cep_shared::vocabulary::{AttributedBy, MessageStatus};
use cep_shared::{Clock, Settings};
use cep_workers::layers::{booking, outreach};
use cep_workers::{Ctx, Disposition, http};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// A real SMTP server writing what it accepts into a directory of its own.
pub struct Sink {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

impl Sink {
    pub fn start(args: &[&str]) -> Self {
        let dir = TempDir::new();
        let python = std::env::var("CEP_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let mut child = Command::new(&python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_sink.py"))
            .arg(&dir.0)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("the email tests need {python} with aiosmtpd (apt-get install python3-aiosmtpd): {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("the SMTP sink did not start (is python3-aiosmtpd installed?): `{line}`")
        });
        Self { child, port, dir }
    }

    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir.0)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn smtp_settings(port: u16) -> Settings {
    let mut s = settings();
    s.layers.outreach.dry_run = false;
    s.providers.smtp.host = "127.0.0.1".into();
    s.providers.smtp.port = port;
    s.providers.smtp.tls = SmtpTls::None;
    s.providers.smtp.timeout_seconds = 5;
    s
}

/// An embedded fleet sending to the SMTP server on `port`, with the test keys.
async fn on_smtp(port: u16) -> (Harness, Ctx) {
    let clock = Clock::simulated(in_window());
    let h = harness(Backend::Embedded, smtp_settings(port), clock).await;
    let ctx = with_keys(&h.ctx);
    (h, ctx)
}

/// The first lead `leads` finds (the directory is deterministic): its id and address.
fn first_lead() -> (String, String) {
    use cep_workers::layers::prospecting::directory::{OfflineDirectory, ProspectSource};
    let rules = cep_shared::config::ProspectingRules::default();
    let found = OfflineDirectory.search("Miami, FL", "dental");
    let (b, _) = cep_workers::layers::prospecting::rank(found, &rules)
        .into_iter()
        .find(|(_, p)| p.lead_class.qualifies())
        .unwrap();
    (b.id, b.email.unwrap())
}

fn header(raw: &str, name: &str) -> Option<String> {
    outreach::inbound::parse(raw.as_bytes())
        .unwrap()
        .header(name)
        .map(str::to_owned)
}

async fn email_of(ctx: &Ctx, prospect: &str) -> String {
    let (e,): (String,) = sqlx::query_as("SELECT email FROM prospects WHERE id = $1")
        .bind(prospect)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    e
}

#[tokio::test]
async fn an_email_arrives_once_with_one_click_unsubscribe_and_our_message_id() {
    let sink = Sink::start(&[]);
    let (_h, ctx) = on_smtp(sink.port).await;
    let ids = pitched(&ctx, 1).await;
    let r = send_step(&ctx, &ids[0], 0).await.unwrap();
    assert_eq!(r.status, MessageStatus::Sent);

    let got = sink.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    let (stored,): (String,) = sqlx::query_as("SELECT message_id FROM messages WHERE id = $1")
        .bind(&r.message_id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(header(m, "Message-ID").as_deref(), Some(stored.as_str()));
    let unsubscribe = header(m, "List-Unsubscribe").unwrap();
    let token = outreach::unsubscribe_token(Some("unsubscribe-test-key"), &r.message_id);
    assert!(
        unsubscribe.starts_with(&format!(
            "<http://127.0.0.1:8080/unsubscribe/{}?token={token}>",
            r.message_id
        )),
        "{unsubscribe}"
    );
    assert_eq!(
        header(m, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        header(m, "To")
            .unwrap()
            .contains(&email_of(&ctx, &ids[0]).await)
    );
    assert!(header(m, "From").unwrap().contains("hello@agency.example"));
    assert!(
        m.contains("100 Main Street, Suite 200"),
        "the postal address is in the body"
    );

    // The job delivered again sends nothing more.
    assert_eq!(
        send_step(&ctx, &ids[0], 0).await.unwrap().status,
        MessageStatus::Sent
    );
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_recipient_the_server_rejects_bounces_and_is_suppressed() {
    let (first, address) = first_lead();
    let sink = Sink::start(&["--reject", &address]);
    let (_h, ctx) = on_smtp(sink.port).await;
    let ids = pitched(&ctx, 1).await;
    assert_eq!(ids[0], first, "the directory is deterministic");
    let r = send_step(&ctx, &ids[0], 0).await.unwrap();
    assert_eq!(r.status, MessageStatus::Bounced);
    assert!(r.reason.unwrap().contains("550"));
    assert_eq!(scalar(&ctx, "SELECT COUNT(*) FROM suppressions").await, 1);
    assert!(sink.messages().is_empty());
    assert_eq!(
        send_step(&ctx, &ids[0], 1).await.unwrap().status,
        MessageStatus::Skipped
    );
}

#[tokio::test]
async fn a_deferring_server_hands_the_message_and_its_cap_back_for_a_retry() {
    let (_, address) = first_lead();
    let sink = Sink::start(&["--defer", &address]);
    let (_h, ctx) = on_smtp(sink.port).await;
    let ids = pitched(&ctx, 1).await;
    let e = send_step(&ctx, &ids[0], 0).await.unwrap_err();
    assert_eq!(e.disposition(), Disposition::Retry, "{e}");
    assert!(e.to_string().contains("451"), "{e}");
    assert_eq!(
        scalar(
            &ctx,
            "SELECT COUNT(*) FROM messages WHERE status = 'pending'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(&ctx, "SELECT COALESCE(SUM(sent), 0) FROM send_counters").await,
        0
    );
}

#[tokio::test]
async fn a_server_that_is_down_leaves_the_message_to_retry_not_unknown() {
    // Nothing listens on the discard port.
    let (_h, ctx) = on_smtp(9).await;
    let ids = pitched(&ctx, 1).await;
    let e = send_step(&ctx, &ids[0], 0).await.unwrap_err();
    assert_eq!(e.disposition(), Disposition::Retry, "{e}");
    assert_eq!(
        scalar(
            &ctx,
            "SELECT COUNT(*) FROM messages WHERE status = 'pending'"
        )
        .await,
        1
    );
}

async fn post_inbound(
    app: &axum::Router,
    token: &str,
    raw: String,
) -> (StatusCode, serde_json::Value) {
    let resp = app
        .clone()
        .oneshot(
            Request::post("/inbound/email")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "message/rfc822")
                .body(Body::from(raw))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn replies_auto_replies_and_bounces_come_back_matched_by_message_id() {
    let sink = Sink::start(&[]);
    let (_h, ctx) = on_smtp(sink.port).await;
    let ids = pitched(&ctx, 3).await;
    let mut sent = Vec::new();
    for id in &ids {
        send_step(&ctx, id, 0).await.unwrap();
        let (mid,): (String,) =
            sqlx::query_as("SELECT message_id FROM messages WHERE prospect_id = $1 AND step = 0")
                .bind(id)
                .fetch_one(ctx.store.pool())
                .await
                .unwrap();
        sent.push((id.clone(), mid, email_of(&ctx, id).await));
    }
    let app = http::router(ctx.clone());
    let status_of = |id: String| {
        let ctx = ctx.clone();
        async move {
            let (s,): (String,) = sqlx::query_as("SELECT status FROM prospects WHERE id = $1")
                .bind(id)
                .fetch_one(ctx.store.pool())
                .await
                .unwrap();
            s
        }
    };

    // Refused without the token, or when it is not a message.
    let (s, _) = post_inbound(&app, "wrong", "From: a@b.example\r\n\r\nhi".into()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = post_inbound(&app, "inbound-test-token", "just text".into()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // An out-of-office reply is not a reply: the sequence goes on.
    let (p0, m0, a0) = &sent[0];
    let ooo = format!(
        "From: <{a0}>\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: {m0}\r\n\r\nBack Monday."
    );
    let (s, v) = post_inbound(&app, "inbound-test-token", ooo).await;
    assert_eq!(
        (s, v["kind"].as_str()),
        (StatusCode::OK, Some("auto_reply"))
    );
    assert_eq!(status_of(p0.clone()).await, "contacted");

    // A real reply, threaded: the prospect leaves the sequence.
    let reply = format!(
        "From: Owner <{a0}>\r\nSubject: Re: hi\r\nReferences: <x@elsewhere>\r\n {m0}\r\n\r\nYes, call me."
    );
    let (s, v) = post_inbound(&app, "inbound-test-token", reply).await;
    assert_eq!((s, v["kind"].as_str()), (StatusCode::OK, Some("reply")));
    assert_eq!(status_of(p0.clone()).await, "replied");
    assert_eq!(
        send_step(&ctx, p0, 1).await.unwrap().status,
        MessageStatus::Skipped
    );

    // A delivery report naming our message but another address changes nothing.
    let (p1, m1, a1) = &sent[1];
    let dsn_for = |recipient: &str| {
        format!(
            "From: MAILER-DAEMON@mx.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {m1}\r\n--b--\r\n"
        )
    };
    let (s, v) = post_inbound(&app, "inbound-test-token", dsn_for("someone@else.example")).await;
    assert_eq!(
        (s, v["kind"].as_str()),
        (StatusCode::OK, Some("hard_bounce"))
    );
    assert!(v["ignored"].is_string(), "{v}");
    assert_eq!(status_of(p1.clone()).await, "contacted");

    // The report for the address it went to: a hard bounce suppresses the address.
    let (s, v) = post_inbound(&app, "inbound-test-token", dsn_for(a1)).await;
    assert_eq!(
        (s, v["kind"].as_str()),
        (StatusCode::OK, Some("hard_bounce"))
    );
    assert_eq!(
        v["message"].as_str(),
        Some(cep_workers::layers::outreach::message_row_id(p1, 0).as_str())
    );
    assert_eq!(status_of(p1.clone()).await, "stopped");
    assert_eq!(
        scalar(
            &ctx,
            "SELECT COUNT(*) FROM messages WHERE status = 'bounced'"
        )
        .await,
        1
    );

    // A mail `From:` a prospect saying "unsubscribe" that names none of our messages is
    // not an opt-out: anyone can write one.
    let (p2, _, a2) = &sent[2];
    let forged =
        format!("From: <{a2}>\r\nTo: unsubscribe@agency.example\r\nSubject: unsubscribe\r\n\r\n");
    let (s, v) = post_inbound(&app, "inbound-test-token", forged).await;
    assert_eq!(
        (s, v["kind"].as_str()),
        (StatusCode::OK, Some("unsubscribe"))
    );
    assert!(v["ignored"].is_string(), "{v}");
    assert_eq!(status_of(p2.clone()).await, "contacted");

    // The List-Unsubscribe mailto of the mail it got, sent from its address, suppresses
    // it; the same subject from another address does not.
    let mail = sink
        .messages()
        .into_iter()
        .find(|m| m.contains(a2.as_str()))
        .unwrap();
    let list = header(&mail, "List-Unsubscribe").unwrap();
    let subject = list
        .split("subject=")
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap()
        .replace("%20", " ");
    let from = |address: &str| {
        format!("From: <{address}>\r\nTo: unsubscribe@agency.example\r\nSubject: {subject}\r\n\r\n")
    };
    let (s, v) = post_inbound(&app, "inbound-test-token", from("mallory@evil.example")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["ignored"].is_string(), "{v}");
    assert_eq!(status_of(p2.clone()).await, "contacted");
    let (s, v) = post_inbound(&app, "inbound-test-token", from(a2)).await;
    assert_eq!(
        (s, v["kind"].as_str()),
        (StatusCode::OK, Some("unsubscribe"))
    );
    assert_eq!(status_of(p2.clone()).await, "stopped");
    assert_eq!(scalar(&ctx, "SELECT COUNT(*) FROM suppressions").await, 2);
}

#[tokio::test]
async fn message_ids_are_random_and_name_neither_prospect_nor_step() {
    let sink = Sink::start(&[]);
    let (_h, ctx) = on_smtp(sink.port).await;
    let ids = pitched(&ctx, 2).await;
    let mut seen = std::collections::HashSet::new();
    for id in &ids {
        let r = send_step(&ctx, id, 0).await.unwrap();
        assert_eq!(r.status, MessageStatus::Sent);
        let (mid,): (String,) = sqlx::query_as("SELECT message_id FROM messages WHERE id = $1")
            .bind(&r.message_id)
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
        let local = mid
            .strip_prefix('<')
            .and_then(|m| m.split_once('@'))
            .map(|(l, _)| l)
            .unwrap();
        assert_eq!(local.len(), 32, "{mid}");
        assert!(local.chars().all(|c| c.is_ascii_hexdigit()), "{mid}");
        assert!(!mid.contains(&r.message_id), "{mid} names its row");
        assert!(seen.insert(mid));
    }
}

fn worker(config: &std::path::Path, database_url: &str, prefix: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cep"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "worker",
            "--layers",
            "outreach",
        ])
        .env("REDIS_URL", redis_url())
        .env("DATABASE_URL", database_url)
        .env("CEP__QUEUE__KEY_PREFIX", prefix)
        .env("CEP_UNSUBSCRIBE_KEY", "unsubscribe-test-key")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a cep worker process")
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_send_never_sends_a_second_copy() {
    // The server takes the message, then holds its reply long enough for the kill.
    let sink = Sink::start(&["--delay", "60"]);
    let (url, store) = fresh_postgres_with_url().await;
    let s = settings();
    let queue = redis_queue(&s, Clock::System).await;
    let ctx = with_keys(&ctx(s.clone(), store, queue, Clock::System));
    let prospect = pitched(&ctx, 1).await.remove(0);
    // `pitched` chained the first step; the worker processes take it from here.
    let dir = TempDir::new();
    let config = dir.0.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {}\nserver:\n  bind: 127.0.0.1:0\n  public_url: https://cep.oakgrowth.co\nqueue:\n  heartbeat_interval_seconds: 1\n  missed_heartbeats: 2\nworker:\n  shutdown_deadline_seconds: 1\nproviders:\n  smtp:\n    host: 127.0.0.1\n    port: {}\n    tls: none\nlayers:\n  outreach:\n    dry_run: false\n    from_name: Oak Growth\n    from_address: hello@oakgrowth.co\n    postal_address: 12 Elm Street, Austin, TX 78701, USA\n    send_days: [mon, tue, wed, thu, fri, sat, sun]\n    send_start_hour: 0\n    send_end_hour: 24\n",
            dir.0.display(),
            sink.port
        ),
    )
    .unwrap();
    let mut first = worker(&config, &url, &s.queue.key_prefix);
    wait_for("the SMTP server to receive the message", async || {
        sink.messages().len() == 1
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();

    let mut second = worker(&config, &url, &s.queue.key_prefix);
    let row = outreach::message_row_id(&prospect, 0);
    wait_for("the orphaned send to be flagged", async || {
        let (status,): (String,) = sqlx::query_as("SELECT status FROM messages WHERE id = $1")
            .bind(&row)
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
        status == "unknown"
    })
    .await;
    // Give the second worker time to (wrongly) send again before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(
        sink.messages().len(),
        1,
        "exactly one copy reached the server"
    );
    assert_eq!(
        scalar(
            &ctx,
            "SELECT COUNT(*) FROM events WHERE kind = 'send_unknown'"
        )
        .await,
        1
    );
    if let cep_shared::queue::Queue::Redis(r) = &ctx.queue {
        r.purge().await.unwrap();
    }
}

#[tokio::test]
async fn a_booking_matched_by_email_alone_counts_only_for_an_address_we_wrote_to_and_is_flagged() {
    let sink = Sink::start(&[]);
    let (_h, ctx) = on_smtp(sink.port).await;
    let ids = pitched(&ctx, 2).await;
    send_step(&ctx, &ids[0], 0).await.unwrap();
    let written = email_of(&ctx, &ids[0]).await;
    let never_written = email_of(&ctx, &ids[1]).await;
    let book = |uri: &str, email: &str| {
        let body = serde_json::json!({
            "event": "invitee.created",
            "payload": {"uri": uri, "email": email, "name": "Pat Owner"}
        });
        let w: booking::Webhook = serde_json::from_value(body).unwrap();
        w.into_job().unwrap()
    };
    let b = booking::handle(&ctx, book("u1", &written.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(b.prospect_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(b.attributed_by, Some(AttributedBy::Email));
    // A prospect's address we have on file but never wrote to is no match.
    let b = booking::handle(&ctx, book("u2", &never_written))
        .await
        .unwrap();
    assert_eq!(b.prospect_id, None);
    let (s,): (String,) = sqlx::query_as("SELECT status FROM prospects WHERE id = $1")
        .bind(&ids[1])
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(s, "pitched");
    // Both wait for the operator: one to confirm, one to link.
    let waiting = booking::to_review(&ctx).await.unwrap();
    let flags: Vec<_> = waiting.iter().map(|m| m.attributed_by).collect();
    assert_eq!(flags, [Some(AttributedBy::Email), None]);
}
