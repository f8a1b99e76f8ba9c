//! `GET /money`: MRR, churn, LTV and CAC by calendar month as charts (a month without a
//! value is a gap, never a zero), the same as a table with ARR and the month's new and
//! canceled clients, and the invoices, newest first, each unpaid one with "mark paid".

use super::charts::{self, Point};
use super::layout::{self, when};
use super::session::{Refusal, Signed};
use crate::layers::finance;
use crate::{Ctx, JobError};
use axum::extract::State;
use axum::response::Response;
use cep_shared::format::dollars;
use cep_shared::period::{Kind, Period};
use cep_shared::vocabulary::Role;
use maud::html;

/// Months shown, the current one (up to now) last.
const MONTHS: usize = 12;
/// Invoices listed.
const INVOICES: i64 = 100;

#[derive(sqlx::FromRow)]
struct Invoice {
    id: String,
    business_name: String,
    period: String,
    total_cents: i64,
    due_at: i64,
    paid_at: Option<i64>,
}

/// `GET /money`.
pub async fn page(State(ctx): State<Ctx>, signed: Signed) -> Result<Response, Refusal> {
    let now = ctx.now();
    let mut months = vec![Period::containing(Kind::Month, now)];
    while months.len() < MONTHS {
        let before = months[months.len() - 1].previous();
        months.push(before);
    }
    months.reverse();
    let mut rows = Vec::new();
    for m in &months {
        let (from, to) = m.span_millis();
        rows.push((
            m.to_string(),
            finance::metrics(&ctx, from, to.min(now)).await?,
        ));
    }
    let series = |f: &dyn Fn(&finance::Metrics) -> Option<f64>| -> Vec<Point> {
        rows.iter()
            .map(|(label, m)| Point {
                label: label.clone(),
                value: f(m),
                partial: false,
            })
            .collect()
    };
    let money = |c: f64| dollars(c.round() as i64);
    let invoices: Vec<Invoice> = sqlx::query_as(
        "SELECT i.id, c.business_name, i.period, i.total_cents, i.due_at, i.paid_at
           FROM invoices i JOIN clients c ON c.id = i.client_id
          ORDER BY i.issued_at DESC, i.id DESC LIMIT $1",
    )
    .bind(INVOICES)
    .fetch_all(ctx.store.pool())
    .await
    .map_err(JobError::from)?;
    let acts = signed.user.role >= Role::Operator;
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        (charts::line("MRR", &series(&|m| Some(m.mrr_cents as f64)), &[], None, money))
        (charts::line("Churn (cancellations ÷ clients at the month's start)", &series(&|m| m.churn_rate), &[], None, |v| format!("{:.1} %", v * 100.0)))
        (charts::line("LTV (ARPA ÷ churn)", &series(&|m| m.ltv_cents.map(|c| c as f64)), &[], None, money))
        (charts::line("CAC (acquisition spend ÷ clients won)", &series(&|m| m.cac_cents.map(|c| c as f64)), &[], None, money))
        div.wrap { table {
            tr { th { "Month" } th { "MRR" } th { "ARR" } th { "Active" } th { "New" } th { "Canceled" } th { "Churn" } th { "LTV" } th { "CAC" } th { "Revenue" } th { "Costs" } }
            @for (label, m) in &rows {
                tr {
                    td { (label) }
                    td { (dollars(m.mrr_cents)) }
                    td { (dollars(m.arr_cents)) }
                    td { (m.active_clients) }
                    td { (m.new_clients) }
                    td { (m.canceled_clients) }
                    td { @match m.churn_rate { Some(c) => (format!("{:.1} %", c * 100.0)), None => span.muted { "no data" } } }
                    td { @match m.ltv_cents { Some(c) => (dollars(c)), None => span.muted { "unknown" } } }
                    td { @match m.cac_cents { Some(c) => (dollars(c)), None => span.muted { "no client won" } } }
                    td { (dollars(m.revenue_cents)) }
                    td { (dollars(m.costs_cents)) }
                }
            }
        } }
        h2 { "Invoices" }
        @if invoices.is_empty() { p.muted { "None issued yet." } }
        @else {
            div.wrap { table {
                tr { th { "Client" } th { "Period" } th { "Total" } th { "Due" } th { "Paid" } }
                @for i in &invoices {
                    tr id=(format!("invoice-{}", i.id)) {
                        td { (i.business_name) }
                        td { (i.period) }
                        td { (dollars(i.total_cents)) }
                        td { (when(i.due_at)) }
                        td {
                            @match i.paid_at {
                                Some(at) => (when(at)),
                                None if acts => {
                                    form.inline method="post" action=(format!("/invoices/{}/paid", super::layout::url_path(&i.id))) {
                                        input type="hidden" name="csrf" value=(signed.csrf);
                                        button { "Mark paid" }
                                    }
                                }
                                None => span.muted { "unpaid" },
                            }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page(signed.shown(), "/money", "Money", nav, body))
}
