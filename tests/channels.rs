//! The channels besides email: texts through Twilio (a local fake) only to prospects
//! who replied or booked, and LinkedIn messages and calls as tasks for a person within
//! their daily caps.

use crate::helpers::*;
use cep_shared::jobs::{BookingJob, FollowUp, FollowUpJob, OutreachWork};
use cep_shared::vocabulary::{Channel, MessageStatus};
use cep_shared::{Clock, Secrets, Settings};
use cep_workers::layers::outreach::tasks::{self, TaskOutcome};
use cep_workers::layers::{booking, outreach};
use cep_workers::{Ctx, Disposition};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SMS_PATH: &str = "/2010-04-01/Accounts/AC0123/Messages.json";

/// Outreach for real (no mail goes out in these tests), texts through `twilio` if given.
fn live(twilio: Option<&MockServer>) -> (Settings, Secrets) {
    let mut s = settings();
    s.layers.outreach.dry_run = false;
    s.providers.smtp.host = "127.0.0.1".into();
    s.providers.smtp.port = 9;
    s.providers.smtp.tls = cep_shared::config::SmtpTls::None;
    let mut secrets = Secrets {
        booking_link_key: Some(BOOKING_TEST_KEY.into()),
        ..Secrets::default()
    };
    if let Some(server) = twilio {
        s.providers.twilio.account_sid = "AC0123".into();
        s.providers.twilio.from = "+15550001111".into();
        s.providers.twilio.api_url = server.uri();
        secrets.twilio_auth_token = Some("twilio-test-token".into());
    }
    (s, secrets)
}

async fn follow_up(
    ctx: &Ctx,
    prospect: &str,
    f: FollowUp,
) -> Result<outreach::OutreachResult, cep_workers::JobError> {
    outreach::handle(
        ctx,
        OutreachWork::FollowUp(FollowUpJob {
            prospect_id: prospect.into(),
            follow_up: f,
        }),
    )
    .await
}

async fn with_phone(ctx: &Ctx, prospect: &str, phone: &str) {
    sqlx::query("UPDATE prospects SET phone = $2 WHERE id = $1")
        .bind(prospect)
        .bind(phone)
        .execute(ctx.store.pool())
        .await
        .unwrap();
}

async fn book(ctx: &Ctx, prospect: &str) {
    booking::handle(
        ctx,
        BookingJob {
            action: "invitee.created".into(),
            invitee_uri: format!("https://api.calendly.com/scheduled_events/E/invitees/{prospect}"),
            email: "owner@example.com".into(),
            name: "Dana Owner".into(),
            event_type: "Discovery call".into(),
            answers: vec![],
            rescheduled: false,
            start_time: None,
            utm_source: Some("cep".into()),
            utm_campaign: Some(prospect.into()),
            utm_content: Some("pitch-link".into()),
            utm_term: Some(outreach::booking_signature(
                BOOKING_TEST_KEY,
                prospect,
                "pitch-link",
            )),
            sent_at: None,
        },
    )
    .await
    .unwrap();
}

