//! What waits for a person, as the inbox lists it and every page's navigation counts
//! it: replies, messages of unknown outcome, meetings, person tasks, onboarding tasks
//! past due, posts to approve, invoices past due; and the fleet's dead letters.

use super::layout::Counts;
use crate::layers::booking;
use crate::layers::outreach::{followups, tasks};
use crate::layers::{finance, onboarding, optimization};
use crate::{Ctx, JobError};
use cep_shared::queue;

/// The most of each kind one inbox shows.
pub const PER_SECTION: u32 = 50;

/// What waits for a person.
pub struct Inbox {
    pub replies: Vec<followups::Reply>,
    pub unknown: Vec<followups::UnknownMessage>,
    pub meetings: Vec<booking::ToReview>,
    pub tasks: Vec<tasks::OpenTask>,
    pub onboarding: Vec<onboarding::store::OverdueTask>,
    pub posts: Vec<optimization::store::PostRow>,
    pub invoices: Vec<finance::store::Overdue>,
}

impl Inbox {
    pub async fn load(ctx: &Ctx) -> Result<Self, JobError> {
        let mut meetings = booking::to_review(ctx).await?;
        meetings.truncate(PER_SECTION as usize);
        Ok(Self {
            replies: followups::unanswered(ctx, PER_SECTION).await?,
            unknown: followups::unknown(ctx, PER_SECTION).await?,
            meetings,
            tasks: tasks::open(ctx, None, PER_SECTION).await?,
            onboarding: onboarding::store::overdue(ctx, ctx.now(), PER_SECTION).await?,
            posts: optimization::store::posts(ctx, true, None, PER_SECTION).await?,
            invoices: finance::store::overdue(ctx, ctx.now(), PER_SECTION).await?,
        })
    }

    pub fn counts(&self) -> (usize, bool) {
        let lens = [
            self.replies.len(),
            self.unknown.len(),
            self.meetings.len(),
            self.tasks.len(),
            self.onboarding.len(),
            self.posts.len(),
            self.invoices.len(),
        ];
        (
            lens.iter().sum(),
            lens.iter().any(|n| *n >= PER_SECTION as usize),
        )
    }
}

/// The navigation's counts, for any page.
pub async fn counts(ctx: &Ctx) -> Result<Counts, JobError> {
    let (inbox, capped) = Inbox::load(ctx).await?.counts();
    Ok(Counts {
        inbox,
        capped,
        dead: dead_total(ctx).await?,
    })
}

/// The fleet's queues' dead letters, for the navigation: one round trip, no scan of the
/// keyspace (what lies under unknown queue names shows on the fleet page itself).
pub async fn dead_total(ctx: &Ctx) -> Result<u64, JobError> {
    let all = ctx.queue.stats(&queue::known_queues()).await?;
    Ok(all.iter().map(|s| s.dead).sum())
}
