//! The console in Debian's headless Chromium, as a person uses it: sign in through the
//! form, find a prospect, mark a call task replied, mark a meeting held then won (the
//! client and its onboarding appear), retry a dead letter as an admin, and a viewer
//! refused an action. Each main page is photographed, at desktop and phone widths, into
//! `target/console-screenshots/` (the README's pictures in `docs/console/` are these).

use crate::helpers::*;
use cep_shared::queue::{NewJob, Settle};
use cep_shared::vocabulary::{MessageStatus, Role};
use cep_shared::{Clock, JobKind, Layer};
use cep_workers::clients::chromium::Chromium;
use cep_workers::console::users;
use cep_workers::layers::booking;

const PASSWORD: &str = "a long enough password";

struct Tab {
    browser: Chromium,
    tab: String,
    base: String,
}

impl Tab {
    async fn open(base: String, width: u32, height: u32, mobile: bool) -> Self {
        let mut browser = Chromium::launch("chromium", true)
            .await
            .expect("Debian's chromium (apt-get install chromium)");
        let tab = browser.tab(width, height, mobile).await.unwrap();
        Self { browser, tab, base }
    }

    async fn go(&mut self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.browser.navigate(&self.tab, &url).await.unwrap();
    }

    async fn js(&mut self, expression: &str) -> serde_json::Value {
        self.browser.evaluate(&self.tab, expression).await.unwrap()
    }

    /// Runs `expression` (a click or a form submit) and waits for the page it loads.
    async fn act(&mut self, expression: &str) {
        self.js(expression).await;
        self.browser.loaded(&self.tab).await.unwrap();
    }

