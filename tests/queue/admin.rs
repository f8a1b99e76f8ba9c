//! The operator's actions on queued jobs, on both backends: dead letters retried with a
//! fresh set of attempts or discarded, one by id or every one matching a text; a queue
//! paused for every worker and resumed.

use super::{Q, queue_on, start};
use crate::helpers::*;
use cep_shared::queue::admin::Pick;
use cep_shared::queue::{NewJob, Queue, Settle};

/// Kills `payloads` as jobs of `Q`, each with its reason.
async fn dead(q: &Queue, jobs: &[(&str, &str)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (payload, reason) in jobs {
        q.push(NewJob::new(Q, &serde_json::json!({ "city": payload }), 0))
            .await
            .unwrap();
        let job = q.fetch(&[Q.queue()], "w1", 1).await.unwrap().remove(0);
        q.start("w1", &[&job]).await.unwrap();
        let reason = (*reason).to_owned();
        assert!(q.settle("w1", &job, Settle::Dead { reason }).await.unwrap());
        ids.push(job.id);
    }
    ids
}

async fn dead_count(q: &Queue) -> u64 {
    q.stats(&[Q.queue()]).await.unwrap()[0].dead
}

macro_rules! admin_conformance {
    ($($backend:ident => $module:ident),*) => {$(
        mod $module {
            use super::*;

            #[tokio::test]
            async fn a_retried_dead_letter_runs_again_with_its_attempts_afresh() {
                let s = settings();
                let (q, _d) = queue_on(Backend::$backend, &s, start()).await;
                let ids = dead(&q, &[("miami", "smtp refused"), ("austin", "smtp refused")]).await;
                assert_eq!(q.retry_dead(Q.queue(), Pick::Id(&ids[0])).await.unwrap(), 1);
                // Again: it is no dead letter any more, so nothing moves.
                assert_eq!(q.retry_dead(Q.queue(), Pick::Id(&ids[0])).await.unwrap(), 0);
                assert_eq!(dead_count(&q).await, 1);
                let again = q.fetch(&[Q.queue()], "w2", 5).await.unwrap();
                assert_eq!(again.len(), 1);
                assert_eq!(again[0].id, ids[0]);
                assert_eq!(again[0].attempt, 1, "a fresh set of attempts");
                assert!(again[0].payload.contains("miami"));
                if let Queue::Redis(r) = &q { r.purge().await.unwrap(); }
            }

            #[tokio::test]
            async fn every_dead_letter_matching_a_text_is_retried_or_discarded_and_no_other() {
                let s = settings();
                let (q, _d) = queue_on(Backend::$backend, &s, start()).await;
                dead(&q, &[
                    ("miami", "smtp refused"),
                    ("austin", "timeout"),
                    ("tampa", "timeout"),
                    ("boston", "smtp refused"),
                ]).await;
                // By reason: the two timeouts go back; by payload: one is discarded.
                assert_eq!(q.retry_dead(Q.queue(), Pick::Matching("timeout")).await.unwrap(), 2);
                assert_eq!(q.discard_dead(Q.queue(), Pick::Matching("boston")).await.unwrap(), 1);
                let left = q.dead_letters(Q.queue(), 10).await.unwrap();
                assert_eq!(left.len(), 1);
                assert!(left[0].payload.contains("miami"), "{left:?}");
                assert_eq!(left[0].reason, "smtp refused");
                let ready = q.fetch(&[Q.queue()], "w2", 10).await.unwrap();
                let mut cities: Vec<&str> = ready.iter().map(|j| if j.payload.contains("austin") { "austin" } else { "tampa" }).collect();
                cities.sort();
                assert_eq!(cities, ["austin", "tampa"]);
                // Everything: the empty filter takes the rest.
                assert_eq!(q.discard_dead(Q.queue(), Pick::Matching("")).await.unwrap(), 1);
                assert_eq!(dead_count(&q).await, 0);
                if let Queue::Redis(r) = &q { r.purge().await.unwrap(); }
            }

            #[tokio::test]
            async fn a_paused_queue_gives_no_worker_a_job_until_it_is_resumed() {
                let s = settings();
                let (q, _d) = queue_on(Backend::$backend, &s, start()).await;
                q.push(NewJob::new(Q, &1, 0)).await.unwrap();
                assert!(q.pause(Q.queue()).await.unwrap());
                assert!(!q.pause(Q.queue()).await.unwrap(), "paused already");
                assert_eq!(q.paused().await.unwrap().into_iter().collect::<Vec<_>>(), [Q.queue()]);
                assert!(q.fetch(&[Q.queue()], "w1", 10).await.unwrap().is_empty());
                // Another process's queue on the same store sees the pause too.
                let other = match &q {
                    Queue::Redis(_) => Some(redis_queue(&s, start()).await),
                    Queue::Sqlite(_) => None,
                };
                if let Some(o) = &other {
                    assert!(o.fetch(&[Q.queue()], "w9", 10).await.unwrap().is_empty());
                }
                assert!(q.resume(Q.queue()).await.unwrap());
                assert_eq!(q.fetch(&[Q.queue()], "w1", 10).await.unwrap().len(), 1);
                // A queue no worker serves cannot be paused, naming it.
                let e = q.pause("nonsense").await.unwrap_err();
                assert!(e.to_string().contains("`nonsense` is not a queue"), "{e}");
                if let Queue::Redis(r) = &q { r.purge().await.unwrap(); }
            }
        }
    )*};
}

admin_conformance!(Embedded => embedded, Fleet => fleet);

#[tokio::test]
async fn the_command_line_pauses_resumes_and_retries_what_the_console_does() {
    let dir = TempDir::new();
    let s = settings();
    let q = sqlite_queue(&dir, &s, start()).await;
    dead(&q, &[("miami", "timeout"), ("austin", "refused")]).await;
    let cep = |args: &[&str]| {
        let out = cep_embedded(&dir, args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cep(&["pause", "outreach"]);
    assert!(ok, "{err}");
    assert!(out.contains("outreach is paused"), "{out}");
    let (_, out, _) = cep(&["queues"]);
    let line = out.lines().find(|l| l.starts_with("outreach\t")).unwrap();
    assert!(
        line.ends_with("paused: no worker fetches from it"),
        "{line}"
    );
    assert!(q.paused().await.unwrap().contains("outreach"));
    // A pick is required, and only one.
    let (ok, _, err) = cep(&["retry-dead", "outreach"]);
    assert!(!ok && err.contains("--id"), "{err}");
    let (ok, _, err) = cep(&["retry-dead", "outreach", "--all", "--id", "x"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    let (ok, out, err) = cep(&["retry-dead", "outreach", "--matching", "timeout"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("1 dead letter(s) of outreach ready again"),
        "{out}"
    );
    let (ok, out, _) = cep(&["discard-dead", "3", "--all"]);
    assert!(
        ok && out.contains("1 dead letter(s) of outreach discarded"),
        "{out}"
    );
    let (ok, out, _) = cep(&["resume", "outreach"]);
    assert!(ok && out.contains("outreach is resumed"), "{out}");
    // Due now on the command's clock (the wall clock; this queue reads a simulated one).
    let stats = q.stats(&[Q.queue()]).await.unwrap();
    assert_eq!((stats[0].ready + stats[0].scheduled, stats[0].dead), (1, 0));
    let (ok, _, err) = cep(&["pause", "nowhere"]);
    assert!(!ok && err.contains("unknown queue `nowhere`"), "{err}");
}

#[tokio::test]
async fn a_job_is_found_by_its_id_or_a_text_of_its_payload_wherever_it_is() {
    for backend in [Backend::Embedded, Backend::Fleet] {
        let s = settings();
        let clock = start();
        let (q, _d) = queue_on(backend, &s, clock.clone()).await;
        let ids = dead(&q, &[("miami", "timeout")]).await;
        q.push(NewJob::new(Q, &serde_json::json!({ "city": "austin" }), 0))
            .await
            .unwrap();
        let later = clock.now_millis() + 3_600_000;
        q.push(NewJob::new(
            Q,
            &serde_json::json!({ "city": "austin-later" }),
            later,
        ))
        .await
        .unwrap();
        let by_id = q.find(&ids[0]).await.unwrap();
        assert_eq!(by_id.found.len(), 1, "{backend:?}");
        assert_eq!((by_id.found[0].state, by_id.found[0].attempts), ("dead", 1));
        let mut states: Vec<&str> = q
            .find("austin")
            .await
            .unwrap()
            .found
            .iter()
            .map(|f| f.state)
            .collect();
        states.sort();
        assert_eq!(states, ["ready", "scheduled"], "{backend:?}");
        assert!(q.find("boston").await.unwrap().found.is_empty());
        assert!(q.find("").await.is_err());
        if let Queue::Redis(r) = &q {
            r.purge().await.unwrap();
        }
    }
}
