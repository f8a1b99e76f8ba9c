//! The simulated world: prospects who reply, book, unsubscribe or stay silent, and
//! clients who pay or cancel, drawn from a seeded generator; after each instant it looks
//! at the store and schedules what its people do next.

use cep_shared::clock::{DAY, HOUR};
use cep_shared::ids::{SeededRng, stable_hash};
use cep_shared::vocabulary::{Channel, MessageStatus};
use cep_workers::Ctx;
use std::collections::{BinaryHeap, HashSet};

/// The world's rates: `simulate.world` in `config.yaml`.
pub type Behaviour = cep_shared::config::WorldSettings;

/// Something the world does at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Act {
    Reply {
        message: String,
    },
    Unsubscribe {
        message: String,
    },
    Book {
        prospect: String,
        pitch: Option<String>,
        n: u32,
        start_at: i64,
    },
    Cancel {
        prospect: String,
        n: u32,
        rescheduled: bool,
    },
    /// The meeting's time has come: the invitee comes or not.
    Attend {
        prospect: String,
        n: u32,
    },
    /// After a held meeting the prospect buys or not.
    Decide {
        prospect: String,
        n: u32,
    },
    CompleteTask {
        task: String,
    },
    Pay {
        invoice: String,
    },
    CancelClient {
        client: String,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Scheduled {
    pub(super) at: i64,
    pub(super) seq: u64,
    pub(super) act: Act,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

pub(super) struct World {
    /// The clients' simulated Business Profiles.
    pub(super) profiles: super::profiles::Profiles,
    pub(super) seed: u64,
    pub(super) b: Behaviour,
    pub(super) queue: BinaryHeap<Scheduled>,
    pub(super) seq: u64,
    pub(super) seen: HashSet<String>,
    pub(super) webhooks_refused: u64,
}

impl World {
    pub(super) fn rng(&self, parts: &[&str]) -> SeededRng {
        SeededRng::for_decision(self.seed, parts)
    }

    pub(super) fn at(&mut self, at: i64, act: Act) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            act,
        });
    }

    pub(super) fn first_time(&mut self, key: String) -> bool {
        self.seen.insert(key)
    }

    pub(super) fn next_at(&self) -> Option<i64> {
        self.queue.peek().map(|s| s.at)
    }
}

pub(super) fn between(rng: &mut SeededRng, lo: i64, hi: i64) -> i64 {
    lo + rng.below((hi - lo).max(1) as u64) as i64
}

#[derive(sqlx::FromRow)]
pub(super) struct SentRow {
    pub(super) id: String,
    pub(super) prospect: String,
    pub(super) channel: String,
    pub(super) at: i64,
    pub(super) category: String,
    pub(super) variant: String,
    pub(super) email_pitch: Option<String>,
}

