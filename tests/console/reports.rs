//! The console's client reports: the month's list with deliveries, a report's page, its
//! PDF, and an operator's notes, sends, links and revocations, each audited.

use super::{Browser, PASSWORD, audited, location};
use crate::helpers::*;
use cep_shared::Clock;
use cep_shared::vocabulary::Role;
use cep_workers::console::users;

#[tokio::test]
async fn an_operator_sends_a_report_makes_and_revokes_its_link_and_writes_its_notes() {
    use chrono::TimeZone;
    let clock = Clock::simulated(chrono::Utc.with_ymd_and_hms(2026, 3, 5, 12, 0, 0).unwrap());
    let h = harness(Backend::Embedded, settings(), clock).await;
    let ctx = &h.ctx;
    a_client(ctx).await;
    cep_workers::handle(
        ctx,
        cep_shared::JobKind::Layer(cep_shared::Layer::Reporting),
        r#"{"period": "2026-02"}"#,
    )
    .await
    .unwrap();
    let (report,): (String,) =
        sqlx::query_as("SELECT id FROM reports WHERE client_id = 'client_1'")
            .fetch_one(ctx.store.pool())
            .await
            .unwrap();
    users::add(ctx, "viewer@agency.example", Role::Viewer, PASSWORD)
        .await
        .unwrap();
    users::add(ctx, "operator@agency.example", Role::Operator, PASSWORD)
        .await
        .unwrap();
    let server = Served::fleet(ctx).await;
    let page = format!("/reports/{}", cep_workers::console::url_path(&report));

    // A viewer reads the month's reports, a report and its PDF, and acts on none.
    let mut viewer = Browser::new(server.addrs[0]);
    viewer.sign_in("viewer@agency.example", PASSWORD).await;
    let (status, list, _) = viewer.get("/reports").await;
    assert_eq!(status, 200);
    assert!(
        list.contains("Oak Dental") && list.contains("not sent"),
        "{list}"
    );
    let (status, body, _) = viewer.get(&page).await;
    assert_eq!(status, 200);
    assert!(!body.contains("Send to the client") && !body.contains("Make a link"));
    let token = viewer.csrf().await;
    let (status, _, _) = viewer
        .post(&format!("{page}/send"), &[("csrf", &token)])
        .await;
    assert_eq!(status, 403);
    let (status, pdf, headers) = viewer.get(&format!("{page}/pdf")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(pdf.starts_with("%PDF-"));

    // An operator: a form without the session's token is refused.
    let mut op = Browser::new(server.addrs[0]);
    op.sign_in("operator@agency.example", PASSWORD).await;
    let (status, _, _) = op
        .post(&format!("{page}/send"), &[("csrf", "forged")])
        .await;
    assert_eq!(status, 403);
    let csrf = op.csrf().await;
    let (_, body, _) = op.get(&page).await;
    assert!(body.contains("Send to the client") && body.contains("Not sent yet."));
    // Who gets it: each an address, or the list is refused naming the one that is not.
    let (status, body, _) = op
        .post(
            "/clients/client_1/report-recipients",
            &[
                ("csrf", &csrf),
                ("recipients", "pat@oak.example, not an address"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body.contains("`not an address` is not an email address"),
        "{body}"
    );
    let (status, _, _) = op
        .post(
            "/clients/client_1/report-recipients",
            &[
                ("csrf", &csrf),
                ("recipients", "pat@oak.example, books@oak.example"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    // Sent now: recorded (outreach is in dry run), listed with its round.
    let (status, _, headers) = op.post(&format!("{page}/send"), &[("csrf", &csrf)]).await;
    assert_eq!((status, location(&headers)), (303, page.as_str()));
    drain(ctx).await;
    let (_, body, _) = op.get(&page).await;
    assert!(
        body.contains(
            "<td>2</td><td>pat@oak.example</td><td>dry_run</td><td>operator@agency.example</td>"
        ),
        "{body}"
    );
    let (_, list, _) = op.get("/reports").await;
    assert!(list.contains("<td>dry_run</td>"), "{list}");

    // A link, shown once; it opens the report until revoked.
    let (status, shown, _) = op.post(&format!("{page}/links"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    let at = shown.find("/r/").unwrap();
    let link = shown[at..at + 3 + 64].to_owned();
    let (status, opened, _) = Browser::new(server.addrs[0]).get(&link).await;
    assert_eq!(status, 200);
    assert!(opened.contains("Oak Dental"));
    let at = shown.find("/report-links/").unwrap();
    let revoke = shown[at..].split('"').next().unwrap().to_owned();
    let (status, _, _) = viewer.post(&revoke, &[("csrf", &token)]).await;
    assert_eq!(status, 403, "a viewer revokes nothing");
    let (status, _, _) = op.post(&revoke, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let (status, _, _) = Browser::new(server.addrs[0]).get(&link).await;
    assert_eq!(status, 410);

    // Notes go into the report the client reads.
    let (status, _, _) = op
        .post(
            &format!("{page}/notes"),
            &[
                ("csrf", &csrf),
                ("notes", "Calls are up: the new photos work."),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, html, _) = op.get(&format!("{page}/html")).await;
    assert!(html.contains("A note from Your local SEO agency"), "{html}");
    assert!(html.contains("Calls are up: the new photos work."));

    assert_eq!(
        audited(ctx).await,
        [
            "client.report_recipients",
            "report.send",
            "report.link",
            "report.link_revoke",
            "report.notes"
        ]
    );
    server.stop().await;
}
