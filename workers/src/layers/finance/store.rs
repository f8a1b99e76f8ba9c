//! Finance's SQL: the clients to invoice, an invoice with its costs and event, costs,
//! payments, cancellations, and what the recurring numbers are computed from.

use super::rules::{Invoice, Subscription, Takings};
use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
use cep_shared::vocabulary::EventKind;

/// The clients live at any time in `[from, to)` (started before its end, not canceled
/// before its start), with their tiers.
pub async fn billable(ctx: &Ctx, from: i64, to: i64) -> Result<Vec<(String, String)>, JobError> {
    Ok(sqlx::query_as(
        "SELECT id, billing_tier FROM clients
          WHERE started_at < $2 AND (canceled_at IS NULL OR canceled_at >= $1) ORDER BY id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(ctx.store.pool())
    .await?)
}

/// A client's invoice for `period` (the setup fee on its first) with the period's
/// running costs, dated `period_start` so they count in that period, in one transaction;
/// `None` when an earlier attempt already issued it.
pub async fn issue(
    ctx: &Ctx,
    client_id: &str,
    period: &str,
    period_start: i64,
    invoice: impl FnOnce(bool) -> Result<Invoice, JobError>,
) -> Result<Option<Invoice>, JobError> {
    let r = &ctx.settings.layers.finance;
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    let (earlier,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM invoices WHERE client_id = $1 AND period <> $2")
            .bind(client_id)
            .bind(period)
            .fetch_one(&mut *tx)
            .await?;
    let inv = invoice(earlier == 0)?;
    let added = sqlx::query(
        "INSERT INTO invoices (id, client_id, period, lines, subtotal_cents, tax_cents, total_cents, issued_at, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (client_id, period) DO NOTHING",
    )
    .bind(&inv.id)
    .bind(client_id)
    .bind(period)
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
        let id = stable_id("txn", &[client_id, period, category]);
        record_cost(&mut *tx, &id, category, client_id, cents, period_start).await?;
    }
    let issued = added.rows_affected() == 1;
    if issued {
        let data = serde_json::json!({ "total_cents": inv.total_cents });
        ctx.store
            .record_event(&mut *tx, EventKind::Invoiced, &inv.id, data, now)
            .await?;
    }
    tx.commit().await?;
    Ok(issued.then_some(inv))
}

/// Invoices of `period` not yet mirrored to Stripe.
pub async fn unpushed(ctx: &Ctx, period: &str) -> Result<Vec<String>, JobError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM invoices WHERE period = $1 AND stripe_invoice_id IS NULL ORDER BY id",
    )
    .bind(period)
    .fetch_all(ctx.store.pool())
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Every client that started before `now`, and the money recorded over `[from, now)`.
pub async fn metric_inputs(
    ctx: &Ctx,
    from: i64,
    now: i64,
) -> Result<(Vec<Subscription>, Takings), JobError> {
    let pool = ctx.store.pool();
    let clients: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT billing_tier, started_at, canceled_at FROM clients WHERE started_at < $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
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
    let clients = clients
        .into_iter()
        .map(|(tier, started_at, canceled_at)| Subscription {
            tier,
            started_at,
            canceled_at,
        })
        .collect();
    let takings = Takings {
        revenue_cents: revenue,
        costs_cents: costs,
        acquisition_cents: acquisition,
    };
    Ok((clients, takings))
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
            EventKind::Paid,
            invoice_id,
            serde_json::json!({ "subtotal_cents": subtotal }),
            at,
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

/// One client's money in a period as the store holds it.
pub struct Bill {
    pub tier: String,
    /// The period's invoice: id, total, when paid.
    pub invoice: Option<(String, i64, Option<i64>)>,
    /// No invoice of another period: the setup fee is on this one.
    pub first: bool,
    /// Revenue and cost transactions dated in `[from, to)`.
    pub transactions: i64,
    pub received_cents: i64,
}

/// `client_id`'s bill for `period` over `[from, to)`; `None` for no such client.
pub async fn bill(
    ctx: &Ctx,
    client_id: &str,
    period: &str,
    from: i64,
    to: i64,
) -> Result<Option<Bill>, JobError> {
    let pool = ctx.store.pool();
    let tier: Option<(String,)> = sqlx::query_as("SELECT billing_tier FROM clients WHERE id = $1")
        .bind(client_id)
        .fetch_optional(pool)
        .await?;
    let Some((tier,)) = tier else {
        return Ok(None);
    };
    let invoice: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, total_cents, paid_at FROM invoices WHERE client_id = $1 AND period = $2",
    )
    .bind(client_id)
    .bind(period)
    .fetch_optional(pool)
    .await?;
    let (others,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM invoices WHERE client_id = $1 AND period <> $2")
            .bind(client_id)
            .bind(period)
            .fetch_one(pool)
            .await?;
    let (transactions, received_cents): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), SUM(CASE WHEN kind = 'revenue' THEN amount_cents ELSE 0 END)
           FROM transactions WHERE client_id = $1 AND occurred_at >= $2 AND occurred_at < $3",
    )
    .bind(client_id)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    Ok(Some(Bill {
        tier,
        invoice,
        first: others == 0,
        transactions,
        received_cents: received_cents.unwrap_or(0),
    }))
}

/// An invoice past its due date and unpaid, as the operator chases it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct Overdue {
    pub id: String,
    pub client_id: String,
    pub business_name: String,
    pub period: String,
    pub total_cents: i64,
    pub due_at: i64,
}

/// Unpaid invoices due before `now`, longest overdue first.
pub async fn overdue(ctx: &Ctx, now: i64, limit: u32) -> Result<Vec<Overdue>, JobError> {
    Ok(sqlx::query_as(
        "SELECT i.id, i.client_id, c.business_name, i.period, i.total_cents, i.due_at
           FROM invoices i JOIN clients c ON c.id = i.client_id
          WHERE i.paid_at IS NULL AND i.due_at < $1
          ORDER BY i.due_at, i.id LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(ctx.store.pool())
    .await?)
}