/// What the world notices after each instant, and how it will react.
pub(super) async fn observe(ctx: &Ctx, w: &mut World, now: i64) -> anyhow::Result<()> {
    let pool = ctx.store.pool();
    // Messages that went out: replies, bookings from the link, opt-outs.
    let sent: Vec<SentRow> = sqlx::query_as(
        "SELECT m.id, m.prospect_id AS prospect, m.channel, m.sent_at AS at, p.category, pi.variant,
                (SELECT e.id FROM pitches e WHERE e.prospect_id = m.prospect_id AND e.channel = $2) AS email_pitch
           FROM messages m JOIN prospects p ON p.id = m.prospect_id JOIN pitches pi ON pi.id = m.pitch_id
          WHERE m.status = $3 AND m.sent_at = $1 ORDER BY m.id",
    )
    .bind(now)
    .bind(Channel::Email.as_str())
    .bind(MessageStatus::Recorded.as_str())
    .fetch_all(pool)
    .await?;
    for SentRow {
        id,
        prospect,
        channel,
        at,
        category,
        variant,
        email_pitch,
    } in sent
    {
        if !w.first_time(format!("msg:{id}")) {
            continue;
        }
        let mut rng = w.rng(&["message", &id]);
        let channel = channel.parse::<Channel>()?;
        let base = match channel {
            Channel::Email => w.b.email_reply,
            Channel::Linkedin => w.b.linkedin_reply,
            Channel::Phone | Channel::Sms => w.b.phone_reply,
        };
        let lift = w.b.variant_lift.get(&variant).copied().unwrap_or(1.0);
        // Some categories answer more than others.
        let category_lift = 0.6 + (stable_hash(&[&category]) % 80) as f64 / 100.0;
        let p_reply = base * lift * category_lift;
        let roll = rng.unit();
        if roll < p_reply {
            let reply_at = at + between(&mut rng, 2 * HOUR, 48 * HOUR);
            w.at(
                reply_at,
                Act::Reply {
                    message: id.clone(),
                },
            );
            if rng.unit() < w.b.book_after_reply {
                let book_at = reply_at + between(&mut rng, HOUR, 24 * HOUR);
                let start_at = (book_at / DAY + 1 + rng.below(5) as i64) * DAY + 15 * HOUR;
                w.at(
                    book_at,
                    Act::Book {
                        prospect,
                        pitch: email_pitch,
                        n: 0,
                        start_at,
                    },
                );
            }
        } else if roll < p_reply + w.b.book_from_link {
            let book_at = at + between(&mut rng, HOUR, 72 * HOUR);
            let start_at = (book_at / DAY + 2 + rng.below(5) as i64) * DAY + 16 * HOUR;
            w.at(
                book_at,
                Act::Book {
                    prospect,
                    pitch: email_pitch,
                    n: 0,
                    start_at,
                },
            );
        } else if channel == Channel::Email && roll > 1.0 - w.b.unsubscribe {
            w.at(
                at + between(&mut rng, HOUR, 24 * HOUR),
                Act::Unsubscribe { message: id },
            );
        }
    }
    // A new client's Business Profile is linked, as it is in its prospect's signals; the
    // operator approves the posts planned for clients (having read them).
    let new_clients: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT c.id, p.signals, p.website, c.business_type FROM clients c JOIN prospects p ON p.id = c.prospect_id
          WHERE c.gbp_location IS NULL ORDER BY c.id",
    )
    .fetch_all(pool)
    .await?;
    for (client, signals, website, category) in new_clients {
        let location = format!("accounts/1/locations/{:x}", stable_hash(&[&client]));
        let signals: cep_shared::signals::ProfileSignals = serde_json::from_str(&signals)?;
        let profile =
            super::profiles::Profile::from_signals(&signals, website.as_deref(), &category, now);
        w.profiles
            .insert(location.rsplit('/').next().unwrap_or_default(), profile);
        cep_workers::layers::optimization::gbp::link(ctx, &client, &location).await?;
    }
    let drafts: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM posts WHERE approved_at IS NULL AND published_at IS NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    for (post,) in drafts {
        cep_workers::layers::optimization::store::approve(ctx, &post, "operator").await?;
    }
    // Onboarding tasks whose dependency is done: someone finishes them, mostly in time.
    let open: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT t.id, t.due_at, COALESCE(d.done_at, c.started_at) FROM tasks t
           JOIN clients c ON c.id = t.client_id LEFT JOIN tasks d ON d.id = t.depends_on
          WHERE t.done_at IS NULL AND c.canceled_at IS NULL AND (t.depends_on IS NULL OR d.done_at IS NOT NULL)
          ORDER BY t.id",
    )
    .fetch_all(pool)
    .await?;
    for (task, due_at, ready_at) in open {
        if !w.first_time(format!("task:{task}")) {
            continue;
        }
        let mut rng = w.rng(&["task", &task]);
        let at = if rng.unit() < w.b.task_late {
            due_at + between(&mut rng, HOUR, 3 * DAY)
        } else {
            ready_at + between(&mut rng, HOUR, (due_at - ready_at).max(2 * HOUR))
        };
        w.at(at.max(now + 1), Act::CompleteTask { task });
    }
    // Invoices: most pay within terms, some late, a few never.
    let unpaid: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, client_id, issued_at, due_at FROM invoices WHERE paid_at IS NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    for (invoice, client, issued, due) in unpaid {
        if !w.first_time(format!("inv:{invoice}")) {
            continue;
        }
        let mut rng = w.rng(&["invoice", &invoice]);
        // Each invoice is a month in which the client may leave.
        if rng.unit() < w.b.churn_per_month {
            w.at(
                issued + between(&mut rng, DAY, 28 * DAY),
                Act::CancelClient {
                    client: client.clone(),
                },
            );
        }
        let roll = rng.unit();
        if roll < w.b.never_pay {
            continue;
        }
        let at = if roll < w.b.never_pay + w.b.pay_late {
            due + between(&mut rng, DAY, 20 * DAY)
        } else {
            issued + between(&mut rng, DAY, due - issued)
        };
        w.at(at, Act::Pay { invoice });
    }
    Ok(())
}
