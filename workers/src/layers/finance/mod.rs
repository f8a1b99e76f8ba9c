//! Layer 8: finance in integer cents. Monthly invoices (the setup fee once, on a new
//! client's first invoice), net terms and tax; per-client costs; and the agency's
//! MRR, ARR, churn, LTV and CAC from recorded subscriptions and cancellations.

pub mod stripe;

use crate::{Ctx, JobError};
use cep_shared::clock::{DAY, HOUR};
use cep_shared::config::FinanceRules;
use cep_shared::ids::stable_id;
use cep_shared::jobs::PeriodJob;
use cep_shared::queue::NewJob;
use cep_shared::store::Event;
use cep_shared::{JobKind, Layer};
use serde::{Deserialize, Serialize};

/// Tax on `subtotal` cents at `basis_points`, rounded half up to the cent.
pub fn tax_cents(subtotal: i64, basis_points: i64) -> i64 {
    (subtotal * basis_points + 5_000).div_euclid(10_000)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub description: String,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub client_id: String,
    pub period: String,
    pub lines: Vec<Line>,
    pub subtotal_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub due_at: i64,
}

/// A client's invoice for `period`; `first` adds the one-off setup fee.
pub fn invoice_for(
    client_id: &str,
    tier_name: &str,
    period: &str,
    first: bool,
    issued_at: i64,
    r: &FinanceRules,
) -> Result<Invoice, JobError> {
    let tier = r.tier(tier_name).ok_or_else(|| {
        JobError::Invalid(format!(
            "client `{client_id}` has unknown billing tier `{tier_name}`"
        ))
    })?;
    let mut lines = vec![Line {
        description: format!("{tier_name} plan, {period}"),
        amount_cents: tier.monthly_cents,
    }];
    if first {
        lines.push(Line {
            description: format!("{tier_name} setup (one-off)"),
            amount_cents: tier.setup_cents,
        });
    }
    let subtotal: i64 = lines.iter().map(|l| l.amount_cents).sum();
    let tax = tax_cents(subtotal, r.tax_basis_points);
    Ok(Invoice {
        id: stable_id("inv", &[client_id, period]),
        client_id: client_id.into(),
        period: period.into(),
        lines,
        subtotal_cents: subtotal,
        tax_cents: tax,
        total_cents: subtotal + tax,
        due_at: issued_at + i64::from(r.net_days) * DAY,
    })
}

/// The agency's recurring numbers over the 30 days ending `now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub active_clients: i64,
    /// Recurring fees only; setup fees are one-off.
    pub mrr_cents: i64,
    pub arr_cents: i64,
    pub new_clients: i64,
    pub canceled_clients: i64,
    /// Cancellations ÷ clients active at the window's start; `None` without any.
    pub churn_rate: Option<f64>,
    pub arpa_cents: Option<i64>,
    /// ARPA ÷ churn rate; `None` while nobody has churned.
    pub ltv_cents: Option<i64>,
    pub cac_cents: Option<i64>,
    pub revenue_cents: i64,
    pub costs_cents: i64,
}