async fn status_of(ctx: &Ctx, message: &str) -> String {
    sqlx::query_as::<_, (String,)>("SELECT status FROM messages WHERE id = $1")
        .bind(message)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_booked_prospect_gets_one_confirmation_text_and_a_cold_one_gets_none() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .and(header(
            "authorization",
            "Basic QUMwMTIzOnR3aWxpby10ZXN0LXRva2Vu",
        ))
        .and(body_string_contains("To=%2B13055550100"))
        .and(body_string_contains("From=%2B15550001111"))
        .respond_with(
            ResponseTemplate::new(201).set_body_string(r#"{"sid": "SM42", "status": "queued"}"#),
        )
        .mount(&twilio)
        .await;
    let (s, secrets) = live(Some(&twilio));
    let h = harness_with(Backend::Fleet, s, secrets, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let ids = pitched(ctx, 2).await;
    let (warm, cold) = (&ids[0], &ids[1]);
    with_phone(ctx, warm, "+13055550100").await;
    with_phone(ctx, cold, "+13055550101").await;

    // No cold SMS: not as a follow-up, not as the sequence's text step.
    let r = follow_up(ctx, cold, FollowUp::Booked).await.unwrap();
    assert_eq!(r.status, MessageStatus::Skipped);
    assert!(r.reason.unwrap().contains("no cold SMS"));
    let r = send_step(ctx, cold, 2).await.unwrap();
    assert_eq!(r.status, MessageStatus::Skipped);

    // A booking enqueues the confirmation; the worker sends it through Twilio once.
    book(ctx, warm).await;
    drain(ctx).await;
    let sent = twilio.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1, "one text, to the booked prospect only");
    let body = String::from_utf8_lossy(&sent[0].body).to_string();
    assert!(body.contains("thanks+for+booking"), "{body}");
    assert!(body.contains("STOP"), "{body}");
    let row = outreach::message_row_id(warm, outreach::follow_up_step(FollowUp::Booked));
    assert_eq!(status_of(ctx, &row).await, "sent");
    assert_eq!(
        scalar(
            ctx,
            &format!("SELECT COUNT(*) FROM messages WHERE id = '{row}' AND message_id = 'SM42'")
        )
        .await,
        1
    );

    // A redelivered job finds it sent and sends nothing.
    let again = follow_up(ctx, warm, FollowUp::Booked).await.unwrap();
    assert_eq!(again.status, MessageStatus::Sent);
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn twilio_refusals_suppress_the_number_and_outages_give_the_text_back() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .and(body_string_contains("To=%2B13055550100"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}"#,
        ))
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .and(body_string_contains("To=%2B13055550101"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&twilio)
        .await;
    let (s, secrets) = live(Some(&twilio));
    let h = harness_with(Backend::Embedded, s, secrets, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let ids = pitched(ctx, 2).await;
    for (id, phone) in ids.iter().zip(["+13055550100", "+13055550101"]) {
        with_phone(ctx, id, phone).await;
        sqlx::query("UPDATE prospects SET status = 'replied' WHERE id = $1")
            .bind(id)
            .execute(ctx.store.pool())
            .await
            .unwrap();
    }

    let r = follow_up(ctx, &ids[0], FollowUp::Replied).await.unwrap();
    assert_eq!(r.status, MessageStatus::Bounced);
    assert!(r.reason.unwrap().contains("opted out"));
    assert_eq!(
        scalar(
            ctx,
            "SELECT COUNT(*) FROM suppressions WHERE address = '+13055550100'"
        )
        .await,
        1
    );

    let e = follow_up(ctx, &ids[1], FollowUp::Replied)
        .await
        .unwrap_err();
    assert_eq!(e.disposition(), Disposition::Retry, "{e}");
    let row = outreach::message_row_id(&ids[1], outreach::follow_up_step(FollowUp::Replied));
    assert_eq!(status_of(ctx, &row).await, "pending");
    assert_eq!(
        scalar(
            ctx,
            "SELECT COALESCE(SUM(sent), 0) FROM send_counters WHERE channel = 'sms'"
        )
        .await,
        1,
        "the refused text used its unit; the one Twilio never took gave it back"
    );
}

#[tokio::test]
async fn linkedin_messages_and_calls_are_tasks_for_a_person_within_daily_caps() {
    let (mut s, secrets) = live(None);
    s.layers.outreach.daily_caps.linkedin = 2;
    let h = harness_with(Backend::Embedded, s, secrets, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let ids = pitched(ctx, 3).await;

    let mut handed_out = 0;
    for id in &ids {
        match send_step(ctx, id, 1).await {
            Ok(r) => {
                assert_eq!(r.status, MessageStatus::Task);
                handed_out += 1;
            }
            Err(e) => assert!(e.to_string().contains("daily linkedin cap of 2"), "{e}"),
        }
    }
    assert_eq!(handed_out, 2);
    let phone = send_step(ctx, &ids[0], 3).await.unwrap();
    assert_eq!(phone.status, MessageStatus::Task);

    let open = tasks::open(ctx, Some(Channel::Linkedin), 10).await.unwrap();
    assert_eq!(open.len(), 2);
    assert!(
        open[0]
            .body
            .as_deref()
            .unwrap()
            .contains("utm_medium=linkedin")
    );
    assert_eq!(tasks::open(ctx, None, 10).await.unwrap().len(), 3);

    // The person reached one (not the prospect whose call is already handed out): they
    // answered, so the sequence stops as for a reply.
    let first = open.iter().find(|t| t.prospect_id != ids[0]).unwrap();
    tasks::complete(ctx, &first.id, TaskOutcome::Replied, ctx.now())
        .await
        .unwrap();
    let status: (String,) = sqlx::query_as("SELECT status FROM prospects WHERE id = $1")
        .bind(&first.prospect_id)
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    assert_eq!(status.0, "replied");
    assert_eq!(tasks::open(ctx, None, 10).await.unwrap().len(), 2);
    let e = tasks::complete(ctx, &first.id, TaskOutcome::Done, ctx.now())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("not an open task (it is done)"),
        "{e}"
    );
    // Its next step is skipped: the sequence stopped at the reply.
    let next = send_step(ctx, &first.prospect_id, 3).await.unwrap();
    assert_eq!(next.status, MessageStatus::Skipped, "{next:?}");
    assert!(next.reason.unwrap().contains("the prospect is replied"));
}

#[tokio::test]
async fn a_reply_an_opt_out_or_a_booking_closes_the_prospects_open_tasks() {
    let (s, secrets) = live(None);
    let h = harness_with(Backend::Embedded, s, secrets, Clock::simulated(in_window())).await;
    let ctx = &h.ctx;
    let ids = pitched(ctx, 3).await;
    // Each prospect has a LinkedIn message and a call waiting for a person.
    for id in &ids {
        assert_eq!(
            send_step(ctx, id, 1).await.unwrap().status,
            MessageStatus::Task
        );
        assert_eq!(
            send_step(ctx, id, 3).await.unwrap().status,
            MessageStatus::Task
        );
    }
    let open_for = |id: String| {
        let ctx = ctx.clone();
        async move {
            tasks::open(&ctx, None, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|t| t.prospect_id == id)
                .count()
        }
    };
    for id in &ids {
        assert_eq!(open_for(id.clone()).await, 2);
    }
    // The first replies to an email, the second opts out, the third books.
    let email = outreach::message_row_id(&ids[0], 0);
    sqlx::query("INSERT INTO messages (id, prospect_id, pitch_id, step, channel, mailbox, status, due_at, updated_at) VALUES ($1, $2, 'p', 0, 'email', 'primary', 'sent', 0, 0)")
        .bind(&email)
        .bind(&ids[0])
        .execute(ctx.store.pool())
        .await
        .unwrap();
    outreach::record_reply(ctx, &email, ctx.now())
        .await
        .unwrap();
    let (address,): (String,) = sqlx::query_as("SELECT email FROM prospects WHERE id = $1")
        .bind(&ids[1])
        .fetch_one(ctx.store.pool())
        .await
        .unwrap();
    outreach::suppress(ctx, &address, "opted out", ctx.now())
        .await
        .unwrap();
    book(ctx, &ids[2]).await;
    for id in &ids {
        assert_eq!(open_for(id.clone()).await, 0, "{id} still has open tasks");
    }
    let (closed,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM messages WHERE status = 'skipped' AND reason LIKE 'closed: %'",
    )
    .fetch_one(ctx.store.pool())
    .await
    .unwrap();
    assert_eq!(closed, 6);
}
