//! Layer 8: finance in integer cents. Monthly invoices (the setup fee once, on a new
//! client's first invoice), net terms and tax; per-client costs; and the agency's
//! MRR, ARR, churn, LTV and CAC from recorded subscriptions and cancellations.
//!
//! `rules` prices invoices and computes the recurring numbers, `store` keeps invoices,
//! costs and payments, `stripe` mirrors invoices to Stripe and reads its webhooks.

pub mod rules;
pub mod store;
pub mod stripe;

pub use rules::{Invoice, Line, Metrics, invoice_for, tax_cents};
pub use store::{cancel_client, record_cost, record_payment};

use crate::{Ctx, JobError};
use cep_shared::clock::HOUR;
use cep_shared::ids::stable_id;
use cep_shared::jobs::{FeedbackJob, FinanceJob};
use cep_shared::period::Period;
use cep_shared::queue::NewJob;
use cep_shared::vocabulary::EventKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinanceResult {
    pub period: String,
    pub invoices: Vec<Invoice>,
    pub metrics: Metrics,
}

pub async fn handle(ctx: &Ctx, job: FinanceJob) -> Result<FinanceResult, JobError> {
    let r = &ctx.settings.layers.finance;
    let now = ctx.now();
    // The close of a calendar period that has begun (one still running, up to now).
    let period = Period::parse(&job.period).map_err(JobError::Invalid)?;
    period.not_after(now).map_err(JobError::Invalid)?;
    let (start, end) = period.span_millis();
    // The month's tools of prospecting and outreach, dated its start.
    for (tool, cents) in &r.acquisition_costs.monthly {
        let id = stable_id("txn", &["tool", tool, &job.period]);
        store::record_cost(
            ctx.store.pool(),
            &id,
            "acquisition",
            &format!("tool:{tool}"),
            *cents,
            start,
        )
        .await?;
    }
    let mut invoices = Vec::new();
    for (client_id, tier) in store::billable(ctx, start, end.min(now)).await? {
        let invoice = |first| invoice_for(&client_id, &tier, &job.period, first, now, r);
        if let Some(inv) = store::issue(ctx, &client_id, &job.period, start, invoice).await? {
            invoices.push(inv);
        }
    }
    if ctx.settings.providers.stripe.create_invoices {
        // Also those an earlier attempt stored but could not push.
        for id in store::unpushed(ctx, &job.period).await? {
            stripe::push_invoice(ctx, &id).await?;
        }
    }
    let m = metrics(ctx, start, end.min(now)).await?;
    ctx.store
        .record_event(
            ctx.store.pool(),
            EventKind::Closed,
            &job.period,
            serde_json::to_value(&m)?,
            now,
        )
        .await?;
    // Finance → feedback loop, after the configured delay.
    let delay = i64::from(ctx.settings.schedules.feedback_loop_delay_hours) * HOUR;
    ctx.queue
        .push(NewJob::of(&FeedbackJob::new(&job.period), now + delay))
        .await?;
    Ok(FinanceResult {
        period: job.period,
        invoices,
        metrics: m,
    })
}

/// The agency's recurring numbers over `[from, to)`: MRR at `to`, churn against the
/// clients active at `from`, the money recorded in between.
pub async fn metrics(ctx: &Ctx, from: i64, to: i64) -> Result<Metrics, JobError> {
    let (clients, takings) = store::metric_inputs(ctx, from, to).await?;
    Ok(rules::metrics(
        &clients,
        takings,
        from,
        to,
        &ctx.settings.layers.finance,
    ))
}
