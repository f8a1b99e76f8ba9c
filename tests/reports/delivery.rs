//! A client's report delivered: its no-login link, its PDF, the month's email through
//! a real SMTP server, and `cep report`.

use super::{at, client_page};
use crate::gbp::{LOCATION, profile_reads};
use crate::helpers::*;
use cep_shared::Clock;
use cep_workers::layers::optimization::gbp;
use wiremock::MockServer;

/// The page a link serves: status and body.
async fn open(ctx: &cep_workers::Ctx, url: &str) -> (u16, String) {
    use tower::ServiceExt;
    let path = &url[url.find("/r/").unwrap()..];
    let resp = cep_workers::http::router(ctx.clone())
        .oneshot(
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn report_of(ctx: &cep_workers::Ctx, period: &str) -> String {
    client_page(ctx, period).await;
    let (id,): (String,) = sqlx::query_as(
        "SELECT id FROM reports WHERE client_id = 'client_1' ORDER BY period_start DESC LIMIT 1",
    )
    .fetch_one(ctx.store.pool())
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn a_link_opens_the_report_until_it_expires_or_is_revoked() {
    use cep_workers::layers::reporting::links;
    let clock = Clock::simulated(at(2026, 3, 5));
    let h = harness(Backend::Embedded, settings(), clock.clone()).await;
    a_client(&h.ctx).await;
    let report = report_of(&h.ctx, "2026-02").await;
    let link = links::create(&h.ctx, &report, "ops@agency.example")
        .await
        .unwrap();
    let (status, page) = open(&h.ctx, &link.url).await;
    assert_eq!(status, 200);
    assert!(page.contains("<h1>Oak Dental</h1>"), "{page}");
    // The store cannot open it: it keeps the token's digest only.
    let token = link.url.rsplit('/').next().unwrap();
    assert_eq!(
        scalar(
            &h.ctx,
            &format!("SELECT COUNT(*) FROM report_links WHERE token_digest = '{token}'")
        )
        .await,
        0
    );
    // Ninety days on, it has expired; the client is told whom to ask.
    clock.set(at(2026, 3, 5) + chrono::Duration::days(90));
    let (status, page) = open(&h.ctx, &link.url).await;
    assert_eq!(status, 410);
    assert!(page.contains("This report link has expired."), "{page}");
    assert!(!page.contains("Oak Dental"));
    // A new one works until it is revoked.
    let again = links::create(&h.ctx, &report, "ops@agency.example")
        .await
        .unwrap();
    assert_eq!(open(&h.ctx, &again.url).await.0, 200);
    assert!(
        links::revoke(&h.ctx, &again.id, "ops@agency.example")
            .await
            .unwrap()
    );
    let (status, page) = open(&h.ctx, &again.url).await;
    assert_eq!(status, 410);
    assert!(page.contains("This report link was withdrawn."));
    // A token nobody made, or not a token at all.
    let made_up = format!("{}/r/{}", "http://x", "ab".repeat(32));
    assert_eq!(open(&h.ctx, &made_up).await.0, 404);
    assert_eq!(open(&h.ctx, "http://x/r/..%2f..%2fetc").await.0, 404);
}

/// The first page of a PDF, rendered by poppler, is not blank: the share of its pixels
/// that are not white.
fn ink(pdf: &[u8]) -> f64 {
    let dir = TempDir::new();
    let file = dir.0.join("report.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new("pdftoppm")
        .args(["-f", "1", "-l", "1", "-r", "50", "-gray"])
        .arg(&file)
        .arg(dir.0.join("page"))
        .output()
        .unwrap_or_else(|e| {
            panic!("the PDF test needs pdftoppm (apt-get install poppler-utils): {e}")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "pgm"))
        .expect("a page image");
    // Binary PGM: "P5\n<w> <h>\n<max>\n" then one byte a pixel.
    let bytes = std::fs::read(page).unwrap();
    let mut fields = 0;
    let mut at = 0;
    while fields < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields += 1;
    }
    let pixels = &bytes[at + 1..];
    pixels.iter().filter(|p| **p < 200).count() as f64 / pixels.len() as f64
}

#[tokio::test]
async fn the_months_close_emails_the_report_with_its_pdf_once_and_an_operator_resends_it() {
    use crate::email::{Sink, smtp_settings};
    use cep_workers::layers::reporting::delivery;
    let sink = Sink::start(&[]);
    let google = MockServer::start().await;
    profile_reads(&google, None, None).await;
    let mut s = smtp_settings(sink.port);
    s.providers.gbp.business_information_url = google.uri();
    s.providers.gbp.v4_url = google.uri();
    s.providers.gbp.performance_url = google.uri();
    s.providers.gbp.performance_history_days = 400;
    s.reports.brand.agency_name = "Brightside Local".into();
    s.reports.from = "reports@brightside.example".into();
    let secrets = cep_shared::Secrets {
        gbp_access_token: Some("gbp-test-token".into()),
        ..Default::default()
    };
    let h = harness_with(
        Backend::Embedded,
        s,
        secrets,
        Clock::simulated(at(2026, 4, 5)),
    )
    .await;
    let ctx = &h.ctx;
    a_client(ctx).await;
    gbp::link(ctx, "client_1", LOCATION).await.unwrap();
    client_page(ctx, "2026-03").await;
    // The close queued the delivery for when March's figures settled (4 April): due.
    drain(ctx).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "one recipient, one email");
    let mail = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .unwrap();
    assert_eq!(
        mail.subject(),
        Some("Oak Dental: your March 2026 profile report")
    );
    assert_eq!(
        mail.to().and_then(|t| t.first()).and_then(|a| a.address()),
        Some("pat@oak.example")
    );
    let text = mail.body_text(0).unwrap().into_owned();
    assert!(text.starts_with("Hello Pat Owner,"), "{text}");
    assert!(text.contains("Calls: 496 (+22.2 %)"), "{text}");
    let pdf = mail
        .attachments()
        .find(|a| {
            use mail_parser::MimeHeaders;
            a.attachment_name().is_some_and(|n| n.ends_with(".pdf"))
        })
        .expect("the PDF is attached");
    assert!(pdf.contents().starts_with(b"%PDF-"));
    let ink = ink(pdf.contents());
    assert!(ink > 0.01, "the first page is blank ({ink})");
    // The link in the email opens the report.
    let url = text
        .lines()
        .find(|l| l.contains("/r/"))
        .unwrap()
        .trim()
        .to_owned();
    let (status, page) = open(ctx, &url).await;
    assert_eq!(status, 200);
    assert!(page.contains("Brightside Local"));

    // The same delivery again (a retry, a second close): nothing more goes out.
    client_page(ctx, "2026-03").await;
    drain(ctx).await;
    assert_eq!(sink.messages().len(), 1, "never sent twice");
    // A claim a crash left behind is of unknown outcome: recorded, never sent again.
    let (report,): (String,) = sqlx::query_as("SELECT report_id FROM report_deliveries")
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    let claim = cep_shared::ids::stable_id("rdl", &[&report, "2", "pat@oak.example"]);
    sqlx::query(
        "INSERT INTO report_deliveries (id, report_id, round, recipient, status, requested_by, created_at, updated_at)
         VALUES ($1, $2, 2, 'pat@oak.example', 'sending', 'schedule', 0, 0)",
    )
    .bind(&claim)
    .bind(&report)
    .execute(ctx.store.pool())
    .await
    .unwrap();
    let crashed = delivery::deliver(
        ctx,
        cep_shared::jobs::DeliveryJob {
            report_id: report.clone(),
            round: 2,
            requested_by: "schedule".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        crashed.recipients,
        [("pat@oak.example".to_owned(), "unknown".to_owned())]
    );
    assert_eq!(
        sink.messages().len(),
        1,
        "an interrupted send is not sent again"
    );
    // An operator's resend is the next round.
    let round = delivery::request(ctx, &report, "ops@agency.example")
        .await
        .unwrap();
    assert_eq!(round, 3);
    drain(ctx).await;
    assert_eq!(sink.messages().len(), 2);
}

#[tokio::test]
async fn a_worker_without_chromium_sends_the_link_and_records_the_missing_pdf() {
    use crate::email::{Sink, smtp_settings};
    let sink = Sink::start(&[]);
    let mut s = smtp_settings(sink.port);
    s.engines.testing.browser = "/nonexistent/chromium".into();
    let h = harness(Backend::Embedded, s, Clock::simulated(at(2026, 3, 6))).await;
    let ctx = &h.ctx;
    a_client(ctx).await;
    client_page(ctx, "2026-02").await;
    drain(ctx).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1);
    let mail = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .unwrap();
    assert_eq!(mail.attachment_count(), 0);
    let text = mail.body_text(0).unwrap().into_owned();
    assert!(text.contains("/r/") && !text.contains("attached"), "{text}");
    let (status, detail): (String, String) =
        sqlx::query_as("SELECT status, detail FROM report_deliveries")
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
    assert_eq!(status, "sent");
    assert!(
        detail.starts_with("sent without the PDF:") && detail.contains("/nonexistent/chromium"),
        "{detail}"
    );
}

#[test]
fn cep_report_writes_a_clients_month_as_html_and_pdf_or_says_what_is_missing() {
    let dir = TempDir::new();
    let run = |args: &[&str]| cep_embedded(&dir, args).output().unwrap();
    let onboarding = format!("{}/examples/onboarding.json", env!("CARGO_MANIFEST_DIR"));
    assert!(
        run(&["layer", "5", "--input", &onboarding])
            .status
            .success()
    );
    let client = "cli_575b10fbf1f5a9b4";
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let missing = run(&["report", client, "--period", &month]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        err.contains(&format!(
            "no monthly report of `{client}` for {month}: the month's close writes it"
        )),
        "{err}"
    );
    let week = run(&["report", client, "--period", "2026-W03"]);
    assert!(String::from_utf8_lossy(&week.stderr).contains("is not a month"));
    let close = dir.0.join("close.json");
    std::fs::write(&close, format!(r#"{{"period": "{month}"}}"#)).unwrap();
    assert!(
        run(&["layer", "7", "--input", close.to_str().unwrap()])
            .status
            .success()
    );
    let (html, pdf) = (dir.0.join("r.html"), dir.0.join("r.pdf"));
    let out = run(&[
        "report",
        client,
        "--period",
        &month,
        "--html",
        html.to_str().unwrap(),
        "--pdf",
        pdf.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Your Business Profile is not linked to our account yet"));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
}
