//! The inbox over HTTP: what waits for a person, and each of its actions with its
//! effect in the store and its audit row.

use super::{Browser, PASSWORD, audited, location, meeting_state};
use crate::helpers::*;
use cep_shared::Clock;
use cep_shared::vocabulary::{MeetingState, MessageStatus, Role};
use cep_workers::console::users;
use cep_workers::layers::booking;

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
