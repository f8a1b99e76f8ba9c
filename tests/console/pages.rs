//! The pipeline, a prospect, clients, money and coherence pages over HTTP, and the
//! actions on them.

use super::{Browser, PASSWORD, audited, pipeline_id};
use crate::helpers::*;
use cep_shared::Clock;
use cep_shared::vocabulary::Role;
use cep_workers::console::users;

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