pub async fn metrics(ctx: &Ctx, now: i64) -> Result<Metrics, JobError> {
    let r = &ctx.settings.layers.finance;
    let pool = ctx.store.pool();
    let from = now - 30 * DAY;
    let clients: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT billing_tier, started_at, canceled_at FROM clients WHERE started_at < $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let active = |at: i64| {
        clients
            .iter()
            .filter(move |(_, s, c)| *s < at && c.is_none_or(|c| c >= at))
    };
    let active_now: Vec<_> = active(now).collect();
    let mrr: i64 = active_now
        .iter()
        .filter_map(|(t, _, _)| r.tier(t).map(|t| t.monthly_cents))
        .sum();
    let at_start = active(from).count() as i64;
    let new_clients = clients.iter().filter(|(_, s, _)| *s >= from).count() as i64;
    let canceled = clients
        .iter()
        .filter(|(_, _, c)| c.is_some_and(|c| c >= from && c < now))
        .count() as i64;
    let churn = (at_start > 0).then(|| canceled as f64 / at_start as f64);
    let n = active_now.len() as i64;
    let arpa = (n > 0).then(|| mrr / n);
    let ltv = match (arpa, churn) {
        (Some(a), Some(c)) if c > 0.0 => Some((a as f64 / c).round() as i64),
        _ => None,
    };
    let (revenue, costs, acquisition): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'revenue' THEN amount_cents ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN kind = 'cost' THEN amount_cents ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN category = 'acquisition' THEN amount_cents ELSE 0 END), 0) AS BIGINT)
           FROM transactions WHERE occurred_at >= $1 AND occurred_at < $2",
    )
    .bind(from)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(Metrics {
        active_clients: n,
        mrr_cents: mrr,
        arr_cents: 12 * mrr,
        new_clients,
        canceled_clients: canceled,
        churn_rate: churn,
        arpa_cents: arpa,
        ltv_cents: ltv,
        cac_cents: (new_clients > 0).then(|| acquisition / new_clients),
        revenue_cents: revenue,
        costs_cents: costs,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinanceResult {
    pub period: String,
    pub invoices: Vec<Invoice>,
    pub metrics: Metrics,
}

pub async fn handle(ctx: &Ctx, job: PeriodJob) -> Result<FinanceResult, JobError> {
    let r = &ctx.settings.layers.finance;
    let pool = ctx.store.pool();
    let now = ctx.now();
    let clients: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, billing_tier FROM clients WHERE canceled_at IS NULL AND started_at <= $1 ORDER BY id",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut invoices = Vec::new();
    for (client_id, tier) in &clients {
        let mut tx = pool.begin().await?;
        let (earlier,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM invoices WHERE client_id = $1 AND period <> $2")
                .bind(client_id)
                .bind(&job.period)
                .fetch_one(&mut *tx)
                .await?;
        let inv = invoice_for(client_id, tier, &job.period, earlier == 0, now, r)?;
        let added = sqlx::query(
            "INSERT INTO invoices (id, client_id, period, lines, subtotal_cents, tax_cents, total_cents, issued_at, due_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (client_id, period) DO NOTHING",
        )
        .bind(&inv.id)
        .bind(client_id)
        .bind(&job.period)
        .bind(serde_json::to_string(&inv.lines)?)
        .bind(inv.subtotal_cents)
        .bind(inv.tax_cents)
        .bind(inv.total_cents)
        .bind(now)
        .bind(inv.due_at)
        .execute(&mut *tx)
        .await?;
        for (category, cents) in [
            ("software", r.software_cost_cents),
            ("support", r.support_cost_cents),
        ] {
            let id = stable_id("txn", &[client_id, &job.period, category]);
            record_cost(&mut *tx, &id, category, client_id, cents, now).await?;
        }
        if added.rows_affected() == 1 {
            ctx.store
                .record_event(
                    &mut *tx,
                    Event {
                        layer: Layer::Finance,
                        kind: "invoiced",
                        subject: &inv.id,
                        data: serde_json::json!({ "total_cents": inv.total_cents }),
                        occurred_at: now,
                    },
                )
                .await?;
            invoices.push(inv);
        }
        tx.commit().await?;
    }
    if ctx.settings.providers.stripe.create_invoices {
        // Also those an earlier attempt stored but could not push.
        let unpushed: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM invoices WHERE period = $1 AND stripe_invoice_id IS NULL ORDER BY id",
        )
        .bind(&job.period)
        .fetch_all(pool)
        .await?;
        for (id,) in unpushed {
            stripe::push_invoice(ctx, &id).await?;
        }
    }
    let m = metrics(ctx, now).await?;
    ctx.store
        .record_event(
            pool,
            Event {
                layer: Layer::Finance,
                kind: "closed",
                subject: &job.period,
                data: serde_json::to_value(&m)?,
                occurred_at: now,
            },
        )
        .await?;
    // Finance → feedback loop, after the configured delay.
    let delay = i64::from(ctx.settings.schedules.feedback_loop_delay_hours) * HOUR;
    ctx.queue
        .push(
            NewJob::new(
                JobKind::Layer(Layer::FeedbackLoop),
                &PeriodJob {
                    period: job.period.clone(),
                },
                now + delay,
            )
            .key(format!("feedback_loop:{}", job.period)),
        )
        .await?;
    Ok(FinanceResult {
        period: job.period,
        invoices,
        metrics: m,
    })
}

/// Records one cost of a client; its id makes a rerun harmless.
pub async fn record_cost<'e, E>(
    exec: E,
    id: &str,
    category: &str,
    client_id: &str,
    cents: i64,
    at: i64,
) -> Result<(), JobError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO transactions (id, kind, category, client_id, amount_cents, occurred_at)
         VALUES ($1, 'cost', $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(category)
    .bind(client_id)
    .bind(cents)
    .bind(at)
    .execute(exec)
    .await?;
    Ok(())
}

/// A payment arrived (a person, or a payment provider's webhook): the invoice is paid
/// and its subtotal is revenue (the tax is owed, not earned). Paying twice is harmless.
pub async fn record_payment(ctx: &Ctx, invoice_id: &str, at: i64) -> Result<bool, JobError> {
    let pool = ctx.store.pool();
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT client_id, subtotal_cents FROM invoices WHERE id = $1")
            .bind(invoice_id)
            .fetch_optional(pool)
            .await?;
    let Some((client_id, subtotal)) = row else {
        return Err(JobError::Invalid(format!("no invoice `{invoice_id}`")));
    };
    let mut tx = pool.begin().await?;
    let paid = sqlx::query("UPDATE invoices SET paid_at = $2 WHERE id = $1 AND paid_at IS NULL")
        .bind(invoice_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    if paid.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO transactions (id, kind, category, client_id, invoice_id, amount_cents, occurred_at)
         VALUES ($1, 'revenue', 'subscription', $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(stable_id("txn", &[invoice_id, "payment"]))
    .bind(&client_id)
    .bind(invoice_id)
    .bind(subtotal)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    ctx.store
        .record_event(
            &mut *tx,
            Event {
                layer: Layer::Finance,
                kind: "paid",
                subject: invoice_id,
                data: serde_json::json!({ "subtotal_cents": subtotal }),
                occurred_at: at,
            },
        )
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// A client cancels: no further invoices; counted as churn.
pub async fn cancel_client(ctx: &Ctx, client_id: &str, at: i64) -> Result<bool, JobError> {
    let done =
        sqlx::query("UPDATE clients SET canceled_at = $2 WHERE id = $1 AND canceled_at IS NULL")
            .bind(client_id)
            .bind(at)
            .execute(ctx.store.pool())
            .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_rounds_half_up_in_cents() {
        assert_eq!(tax_cents(150_000, 800), 12_000);
        assert_eq!(tax_cents(1_006, 800), 80); // 80.48
        assert_eq!(tax_cents(1_007, 800), 81); // 80.56
        assert_eq!(tax_cents(0, 800), 0);
    }

    #[test]
    fn the_setup_fee_is_billed_once_on_the_first_invoice() {
        let r = FinanceRules::default();
        let first = invoice_for("c1", "professional", "2026-02", true, 0, &r).unwrap();
        assert_eq!(first.subtotal_cents, 150_000 + 250_000);
        assert_eq!(first.tax_cents, 32_000);
        assert_eq!(first.total_cents, 432_000);
        assert_eq!(first.due_at, 30 * DAY);
        let next = invoice_for("c1", "professional", "2026-03", false, 0, &r).unwrap();
        assert_eq!(next.lines.len(), 1);
        assert_eq!(next.total_cents, 162_000);
        assert!(invoice_for("c1", "platinum", "2026-03", false, 0, &r).is_err());
    }
}
