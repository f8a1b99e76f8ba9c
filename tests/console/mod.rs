//! The operator console over HTTP as a browser meets it: sign-in, roles, the CSRF token
//! on every form, the inbox's actions with their effect in the store, and the audit log.

mod reports;

use crate::helpers::*;
use cep_shared::Clock;
use cep_shared::vocabulary::{MeetingState, MessageStatus, Role};
use cep_workers::console::users;
use cep_workers::layers::booking;

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

async fn meeting_state(ctx: &cep_workers::Ctx, id: &str) -> MeetingState {
    let (s,): (String,) = sqlx::query_as("SELECT status FROM meetings WHERE id = $1")
        .bind(id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_an_operator_works_the_inbox_and_every_action_is_audited() {
    // Out of the dry run, so a LinkedIn step is a task for a person (no mail is sent:
    // the test sends no email step).
    let mut s = settings();
    s.layers.outreach.dry_run = false;
    s.providers.smtp.host = "127.0.0.1".into();
    s.providers.smtp.port = 9;
    let h = harness(Backend::Fleet, s, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    users::add(ctx, "viewer@agency.example", Role::Viewer, PASSWORD)
        .await
        .unwrap();
    users::add(ctx, "Operator@Agency.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    // A meeting booked through a signed link, and a LinkedIn task for another prospect.
    let ids = pitched(ctx, 2).await;
    let b = booking::handle(
        ctx,
        booking_job(
            "invitee.created",
            "https://api.calendly.com/i/c1",
            &ids[0],
            false,
        ),
    )
    .await
    .unwrap();
    let task = send_step(ctx, &ids[1], 1).await.unwrap();
    assert_eq!(task.status, MessageStatus::Task);
    ctx.clock.set(meeting_start() + chrono::Duration::hours(1));
    let server = Served::fleet(ctx).await;

    // Not signed in: every page sends to the sign-in form.
    let mut viewer = Browser::new(server.addr());
    for path in ["/", "/inbox", "/fleet", "/audit"] {
        let (status, _, headers) = viewer.get(path).await;
        assert_eq!(status, 303, "{path}");
        assert!(
            ["/sign-in", "/inbox"].contains(&location(&headers)),
            "{path}"
        );
    }
    assert_eq!(viewer.get("/sign-in").await.0, 200);
    assert_eq!(
        viewer
            .sign_in("viewer@agency.example", "wrong password!!")
            .await
            .0,
        401
    );
    assert_eq!(
        viewer.sign_in("nobody@agency.example", PASSWORD).await.0,
        401
    );
    let (status, cookie) = viewer.sign_in("viewer@agency.example", PASSWORD).await;
    assert_eq!(status, 303);
    let cookie = cookie.unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{cookie}");
    }

    // The viewer sees what waits, with no buttons, and is refused an action.
    let (status, page, _) = viewer.get("/inbox").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("meeting-{}", b.meeting_id)),
        "{page}"
    );
    assert!(page.contains(&format!("task-{}", task.message_id)));
    assert!(page.contains("held or no-show"));
    assert!(!page.contains("value=\"held\""), "a viewer gets no buttons");
    let csrf = viewer.csrf().await;
    let outcome = format!("/meetings/{}/outcome", b.meeting_id);
    let (status, page, _) = viewer
        .post(&outcome, &[("csrf", &csrf), ("outcome", "held")])
        .await;
    assert_eq!(status, 403);
    assert!(page.contains("operator role"), "{page}");
    assert_eq!(
        meeting_state(ctx, &b.meeting_id).await,
        MeetingState::Scheduled
    );

    // The operator: a form without its session's token is refused, with it it acts.
    let mut operator = Browser::new(server.addr());
    assert_eq!(
        operator
            .sign_in("operator@agency.example", PASSWORD)
            .await
            .0,
        303
    );
    let (status, page, _) = operator.get("/inbox").await;
    assert_eq!(status, 200);
    assert!(page.contains("value=\"held\""));
    let (status, _, _) = operator
        .post(&outcome, &[("csrf", &csrf), ("outcome", "held")])
        .await;
    assert_eq!(status, 403, "another session's token");
    let (status, _, _) = operator.post(&outcome, &[("outcome", "held")]).await;
    assert!(status == 403 || status == 422, "no token: {status}");
    assert_eq!(
        meeting_state(ctx, &b.meeting_id).await,
        MeetingState::Scheduled
    );
    let csrf = operator.csrf().await;
    let (status, _, headers) = operator
        .post(&outcome, &[("csrf", &csrf), ("outcome", "held")])
        .await;
    assert_eq!((status, location(&headers)), (303, "/inbox"));
    assert_eq!(meeting_state(ctx, &b.meeting_id).await, MeetingState::Held);
    // A wrong input is refused naming why, and changes nothing.
    let (status, page, _) = operator
        .post(
            &outcome,
            &[("csrf", &csrf), ("outcome", "won"), ("tier", "platinum")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("platinum"), "{page}");
    let (status, _, _) = operator
        .post(
            &outcome,
            &[
                ("csrf", &csrf),
                ("outcome", "won"),
                ("tier", "professional"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(meeting_state(ctx, &b.meeting_id).await, MeetingState::Won);
    // Won: onboarding makes the client on the tier sold.
    ctx.clock.set(meeting_start() + chrono::Duration::hours(3));
    drain(ctx).await;
    let (tier,): (String,) =
        sqlx::query_as("SELECT billing_tier FROM clients WHERE prospect_id = $1")
            .bind(&ids[0])
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
    assert_eq!(tier, "professional");

    // The LinkedIn task, marked replied: it leaves the inbox and the prospect replied.
    let done = format!("/tasks/{}/done", task.message_id);
    let (status, _, _) = operator
        .post(&done, &[("csrf", &csrf), ("outcome", "replied")])
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = operator.get("/inbox").await;
    assert!(!page.contains(&format!("task-{}", task.message_id)));
    assert!(!page.contains(&format!("meeting-{}", b.meeting_id)));
    let (status,): (String,) = sqlx::query_as("SELECT status FROM prospects WHERE id = $1")
        .bind(&ids[1])
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(status, "replied");

    // Every action in the audit log, with who, and the state before and after.
    type Row = (String, String, String, Option<String>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT actor, action, subject, before, after FROM audit_log
          WHERE action NOT LIKE 'user.%' ORDER BY id",
    )
    .fetch_all(ctx.store.pool())
    .await
    .unwrap();
    let actions: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        actions,
        [
            ("operator@agency.example", "meeting.held"),
            ("operator@agency.example", "meeting.won"),
            ("operator@agency.example", "task.done"),
        ]
    );
    assert_eq!(rows[1].2, b.meeting_id);
    assert!(
        rows[1].3.as_deref().unwrap().contains("held"),
        "{:?}",
        rows[1]
    );
    assert!(rows[1].4.as_deref().unwrap().contains("professional"));
    let (status, page, _) = viewer.get("/audit").await;
    assert_eq!(status, 200);
    assert!(page.contains("meeting.won") && page.contains("operator@agency.example"));

    // Signed out, the old cookie opens nothing.
    let (status, _, headers) = operator.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((status, location(&headers)), (303, "/sign-in"));
    assert_eq!(operator.get("/inbox").await.0, 303);
    server.stop().await;
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

#[tokio::test]
async fn the_pipeline_shows_prospects_by_stage_and_a_prospect_page_shows_it_whole() {
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    users::add(ctx, "viewer@agency.example", Role::Viewer, PASSWORD)
        .await
        .unwrap();
    let ids = pitched(ctx, 3).await;
    send_step(ctx, &ids[0], 0).await.unwrap();
    let server = Served::fleet(ctx).await;
    let mut b = Browser::new(server.addr());
    assert_eq!(b.sign_in("viewer@agency.example", PASSWORD).await.0, 303);

    // One contacted, two pitched; each row links to its prospect.
    let (status, page, _) = b.get("/pipeline?stage=pitched").await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("href=\"/prospects/").count(), 2, "{page}");
    assert!(
        page.contains("Contacted <span class=\"muted\">1</span>"),
        "{page}"
    );
    let (_, page, _) = b.get("/pipeline?stage=contacted").await;
    assert!(page.contains(&format!("/prospects/{}", pipeline_id(&ids[0]))));
    // Filters narrow, and a filter no prospect matches shows none.
    let (_, page, _) = b
        .get("/pipeline?stage=pitched&city=Miami%2C+FL&class=hot")
        .await;
    let hot = scalar(
        ctx,
        "SELECT COUNT(*) FROM prospects WHERE status = 'pitched' AND lead_class = 'hot'",
    )
    .await;
    assert_eq!(page.matches("href=\"/prospects/").count() as i64, hot);
    let (_, page, _) = b.get("/pipeline?stage=pitched&city=Nowhere").await;
    assert!(page.contains("No prospect here"), "{page}");
    // Found by a part of its name, any case, or of its email; wildcards are text.
    let (name, email): (String, String) =
        sqlx::query_as("SELECT name, email FROM prospects WHERE id = $1")
            .bind(&ids[1])
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
    let part = name[1..name.len() - 1].to_uppercase();
    let (_, page, _) = b
        .get(&format!(
            "/pipeline?stage=pitched&name={}",
            part.replace(' ', "+")
        ))
        .await;
    assert!(
        page.contains(&format!("/prospects/{}", pipeline_id(&ids[1]))),
        "{page}"
    );
    let (_, page, _) = b
        .get(&format!(
            "/pipeline?stage=pitched&name={}",
            &email[..email.find('@').unwrap()]
        ))
        .await;
    assert!(page.contains(&format!("/prospects/{}", pipeline_id(&ids[1]))));
    let (_, page, _) = b.get("/pipeline?stage=pitched&name=%25").await;
    assert!(page.contains("No prospect here"), "a % matches itself only");
    // Input that is not one is refused, naming it.
    let (status, page, _) = b.get("/pipeline?stage=everything").await;
    assert_eq!(status, 422);
    assert!(page.contains("is not a stage"), "{page}");
    let (status, page, _) = b.get("/pipeline?stage=pitched&from=yesterday").await;
    assert_eq!(status, 422);
    assert!(page.contains("is not a date"), "{page}");
    let (status, _, _) = b.get("/pipeline?stage=pitched&after=nonsense").await;
    assert_eq!(status, 422);

    // The contacted prospect whole: every signal, its pitches, its first message and
    // what happened, in order.
    let (status, page, _) = b.get(&format!("/prospects/{}", pipeline_id(&ids[0]))).await;
    assert_eq!(status, 200);
    for signal in cep_shared::signals::Signal::ALL {
        assert!(page.contains(&format!("<td>{signal}</td>")), "{signal}");
    }
    for needle in [
        "Pitches",
        "email · variant",
        "Messages",
        "Timeline",
        "prospect_found",
        "contacted",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    let (status, _, _) = b.get("/prospects/nobody").await;
    assert_eq!(status, 422);
    server.stop().await;
}

/// The actions the audit log holds, oldest first, sign-ins and sign-outs left out.
pub async fn audited(ctx: &cep_workers::Ctx) -> Vec<String> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT action FROM audit_log WHERE action NOT LIKE 'user.%' ORDER BY id")
            .fetch_all(ctx.store.pool())
            .await
            .unwrap();
    rows.into_iter().map(|(a,)| a).collect()
}

/// A prospect id as the board links it.
fn pipeline_id(id: &str) -> String {
    cep_workers::console::url_path(id)
}

#[tokio::test]
async fn clients_money_and_coherence_show_what_was_recorded_and_an_operator_acts_on_them() {
    use cep_shared::jobs::{AggregationJob, FinanceJob, ReportingJob};
    use cep_shared::{JobKind, Layer};
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    users::add(ctx, "viewer@agency.example", Role::Viewer, PASSWORD)
        .await
        .unwrap();
    users::add(ctx, "operator@agency.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    let ids = pitched(ctx, 1).await;
    won_client(
        ctx,
        &ids[0],
        "https://api.calendly.com/i/m1",
        "professional",
    )
    .await;
    let (client, business): (String, String) =
        sqlx::query_as("SELECT id, business_name FROM clients WHERE prospect_id = $1")
            .bind(&ids[0])
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
    ctx.clock.set(ctx.clock.now() + chrono::Duration::hours(2));
    let run = |kind: Layer, body: String| async move {
        cep_workers::handle(ctx, JobKind::Layer(kind), &body)
            .await
            .unwrap()
    };
    run(
        Layer::Reporting,
        serde_json::to_string(&ReportingJob::new("2026-01")).unwrap(),
    )
    .await;
    run(
        Layer::Finance,
        serde_json::to_string(&FinanceJob::new("2026-01")).unwrap(),
    )
    .await;
    cep_workers::aggregation::handle(ctx, AggregationJob::new("2026-01-09"))
        .await
        .unwrap();
    let change = cep_workers::layers::params::set(
        ctx,
        cep_workers::layers::params::PITCH_VARIANT_WEIGHTS,
        &std::collections::BTreeMap::from([("a".to_string(), 1.5)]),
        "a replies more",
        "2026-01:test",
    )
    .await
    .unwrap()
    .unwrap();
    let (invoice,): (String,) = sqlx::query_as("SELECT id FROM invoices WHERE client_id = $1")
        .bind(&client)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    let (report,): (String,) = sqlx::query_as("SELECT id FROM reports WHERE client_id = $1")
        .bind(&client)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    let server = Served::fleet(ctx).await;
    let mut viewer = Browser::new(server.addr());
    assert_eq!(
        viewer.sign_in("viewer@agency.example", PASSWORD).await.0,
        303
    );
    let mut op = Browser::new(server.addr());
    assert_eq!(op.sign_in("operator@agency.example", PASSWORD).await.0, 303);
    let csrf = op.csrf().await;
    let path = |p: &str| cep_workers::console::url_path(p);
    let fee = cep_shared::format::dollars(ctx.settings.layers.finance.professional.monthly_cents);

    // The client: its tier's fee, its checklist, no profile linked so no score claimed.
    let (status, page, _) = viewer.get("/clients").await;
    assert_eq!(status, 200);
    assert!(page.contains(&business) && page.contains(&fee), "{page}");
    let (status, page, _) = viewer.get(&format!("/clients/{}", path(&client))).await;
    assert_eq!(status, 200);
    for needle in [
        "Onboarding: documents requested",
        "collect documents",
        "No Business Profile linked",
        "(owed)",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    assert!(!page.contains("Measured profile score"));

    // Money: January's MRR is the one client's fee; no churn yet is no data, not 0 %.
    let (status, page, _) = viewer.get("/money").await;
    assert_eq!(status, 200);
    assert!(page.contains("<td>2026-01</td>"), "{page}");
    assert!(page.contains(&fee));
    assert!(page.contains("no data"));
    // The operator marks the invoice paid: it is, and the log says who.
    let (status, _, _) = viewer
        .post(
            &format!("/invoices/{}/paid", path(&invoice)),
            &[("csrf", &viewer.csrf().await)],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = op
        .post(
            &format!("/invoices/{}/paid", path(&invoice)),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    let paid = scalar(
        ctx,
        &format!("SELECT COUNT(*) FROM invoices WHERE id = '{invoice}' AND paid_at IS NOT NULL"),
    )
    .await;
    assert_eq!(paid, 1);

    // Coherence: the stored Φ_sync, the change, and its rollback by the operator.
    let (status, page, _) = viewer.get("/coherence").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Φ_sync by period") && page.contains("a replies more"),
        "{page}"
    );
    assert!(!page.contains("Roll back"), "a viewer gets no button");
    let rollback = format!("/changes/{}/rollback", path(&change));
    let (status, _, _) = viewer
        .post(&rollback, &[("csrf", &viewer.csrf().await)])
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = op.post(&rollback, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let (_, page, _) = op.get("/coherence").await;
    assert!(page.contains("rolled back"), "{page}");

    // A report's notes: written by the operator, shown with who wrote them; the report
    // itself is served allowed nothing but its styles.
    let notes = format!("/reports/{}/notes", path(&report));
    let (status, _, _) = op
        .post(
            &notes,
            &[("csrf", &csrf), ("notes", "Great month <b>for</b> you.")],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = viewer.get(&format!("/reports/{}", path(&report))).await;
    assert!(
        page.contains("Great month &lt;b&gt;for&lt;/b&gt; you."),
        "{page}"
    );
    assert!(page.contains("by operator@agency.example"));
    let (status, _, headers) = viewer
        .get(&format!("/reports/{}/html", path(&report)))
        .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );

    let actions = audited(ctx).await;
    assert_eq!(
        actions,
        ["invoice.paid", "parameter.rollback", "report.notes"]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_pauses_a_queue_and_retries_or_discards_dead_letters_an_operator_may_not() {
    use cep_shared::queue::{NewJob, Settle};
    use cep_shared::{JobKind, Layer};
    let h = harness(Backend::Fleet, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    users::add(ctx, "admin@agency.example", Role::Admin, PASSWORD)
        .await
        .unwrap();
    users::add(ctx, "operator@agency.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    let q = JobKind::Layer(Layer::Reporting);
    let mut ids = Vec::new();
    for (city, reason) in [
        ("miami", "timeout"),
        ("austin", "timeout"),
        ("tampa", "refused"),
    ] {
        ctx.queue
            .push(NewJob::new(q, &serde_json::json!({ "city": city }), 0))
            .await
            .unwrap();
        let job = ctx
            .queue
            .fetch(&[q.queue()], "w1", 1)
            .await
            .unwrap()
            .remove(0);
        ctx.queue.start("w1", &[&job]).await.unwrap();
        let reason = reason.to_owned();
        ctx.queue
            .settle("w1", &job, Settle::Dead { reason })
            .await
            .unwrap();
        ids.push(job.id);
    }
    let server = Served::fleet(ctx).await;
    let mut admin = Browser::new(server.addr());
    assert_eq!(admin.sign_in("admin@agency.example", PASSWORD).await.0, 303);
    let mut op = Browser::new(server.addr());
    assert_eq!(op.sign_in("operator@agency.example", PASSWORD).await.0, 303);
    let (a_csrf, o_csrf) = (admin.csrf().await, op.csrf().await);

    let (status, page, _) = admin.get("/fleet").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Dead letters: reporting") && page.contains(&ids[2]),
        "{page}"
    );
    assert!(page.contains("Retry all matching"));
    let (_, page, _) = op.get("/fleet").await;
    assert!(
        !page.contains("Retry all matching"),
        "an operator gets no fleet buttons"
    );

    // The operator is refused; the admin pauses, and no worker gets a job from it.
    let pause = format!("/queues/{}/pause", q.queue());
    assert_eq!(op.post(&pause, &[("csrf", &o_csrf)]).await.0, 403);
    assert!(ctx.queue.paused().await.unwrap().is_empty());
    assert_eq!(admin.post(&pause, &[("csrf", &a_csrf)]).await.0, 303);
    assert!(ctx.queue.paused().await.unwrap().contains(q.queue()));
    let (_, page, _) = admin.get("/fleet").await;
    assert!(page.contains("<strong>paused</strong>"), "{page}");
    let (status, page, _) = admin
        .post("/queues/nonsense/pause", &[("csrf", &a_csrf)])
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("`nonsense` is not a queue"), "{page}");

    // Retry every timeout: two jobs ready again (the queue is paused, so they wait);
    // discard the last one by id.
    let dead = format!("/queues/{}/dead", q.queue());
    assert_eq!(
        op.post(
            &dead,
            &[
                ("csrf", &o_csrf),
                ("action", "retry"),
                ("matching", "timeout")
            ]
        )
        .await
        .0,
        403
    );
    let (status, _, _) = admin
        .post(
            &dead,
            &[
                ("csrf", &a_csrf),
                ("action", "retry"),
                ("matching", "timeout"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let stats = ctx.queue.stats(&[q.queue()]).await.unwrap();
    assert_eq!((stats[0].ready, stats[0].dead), (2, 1));
    // The page shows the worker that leased them, and how long the ready ones waited.
    let (_, page, _) = admin.get("/fleet").await;
    assert!(page.contains("<code>w1</code>"), "{page}");
    assert!(page.contains("Oldest waiting") && page.contains("Done, last 5 min"));
    assert!(page.contains("0 s"), "the retried jobs are due now: {page}");
    let (status, page, _) = op.get(&format!("/fleet?find={}", ids[2])).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Found (1)") && page.contains("tampa"),
        "{page}"
    );
    assert!(
        ctx.queue
            .fetch(&[q.queue()], "w2", 10)
            .await
            .unwrap()
            .is_empty(),
        "paused"
    );
    let (status, _, _) = admin
        .post(
            &dead,
            &[("csrf", &a_csrf), ("action", "discard"), ("id", &ids[2])],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(ctx.queue.stats(&[q.queue()]).await.unwrap()[0].dead, 0);
    let resume = format!("/queues/{}/resume", q.queue());
    assert_eq!(admin.post(&resume, &[("csrf", &a_csrf)]).await.0, 303);
    assert_eq!(
        ctx.queue.fetch(&[q.queue()], "w2", 10).await.unwrap().len(),
        2
    );

    let actions = audited(ctx).await;
    assert_eq!(
        actions,
        [
            "queue.pause",
            "dead_letter.retry",
            "dead_letter.discard",
            "queue.resume"
        ]
    );
    if let cep_shared::queue::Queue::Redis(r) = &ctx.queue {
        r.purge().await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn replies_unknown_sends_and_overdue_onboarding_wait_in_the_inbox_until_settled() {
    let mut s = settings();
    s.layers.outreach.dry_run = false;
    s.providers.smtp.host = "127.0.0.1".into();
    s.providers.smtp.port = 9;
    let h = harness(Backend::Embedded, s, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    users::add(ctx, "operator@agency.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    let ids = pitched(ctx, 3).await;
    // A LinkedIn task marked replied, and one whose worker died mid-send: its next
    // delivery flags it unknown rather than sending it twice.
    let replied = send_step(ctx, &ids[1], 1).await.unwrap();
    cep_workers::layers::outreach::tasks::complete(
        ctx,
        &replied.message_id,
        cep_workers::layers::outreach::tasks::TaskOutcome::Replied,
        ctx.now(),
    )
    .await
    .unwrap();
    // The third's first message (a LinkedIn task), as a worker that died after claiming it left it:
    // sending, nothing recorded of its outcome.
    let lost = send_step(ctx, &ids[2], 1).await.unwrap();
    for sql in [
        "UPDATE messages SET status = 'sending' WHERE id = $1",
        "DELETE FROM events WHERE subject IN ($1, (SELECT prospect_id FROM messages WHERE id = $1))
            AND kind IN ('delivered', 'contacted')",
        "UPDATE prospects SET status = 'pitched' WHERE id = (SELECT prospect_id FROM messages WHERE id = $1)",
    ] {
        sqlx::query(sql)
            .bind(&lost.message_id)
            .execute(ctx.store.pool())
            .await
            .unwrap();
    }
    let again = send_step(ctx, &ids[2], 1).await.unwrap();
    assert_eq!(again.status, MessageStatus::Unknown);
    // A client whose first onboarding task is past due.
    won_client(ctx, &ids[0], "https://api.calendly.com/i/o1", "starter").await;
    ctx.clock.set(ctx.clock.now() + chrono::Duration::days(10));
    let server = Served::fleet(ctx).await;
    let mut op = Browser::new(server.addr());
    assert_eq!(op.sign_in("operator@agency.example", PASSWORD).await.0, 303);
    let csrf = op.csrf().await;
    let path = |p: &str| cep_workers::console::url_path(p);

    let (_, page, _) = op.get("/inbox").await;
    for needle in [
        "Replies to answer (1)",
        "Messages that may not have gone out (1)",
        "Onboarding tasks past due",
        "worker stopped mid-send",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    // The reply answered; the unknown message checked and found sent.
    let answered = format!("/prospects/{}/answered", path(&ids[1]));
    assert_eq!(op.post(&answered, &[("csrf", &csrf)]).await.0, 303);
    let resolve = format!("/messages/{}/resolve", path(&lost.message_id));
    let (status, page, _) = op
        .post(&resolve, &[("csrf", &csrf), ("how", "maybe")])
        .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("`maybe` is not sent, resend or drop"),
        "{page}"
    );
    assert_eq!(
        op.post(&resolve, &[("csrf", &csrf), ("how", "sent")])
            .await
            .0,
        303
    );
    let status: (String,) = sqlx::query_as("SELECT status FROM messages WHERE id = $1")
        .bind(&lost.message_id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(status.0, "sent");
    // It went out: the prospect was contacted, counted as a delivery would have.
    let contacted = format!(
        "SELECT COUNT(*) FROM prospects p JOIN events e ON e.subject = p.id AND e.kind = 'contacted'
          WHERE p.id = '{}' AND p.status = 'contacted'",
        ids[2]
    );
    assert_eq!(scalar(ctx, &contacted).await, 1);
    // Settled once: again is refused, naming its state.
    let (status, page, _) = op
        .post(&resolve, &[("csrf", &csrf), ("how", "resend")])
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("is sent, not of unknown outcome"), "{page}");
    // The overdue task done from the inbox.
    let (task,): (String,) = sqlx::query_as(
        "SELECT t.id FROM tasks t JOIN clients c ON c.id = t.client_id
          WHERE c.prospect_id = $1 AND t.seq = 0",
    )
    .bind(&ids[0])
    .fetch_one(ctx.store.pool())
    .await
    .unwrap();
    let done = format!("/onboarding-tasks/{}/done", path(&task));
    assert_eq!(op.post(&done, &[("csrf", &csrf)]).await.0, 303);
    let (_, page, _) = op.get("/inbox").await;
    assert!(!page.contains("Replies to answer"), "{page}");
    assert!(!page.contains("Messages that may not have gone out"));
    assert!(!page.contains(&format!("onboarding-{task}")));
    let actions = audited(ctx).await;
    assert_eq!(
        actions,
        ["reply.answered", "message.resolve", "onboarding_task.done"]
    );
    server.stop().await;
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

#[tokio::test]
async fn an_operator_links_a_stray_booking_records_a_no_show_or_a_loss_and_approves_a_post() {
    use cep_shared::vocabulary::MeetingState;
    let h = harness(Backend::Embedded, settings(), Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    users::add(ctx, "operator@agency.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    let ids = pitched(ctx, 3).await;
    // A booking from an address we never wrote to, with no signed link: it waits to be
    // linked. Another through a signed link, for the no-show and the loss.
    let stray = |uri: &str| {
        let body = serde_json::json!({
            "event": "invitee.created",
            "payload": {
                "uri": uri, "email": "someone@else.example", "name": "Sam Stranger",
                "scheduled_event": {"name": "Discovery", "start_time": "2026-01-09T16:00:00.000000Z"}
            }
        });
        let w: booking::Webhook = serde_json::from_value(body).unwrap();
        w.into_job().unwrap()
    };
    let unlinked = booking::handle(ctx, stray("https://api.calendly.com/i/s1"))
        .await
        .unwrap();
    assert_eq!(unlinked.prospect_id, None);
    let a = booking::handle(
        ctx,
        booking_job(
            "invitee.created",
            "https://api.calendly.com/i/a1",
            &ids[1],
            false,
        ),
    )
    .await
    .unwrap();
    let b = booking::handle(
        ctx,
        booking_job(
            "invitee.created",
            "https://api.calendly.com/i/b1",
            &ids[2],
            false,
        ),
    )
    .await
    .unwrap();
    won_client(ctx, &ids[0], "https://api.calendly.com/i/w1", "starter").await;
    // Its onboarding and first profile pass run: the pass plans post drafts.
    ctx.clock.set(ctx.clock.now() + chrono::Duration::hours(2));
    drain(ctx).await;
    let server = Served::fleet(ctx).await;
    let mut op = Browser::new(server.addr());
    assert_eq!(op.sign_in("operator@agency.example", PASSWORD).await.0, 303);
    let csrf = op.csrf().await;
    let state = |id: String| async move { meeting_state(ctx, &id).await };

    let (_, page, _) = op.get("/inbox").await;
    assert!(page.contains("link to a prospect"), "{page}");
    let link = format!("/meetings/{}/link", unlinked.meeting_id);
    let (status, page, _) = op
        .post(&link, &[("csrf", &csrf), ("prospect_id", "nobody")])
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("nobody"), "{page}");
    assert_eq!(
        op.post(&link, &[("csrf", &csrf), ("prospect_id", &ids[1])])
            .await
            .0,
        303
    );
    let (linked,): (Option<String>,) =
        sqlx::query_as("SELECT prospect_id FROM meetings WHERE id = $1")
            .bind(&unlinked.meeting_id)
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
    assert_eq!(linked.as_deref(), Some(ids[1].as_str()));

    let outcome = |m: &str| format!("/meetings/{m}/outcome");
    assert_eq!(
        op.post(
            &outcome(&a.meeting_id),
            &[("csrf", &csrf), ("outcome", "no_show")]
        )
        .await
        .0,
        303
    );
    assert_eq!(state(a.meeting_id.clone()).await, MeetingState::NoShow);
    op.post(
        &outcome(&b.meeting_id),
        &[("csrf", &csrf), ("outcome", "held")],
    )
    .await;
    let (status, page, _) = op
        .post(
            &outcome(&b.meeting_id),
            &[("csrf", &csrf), ("outcome", "lost"), ("reason", " ")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("needs a reason"), "{page}");
    let lost = [
        ("csrf", csrf.as_str()),
        ("outcome", "lost"),
        ("reason", "too expensive"),
    ];
    assert_eq!(op.post(&outcome(&b.meeting_id), &lost).await.0, 303);
    assert_eq!(state(b.meeting_id.clone()).await, MeetingState::Lost);

    // The won client's first post draft, approved by the operator.
    let (post,): (String,) = sqlx::query_as(
        "SELECT id FROM posts WHERE approved_at IS NULL ORDER BY scheduled_for LIMIT 1",
    )
    .fetch_one(ctx.store.pool())
    .await
    .unwrap();
    let approve = format!("/posts/{}/approve", cep_workers::console::url_path(&post));
    assert_eq!(op.post(&approve, &[("csrf", &csrf)]).await.0, 303);
    let (by,): (Option<String>,) = sqlx::query_as("SELECT approved_by FROM posts WHERE id = $1")
        .bind(&post)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(by.as_deref(), Some("operator@agency.example"));
    let actions = audited(ctx).await;
    assert_eq!(
        actions,
        [
            "meeting.link",
            "meeting.no_show",
            "meeting.held",
            "meeting.lost",
            "post.approve"
        ]
    );
    server.stop().await;
}
