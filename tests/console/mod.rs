//! The operator console over HTTP as a browser meets it: sign-in, roles, the CSRF token
//! on every form, the inbox's actions with their effect in the store, and the audit log.

mod fleet;
mod inbox;
mod pages;
mod reports;

use crate::helpers::*;
use cep_shared::Clock;
use cep_shared::vocabulary::{MeetingState, Role};
use cep_workers::console::users;

pub const PASSWORD: &str = "a long enough password";

/// A browser of one: no redirects followed, its own session cookie.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{addr}"),
            cookie: None,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("cookie", c);
        }
        let resp = r.send().await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, resp.text().await.unwrap(), headers)
    }

    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let mut r = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            r = r.header("cookie", c);
        }
        let resp = r.send().await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, resp.text().await.unwrap(), headers)
    }

    /// Signs in; the session cookie as set.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> (u16, Option<String>) {
        let (status, _, headers) = self
            .post("/sign-in", &[("email", email), ("password", password)])
            .await;
        let set = headers
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(s) = &set {
            self.cookie = Some(s.split(';').next().unwrap().to_owned());
        }
        (status, set)
    }

    /// The CSRF token the signed-in pages' forms carry.
    pub async fn csrf(&self) -> String {
        let (_, page, _) = self.get("/inbox").await;
        let at = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        page[at..at + 64].to_owned()
    }
}

pub fn location(headers: &reqwest::header::HeaderMap) -> &str {
    headers.get("location").unwrap().to_str().unwrap()
}

pub async fn meeting_state(ctx: &cep_workers::Ctx, id: &str) -> MeetingState {
    let (s,): (String,) = sqlx::query_as("SELECT status FROM meetings WHERE id = $1")
        .bind(id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    s.parse().unwrap()
}

#[tokio::test]
async fn sign_in_stops_after_repeated_failures_and_sessions_end_on_expiry_or_disable() {
    let mut s = settings();
    s.server.console.sign_in_failures = 3;
    let h = harness(Backend::Embedded, s, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    users::add(ctx, "owner@agency.example", Role::Admin, PASSWORD)
        .await
        .unwrap();
    users::add(ctx, "helper@agency.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    let server = Served::fleet(ctx).await;

    // Three wrong passwords: the right one is refused too, for this account and from
    // this address, until the window has passed.
    let mut b = Browser::new(server.addr());
    for _ in 0..3 {
        assert_eq!(
            b.sign_in("owner@agency.example", "not the password")
                .await
                .0,
            401
        );
    }
    let (status, _, headers) = b
        .post(
            "/sign-in",
            &[("email", "owner@agency.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(headers.get("retry-after").unwrap(), "900");
    assert_eq!(b.sign_in("helper@agency.example", PASSWORD).await.0, 429);
    ctx.clock
        .set(ctx.clock.now() + chrono::Duration::minutes(16));
    assert_eq!(b.sign_in("owner@agency.example", PASSWORD).await.0, 303);
    assert_eq!(b.get("/inbox").await.0, 200);

    // A session lasts `session_hours`.
    ctx.clock.set(ctx.clock.now() + chrono::Duration::hours(12));
    assert_eq!(b.get("/inbox").await.0, 303);

    // Disabling a user ends their session and their sign-ins.
    assert_eq!(b.sign_in("owner@agency.example", PASSWORD).await.0, 303);
    assert_eq!(b.get("/fleet").await.0, 200);
    assert!(users::disable(ctx, "owner@agency.example").await.unwrap());
    assert_eq!(b.get("/fleet").await.0, 303);
    assert_eq!(b.sign_in("owner@agency.example", PASSWORD).await.0, 401);

    // A password too short is refused when it is set.
    let e = users::add(ctx, "short@agency.example", Role::Viewer, "short")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("12 to 256 characters"), "{e}");
    server.stop().await;
}

pub async fn audited(ctx: &cep_workers::Ctx) -> Vec<String> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT action FROM audit_log WHERE action NOT LIKE 'user.%' ORDER BY id")
            .fetch_all(ctx.store.pool())
            .await
            .unwrap();
    rows.into_iter().map(|(a,)| a).collect()
}

/// A prospect id as the board links it.
pub fn pipeline_id(id: &str) -> String {
    cep_workers::console::url_path(id)
}

#[test]
fn cep_run_says_where_the_console_is_and_serves_its_sign_in_there() {
    use std::io::BufRead;
    let dir = TempDir::new();
    let port = free_port();
    let mut child = KillOnDrop(
        cep_embedded(&dir, &["run"])
            .env("CEP__SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = std::io::BufReader::new(child.0.stderr.take().unwrap()).lines();
    let mut url = None;
    for line in lines.take(200) {
        let line = line.unwrap();
        if line.contains("operator console") {
            url = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("url=").map(str::to_owned));
            break;
        }
    }
    let url = url.expect("cep run logs the console's address");
    assert_eq!(url, format!("http://127.0.0.1:{port}/"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::get(format!("{url}sign-in"))
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
}
