//! The fleet page over HTTP: an admin pauses and resumes queues and retries or discards
//! dead letters; an operator may not.

use super::{Browser, PASSWORD, audited};
use crate::helpers::*;
use cep_shared::Clock;
use cep_shared::vocabulary::Role;
use cep_workers::console::users;

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
