//! Stripe: each invoice mirrored as a customer, a draft invoice with its lines, then
//! finalized (Stripe emails it); payments come back on `POST /webhooks/stripe`.
//!
//! Every create carries an `Idempotency-Key` derived from our ids, so a job retried
//! after a timeout gets the same Stripe objects back instead of duplicates.

use super::Line;
use crate::clients::provider;
use crate::{Ctx, JobError};
use cep_shared::clock::DAY;
use cep_shared::config::Provider;
use serde::Deserialize;

#[derive(Deserialize)]
struct Created {
    id: String,
}

async fn post(
    ctx: &Ctx,
    path: &str,
    idempotency_key: &str,
    form: &[(&str, String)],
) -> Result<String, JobError> {
    let s = &ctx.settings.providers.stripe;
    let req = ctx
        .http
        .post(format!("{}{path}", s.api_url.trim_end_matches('/')))
        .bearer_auth(ctx.secrets.stripe_api_key.as_deref().unwrap_or_default())
        .header("Idempotency-Key", idempotency_key)
        .form(form);
    let created: Created = provider::call(ctx, Provider::Stripe, "", req)
        .await?
        .json()?;
    Ok(created.id)
}

/// Mirrors our invoice `invoice_id` to Stripe once; returns Stripe's invoice id.
pub async fn push_invoice(ctx: &Ctx, invoice_id: &str) -> Result<String, JobError> {
    let pool = ctx.store.pool();
    type Row = (
        String,
        String,
        i64,
        i64,
        Option<String>,
        String,
        String,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT i.client_id, i.lines, i.tax_cents, i.due_at, i.stripe_invoice_id,
                c.email, c.business_name, c.stripe_customer_id
           FROM invoices i JOIN clients c ON c.id = i.client_id WHERE i.id = $1",
    )
    .bind(invoice_id)
    .fetch_optional(pool)
    .await?;
    let Some((client_id, lines, tax, due_at, pushed, email, name, customer)) = row else {
        return Err(JobError::Invalid(format!("no invoice `{invoice_id}`")));
    };
    if let Some(id) = pushed {
        return Ok(id);
    }
    let currency = ctx.settings.providers.stripe.currency.clone();
    let customer = match customer {
        Some(c) => c,
        None => {
            let id = post(
                ctx,
                "/v1/customers",
                &format!("cep-customer-{client_id}"),
                &[
                    ("email", email),
                    ("name", name),
                    ("metadata[cep_client_id]", client_id.clone()),
                ],
            )
            .await?;
            sqlx::query("UPDATE clients SET stripe_customer_id = $2 WHERE id = $1")
                .bind(&client_id)
                .bind(&id)
                .execute(pool)
                .await?;
            id
        }
    };
    let days_until_due = ((due_at - ctx.now()) / DAY).max(0);
    let stripe_invoice = post(
        ctx,
        "/v1/invoices",
        &format!("cep-invoice-{invoice_id}"),
        &[
            ("customer", customer.clone()),
            ("collection_method", "send_invoice".into()),
            ("days_until_due", days_until_due.to_string()),
            ("pending_invoice_items_behavior", "exclude".into()),
            ("auto_advance", "false".into()),
            ("currency", currency.clone()),
            ("metadata[cep_invoice_id]", invoice_id.to_owned()),
        ],
    )
    .await?;
    let mut lines: Vec<Line> = serde_json::from_str(&lines)?;
    if tax > 0 {
        lines.push(Line {
            description: "Tax".into(),
            amount_cents: tax,
        });
    }
    for (i, line) in lines.iter().enumerate() {
        post(
            ctx,
            "/v1/invoiceitems",
            &format!("cep-item-{invoice_id}-{i}"),
            &[
                ("customer", customer.clone()),
                ("invoice", stripe_invoice.clone()),
                ("amount", line.amount_cents.to_string()),
                ("currency", currency.clone()),
                ("description", line.description.clone()),
            ],
        )
        .await?;
    }
    post(
        ctx,
        &format!("/v1/invoices/{stripe_invoice}/finalize"),
        &format!("cep-finalize-{invoice_id}"),
        &[("auto_advance", "true".into())],
    )
    .await?;
    sqlx::query("UPDATE invoices SET stripe_invoice_id = $2 WHERE id = $1")
        .bind(invoice_id)
        .bind(&stripe_invoice)
        .execute(pool)
        .await?;
    Ok(stripe_invoice)
}

/// The part of a Stripe event the finance layer reads.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// Applies a verified Stripe event: `invoice.paid` records the payment of the invoice
/// it names. `Ok(None)`: an event we do not act on, or an invoice not ours.
pub async fn apply(ctx: &Ctx, e: &Event) -> Result<Option<String>, JobError> {
    if !matches!(
        e.kind.as_str(),
        "invoice.paid" | "invoice.payment_succeeded"
    ) {
        return Ok(None);
    }
    let o = &e.data.object;
    // Ours by the id we put in its metadata, or by the Stripe id we stored.
    let ours = o["metadata"]["cep_invoice_id"].as_str().unwrap_or_default();
    let stripe_id = o["id"].as_str().unwrap_or_default();
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM invoices WHERE id = $1 OR stripe_invoice_id = $2")
            .bind(ours)
            .bind(stripe_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    let Some((invoice,)) = row else {
        return Ok(None);
    };
    // Seconds since the epoch from the sender: taken only within sane bounds (from
    // 2000 to a day ahead of us), so no value overflows or lands in another century.
    let latest = ctx.now() / 1000 + 86_400;
    let sane = |t: i64| (946_684_800..=latest).contains(&t).then(|| t * 1000);
    let paid_at = o["status_transitions"]["paid_at"]
        .as_i64()
        .map_or(sane(e.created), sane)
        .ok_or_else(|| {
            JobError::Invalid(format!(
                "event {}: its payment time is not a time from 2000 to now",
                e.id
            ))
        })?;
    super::record_payment(ctx, &invoice, paid_at).await?;
    Ok(Some(invoice))
}