    async fn path(&mut self) -> String {
        self.js("location.pathname")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn text(&mut self) -> String {
        self.js("document.body.innerText")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn sign_in(&mut self, email: &str) {
        self.go("/sign-in").await;
        self.act(&format!(
            "document.querySelector('#email').value = '{email}';
             document.querySelector('#password').value = '{PASSWORD}';
             document.querySelector('form').submit();"
        ))
        .await;
        assert_eq!(self.path().await, "/inbox", "signed in as {email}");
    }

    async fn sign_out(&mut self) {
        self.act("document.querySelector('form[action=\"/sign-out\"]').submit()")
            .await;
        assert_eq!(self.path().await, "/sign-in");
    }

    /// Photographs the page into the screenshots directory; refuses a blank one.
    async fn photo(&mut self, name: &str) {
        let png = self.browser.screenshot(&self.tab, true).await.unwrap();
        assert!(
            png.len() > 8_000,
            "{name}: a {} byte picture is blank",
            png.len()
        );
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_works_the_console_in_a_browser() {
    // Out of the dry run so a LinkedIn step is a person's task (no email step is sent).
    let mut s = settings();
    s.layers.outreach.dry_run = false;
    s.providers.smtp.host = "127.0.0.1".into();
    s.providers.smtp.port = 9;
    let h = harness(Backend::Embedded, s, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    for (email, role) in [
        ("owner@agency.example", Role::Operator),
        ("admin@agency.example", Role::Admin),
        ("viewer@agency.example", Role::Viewer),
    ] {
        users::add(ctx, email, role, PASSWORD).await.unwrap();
    }
    let ids = pitched(ctx, 4).await;
    let b = booking::handle(
        ctx,
        booking_job(
            "invitee.created",
            "https://api.calendly.com/i/b1",
            &ids[0],
            false,
        ),
    )
    .await
    .unwrap();
    let task = send_step(ctx, &ids[1], 1).await.unwrap();
    assert_eq!(task.status, MessageStatus::Task);
    let q = JobKind::Layer(Layer::Reporting);
    ctx.queue
        .push(NewJob::new(
            q,
            &serde_json::json!({ "period": "2026-13" }),
            0,
        ))
        .await
        .unwrap();
    let job = ctx
        .queue
        .fetch(&[q.queue()], "w1", 1)
        .await
        .unwrap()
        .remove(0);
    let reason = "invalid input: `2026-13` is not a period".to_owned();
    ctx.queue
        .settle("w1", &job, Settle::Dead { reason })
        .await
        .unwrap();
    ctx.clock.set(meeting_start() + chrono::Duration::hours(1));
    let server = Served::fleet(ctx).await;
    let base = format!("http://{}", server.addr());
    let mut t = Tab::open(base.clone(), 1280, 900, false).await;

    // Signed out, the console sends to its sign-in form; the form signs in.
    t.go("/inbox").await;
    assert_eq!(t.path().await, "/sign-in");
    t.photo("sign-in").await;
    t.sign_in("owner@agency.example").await;
    let nav = t.js("[...document.querySelectorAll('header a')].map(a => a.textContent.trim().split(' ')[0]).join(',')").await;
    assert_eq!(
        nav,
        "Inbox,Pipeline,Clients,Reports,Money,Coherence,Fleet,Audit"
    );
    let inbox = t.text().await;
    assert!(
        inbox.contains("Meetings (1)") && inbox.contains("Calls, LinkedIn and texts (1)"),
        "{inbox}"
    );
    t.photo("inbox").await;

    // Find a prospect on the board and open it.
    t.go("/pipeline?stage=pitched").await;
    t.photo("pipeline").await;
    t.act("document.querySelector('a[href^=\"/prospects/\"]').click()")
        .await;
    assert!(t.path().await.starts_with("/prospects/"));
    assert!(t.text().await.contains("Profile score"));
    t.photo("prospect").await;

    // The LinkedIn task: replied.
    t.go("/inbox").await;
    t.act(&format!(
        "document.querySelector('#task-{} button[value=replied]').click()",
        task.message_id
    ))
    .await;
    let status = scalar(
        ctx,
        &format!(
            "SELECT COUNT(*) FROM prospects WHERE id = '{}' AND status = 'replied'",
            ids[1]
        ),
    )
    .await;
    assert_eq!(status, 1);

    // The meeting: held, then won on the tier its lead class suggests; onboarding makes
    // the client, and the client's page shows its checklist.
    t.act(&format!(
        "document.querySelector('#meeting-{} button[value=held]').click()",
        b.meeting_id
    ))
    .await;
    t.act(&format!(
        "document.querySelector('#meeting-{} select[name=tier]').value = 'professional';
         document.querySelector('#meeting-{} button[value=won]').click()",
        b.meeting_id, b.meeting_id
    ))
    .await;
    ctx.clock.set(meeting_start() + chrono::Duration::hours(3));
    drain(ctx).await;
    t.go("/clients").await;
    t.photo("clients").await;
    t.act("document.querySelector('a[href^=\"/clients/\"]').click()")
        .await;
    let client = t.text().await;
    assert!(
        client.contains("Onboarding: documents requested") && client.contains("professional"),
        "{client}"
    );
    t.photo("client").await;
    // The month's close writes the new client's report: listed, then opened with what
    // an operator does with it.
    ctx.clock.set(meeting_start() + chrono::Duration::hours(4));
    let month = cep_shared::period::Period::containing(cep_shared::period::Kind::Month, ctx.now())
        .to_string();
    cep_workers::handle(
        ctx,
        cep_shared::JobKind::Layer(cep_shared::Layer::Reporting),
        &serde_json::json!({ "period": month }).to_string(),
    )
    .await
    .unwrap();
    t.go("/reports").await;
    t.photo("reports").await;
    t.act("document.querySelector('main a[href^=\"/reports/\"]').click()")
        .await;
    let report = t.text().await;
    assert!(
        report.contains("Send to the client") && report.contains("Make a link"),
        "{report}"
    );
    // Won from the pipeline, never read through its account: the score prospecting
    // found, said to be that.
    let page = t
        .js("fetch(document.querySelector('iframe').src).then(r => r.text())")
        .await;
    let page = page.as_str().unwrap_or_default();
    assert!(
        page.contains("when we first looked at your listing, before you joined"),
        "{page}"
    );
    t.photo("report").await;
    for page in ["money", "coherence", "audit"] {
        t.go(&format!("/{page}")).await;
        t.photo(page).await;
    }
    t.sign_out().await;

    // The admin retries the dead letter from the fleet page.
    t.sign_in("admin@agency.example").await;
    t.go("/fleet").await;
    t.photo("fleet").await;
    t.act(&format!(
        "document.querySelector('input[name=id][value=\"{}\"]').form.querySelector('button[value=retry]').click()",
        job.id
    ))
    .await;
    assert_eq!(ctx.queue.stats(&[q.queue()]).await.unwrap()[0].dead, 0);
    // The counters follow the queue without a reload: pause the queue behind the page's
    // back and watch the page say so.
    ctx.queue.pause(q.queue()).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let row = t
            .js(&format!(
                "document.querySelector('#queue-{}').innerText",
                q.queue()
            ))
            .await;
        if row.as_str().unwrap_or_default().contains("paused") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fleet page did not refresh: {row}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    ctx.queue.resume(q.queue()).await.unwrap();
    t.sign_out().await;

    // A viewer sees the inbox without buttons, and a forged action is refused.
    t.sign_in("viewer@agency.example").await;
    assert_eq!(
        t.js("document.querySelectorAll('main button').length")
            .await,
        0
    );
    let status = t
        .js(&format!(
            "fetch('/tasks/{}/done', {{method: 'POST', headers: {{'content-type': 'application/x-www-form-urlencoded'}},
               body: 'csrf=' + document.querySelector('input[name=csrf]').value + '&outcome=done'}}).then(r => r.status)",
            task.message_id
        ))
        .await;
    assert_eq!(status, 403);
    t.browser.close().await;

    // At a phone's width the inbox needs no sideways scrolling of the page.
    let mut phone = Tab::open(base, 412, 915, true).await;
    phone.sign_in("owner@agency.example").await;
    let wide = phone
        .js("document.documentElement.scrollWidth <= window.innerWidth + 1")
        .await;
    assert_eq!(wide, true);
    phone.photo("inbox-phone").await;
    phone.browser.close().await;
    server.stop().await;
}
