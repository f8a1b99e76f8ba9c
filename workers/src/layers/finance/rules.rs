//! Finance's pure rules, in integer cents: tax, a client's invoice, and the agency's
//! recurring numbers from its clients' subscriptions and the period's transactions.

use crate::JobError;
use cep_shared::clock::DAY;
use cep_shared::config::FinanceRules;
use cep_shared::ids::stable_id;
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

/// A client as the recurring numbers see it: its tier, when it started and when it
/// canceled.
pub struct Subscription {
    pub tier: String,
    pub started_at: i64,
    pub canceled_at: Option<i64>,
}

/// Money recorded over the window: revenue, costs, and what acquiring clients cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Takings {
    pub revenue_cents: i64,
    pub costs_cents: i64,
    pub acquisition_cents: i64,
}

/// The agency's recurring numbers over `[from, now)`: MRR from the tiers of the clients
/// active at `now`, churn against those active at `from`, and the unknown left unknown
/// (no churn rate without clients at the start, no LTV while nobody churned, no CAC
/// without a new client).
pub fn metrics(
    clients: &[Subscription],
    t: Takings,
    from: i64,
    now: i64,
    r: &FinanceRules,
) -> Metrics {
    let active = |at: i64| {
        clients
            .iter()
            .filter(move |c| c.started_at < at && c.canceled_at.is_none_or(|c| c >= at))
    };
    let active_now: Vec<_> = active(now).collect();
    let mrr: i64 = active_now
        .iter()
        .filter_map(|c| r.tier(&c.tier).map(|t| t.monthly_cents))
        .sum();
    let at_start = active(from).count() as i64;
    let new_clients = clients.iter().filter(|c| c.started_at >= from).count() as i64;
    let canceled = clients
        .iter()
        .filter(|c| c.canceled_at.is_some_and(|c| c >= from && c < now))
        .count() as i64;
    let churn = (at_start > 0).then(|| canceled as f64 / at_start as f64);
    let n = active_now.len() as i64;
    let arpa = (n > 0).then(|| mrr / n);
    let ltv = match (arpa, churn) {
        (Some(a), Some(c)) if c > 0.0 => Some((a as f64 / c).round() as i64),
        _ => None,
    };
    Metrics {
        active_clients: n,
        mrr_cents: mrr,
        arr_cents: 12 * mrr,
        new_clients,
        canceled_clients: canceled,
        churn_rate: churn,
        arpa_cents: arpa,
        ltv_cents: ltv,
        // Spend ÷ clients won; unknown with none won or no acquisition cost configured.
        cac_cents: (new_clients > 0 && r.acquisition_costs.configured())
            .then(|| t.acquisition_cents / new_clients),
        revenue_cents: t.revenue_cents,
        costs_cents: t.costs_cents,
    }
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

    #[test]
    fn recurring_numbers_count_only_what_happened_and_leave_the_unknown_unknown() {
        let mut r = FinanceRules::default();
        r.acquisition_costs
            .monthly
            .insert("mailboxes".into(), 60_000);
        let sub = |started_at, canceled_at| Subscription {
            tier: "professional".into(),
            started_at,
            canceled_at,
        };
        let none = metrics(&[], Takings::default(), 0, 30 * DAY, &r);
        assert_eq!(
            (
                none.mrr_cents,
                none.churn_rate,
                none.ltv_cents,
                none.cac_cents
            ),
            (0, None, None, None)
        );
        let clients = [
            sub(-DAY, None),
            sub(-DAY, Some(10 * DAY)),
            sub(5 * DAY, None),
        ];
        let t = Takings {
            acquisition_cents: 60_000,
            ..Takings::default()
        };
        let m = metrics(&clients, t, 0, 30 * DAY, &r);
        assert_eq!(m.active_clients, 2);
        assert_eq!(m.mrr_cents, 2 * 150_000);
        assert_eq!(m.churn_rate, Some(0.5));
        assert_eq!(m.ltv_cents, Some(300_000));
        assert_eq!((m.new_clients, m.cac_cents), (1, Some(60_000)));
        // With no acquisition cost configured there is no spend to divide: unknown, not 0.
        let unconfigured = metrics(&clients, t, 0, 30 * DAY, &FinanceRules::default());
        assert_eq!(unconfigured.cac_cents, None);
    }
}
