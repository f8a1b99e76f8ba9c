//! The summary of a run: the funnel, money and the Φ_sync series, read back from the
//! store, and printed as a table.

use super::Options;
use cep_shared::format::{dollars, thousands};
use cep_shared::vocabulary::{EventKind, MessageStatus};
use cep_workers::Ctx;
use cep_workers::layers::finance;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Funnel counts, Φ_sync over time and where the reports are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub days: u32,
    /// The first and the last simulated day (UTC).
    pub first_day: String,
    pub last_day: String,
    pub seed: u64,
    pub backend: String,
    pub funnel: BTreeMap<String, i64>,
    pub phi_series: Vec<PhiPoint>,
    pub final_phi_sync: Option<f64>,
    pub final_status: String,
    pub red_flags: Vec<String>,
    pub parameter_changes: Vec<String>,
    pub reports_dir: String,
    pub reports: i64,
    pub jobs_run: u64,
    pub dead_letters: u64,
    pub webhooks_refused: u64,
    /// The world's planted rates (`simulate.world`).
    pub assumptions: cep_shared::config::WorldSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhiPoint {
    pub at: String,
    pub phi_sync: Option<f64>,
    pub status: String,
    pub sales: Option<f64>,
    pub operations: Option<f64>,
    pub finance: Option<f64>,
}

impl PhiPoint {
    /// The containers with no data at this point (Φ_sync over the others is partial).
    pub fn missing(&self) -> Vec<cep_shared::Container> {
        use cep_shared::Container;
        [
            (Container::Sales, self.sales),
            (Container::Operations, self.operations),
            (Container::Finance, self.finance),
        ]
        .into_iter()
        .filter(|(_, h)| h.is_none())
        .map(|(c, _)| c)
        .collect()
    }
}

#[derive(sqlx::FromRow)]
struct PhiRow {
    computed_at: i64,
    phi_sync: Option<f64>,
    status: String,
    sales_health: Option<f64>,
    operations_health: Option<f64>,
    finance_health: Option<f64>,
}

pub(super) async fn summarize(
    ctx: &Ctx,
    opts: &Options,
    jobs_run: u64,
    dead_letters: u64,
) -> anyhow::Result<Summary> {
    let pool = ctx.store.pool();
    let mut funnel = BTreeMap::new();
    let counts: [(&str, &str); 17] = [
        ("prospects_found", "SELECT COUNT(*) FROM prospects"),
        (
            "needs_data",
            "SELECT COUNT(*) FROM prospects WHERE lead_class = 'needs_data'",
        ),
        (
            "hot_leads",
            "SELECT COUNT(*) FROM prospects WHERE lead_class = 'hot'",
        ),
        (
            "warm_leads",
            "SELECT COUNT(*) FROM prospects WHERE lead_class = 'warm'",
        ),
        ("pitched", "SELECT COUNT(DISTINCT prospect_id) FROM pitches"),
        ("unsubscribed", "SELECT COUNT(*) FROM suppressions"),
        (
            "meetings_held",
            "SELECT COUNT(*) FROM meetings WHERE status IN ('held', 'won', 'lost')",
        ),
        (
            "no_shows",
            "SELECT COUNT(*) FROM meetings WHERE status = 'no_show'",
        ),
        (
            "meetings_won",
            "SELECT COUNT(*) FROM meetings WHERE status = 'won'",
        ),
        (
            "meetings_lost",
            "SELECT COUNT(*) FROM meetings WHERE status = 'lost'",
        ),
        ("clients", "SELECT COUNT(*) FROM clients"),
        (
            "clients_live",
            "SELECT COUNT(*) FROM clients WHERE live_at IS NOT NULL",
        ),
        ("invoices", "SELECT COUNT(*) FROM invoices"),
        (
            "invoices_paid",
            "SELECT COUNT(*) FROM invoices WHERE paid_at IS NOT NULL",
        ),
        ("posts_scheduled", "SELECT COUNT(*) FROM posts"),
        (
            "profiles_linked",
            "SELECT COUNT(*) FROM clients WHERE gbp_location IS NOT NULL",
        ),
        (
            "profile_points_measured",
            "SELECT CAST(COALESCE(SUM(gain), 0) AS BIGINT) FROM profile_observations",
        ),
    ];
    for (name, sql) in counts {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await?;
        funnel.insert(name.to_string(), n);
    }
    for (name, status) in [
        ("messages_recorded", MessageStatus::Recorded),
        ("messages_deferred_now", MessageStatus::Deferred),
    ] {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM messages WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(pool)
            .await?;
        funnel.insert(name.to_string(), n);
    }
    for (name, kind) in [
        ("contacted", EventKind::Contacted),
        ("replied", EventKind::Replied),
        ("meetings_booked", EventKind::Booked),
        ("meetings_canceled", EventKind::Canceled),
    ] {
        let n = ctx.store.count_events(kind, i64::MIN, i64::MAX).await?;
        funnel.insert(name.to_string(), n);
    }
    // The money of the calendar month the run ended in, up to its end.
    let month = cep_shared::period::Period::containing(cep_shared::period::Kind::Month, ctx.now());
    let m = finance::metrics(ctx, month.span_millis().0, ctx.now()).await?;
    let (revenue,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM transactions WHERE kind = 'revenue'",
    )
    .fetch_one(pool)
    .await?;
    funnel.insert("revenue_cents".into(), revenue);
    funnel.insert("mrr_cents".into(), m.mrr_cents);

    let rows: Vec<PhiRow> = sqlx::query_as(
        "SELECT computed_at, phi_sync, status, sales_health, operations_health, finance_health
               FROM coherence_metrics ORDER BY computed_at, id",
    )
    .fetch_all(pool)
    .await?;
    let phi_series: Vec<PhiPoint> = rows
        .into_iter()
        .map(|r| PhiPoint {
            at: cep_shared::clock::from_millis(r.computed_at)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            phi_sync: r.phi_sync,
            status: r.status,
            sales: r.sales_health,
            operations: r.operations_health,
            finance: r.finance_health,
        })
        .collect();
    let last: Option<(String,)> = sqlx::query_as(
        "SELECT details FROM coherence_metrics ORDER BY computed_at DESC, id LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let red_flags = match last {
        Some((d,)) => serde_json::from_str::<serde_json::Value>(&d)?["red_flags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let changes: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, after_value, reason FROM parameter_changes ORDER BY changed_at, id",
    )
    .fetch_all(pool)
    .await?;
    let (reports,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reports")
        .fetch_one(pool)
        .await?;
    let final_point = phi_series.last();
    let day = |n: i64| {
        (opts.start + chrono::Duration::days(n))
            .format("%Y-%m-%d")
            .to_string()
    };
    Ok(Summary {
        days: opts.days,
        first_day: day(0),
        last_day: day(i64::from(opts.days.max(1)) - 1),
        seed: opts.seed,
        backend: ctx.queue.backend_name().into(),
        funnel,
        final_phi_sync: final_point.and_then(|p| p.phi_sync),
        final_status: final_point
            .map(|p| p.status.clone())
            .unwrap_or_else(|| "no data".into()),
        phi_series,
        red_flags,
        parameter_changes: changes
            .into_iter()
            .map(|(n, v, r)| format!("{n} → {v} ({r})"))
            .collect(),
        reports_dir: ctx.settings.data_dir.join("reports").display().to_string(),
        reports,
        jobs_run,
        dead_letters,
        webhooks_refused: 0,
        assumptions: ctx.settings.simulate.world.clone(),
    })
}

/// The summary as a person reads it.
pub fn render(s: &Summary) -> String {
    let mut out = format!(
        "CEP simulation: {} days, {} to {} (UTC), seed {}, {} backend\n\nFunnel\n",
        s.days, s.first_day, s.last_day, s.seed, s.backend
    );
    // In funnel order, then the rest; money as currency.
    let mut keys: Vec<&str> = FUNNEL_ORDER
        .iter()
        .copied()
        .filter(|k| s.funnel.contains_key(*k))
        .collect();
    keys.extend(
        s.funnel
            .keys()
            .map(String::as_str)
            .filter(|k| !FUNNEL_ORDER.contains(k)),
    );
    for k in keys {
        let v = s.funnel[k];
        let label = k.trim_end_matches("_cents").replace('_', " ");
        let shown = if k.ends_with("_cents") {
            dollars(v)
        } else {
            thousands(v)
        };
        out.push_str(&format!("  {label:<24} {shown:>14}\n"));
    }
    // The meetings' rates, each with its sample.
    let n = |k: &str| s.funnel.get(k).copied().unwrap_or(0);
    let (held, missed, won) = (n("meetings_held"), n("no_shows"), n("meetings_won"));
    out.push_str(&format!(
        "  {:<24} {:>14}\n  {:<24} {:>14}\n",
        "show rate",
        rate(held, held + missed, "meetings"),
        "close rate",
        rate(won, held, "held"),
    ));
    out.push_str(
        "\nΦ_sync by week: mean of the daily values with data (sales / operations / finance)\n",
    );
    let fmt = |v: Option<f64>| {
        v.map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "no data".into())
    };
    let mean = |xs: &[Option<f64>]| {
        let v: Vec<f64> = xs.iter().flatten().copied().collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let mut weeks: BTreeMap<String, Vec<&PhiPoint>> = BTreeMap::new();
    for p in &s.phi_series {
        // The ISO week and its Monday.
        let week = chrono::NaiveDateTime::parse_from_str(&p.at, "%Y-%m-%d %H:%M")
            .map(|t| {
                use chrono::Datelike;
                let w = t.iso_week();
                let monday =
                    t.date() - chrono::Days::new(t.weekday().num_days_from_monday().into());
                format!("{}-W{:02} ({})", w.year(), w.week(), monday.format("%b %d"))
            })
            .unwrap_or_default();
        weeks.entry(week).or_default().push(p);
    }
    for (week, ps) in &weeks {
        let col =
            |f: fn(&PhiPoint) -> Option<f64>| mean(&ps.iter().map(|p| f(p)).collect::<Vec<_>>());
        // Days whose Φ_sync left a container out: the week's mean is partial.
        let partial: Vec<&&PhiPoint> = ps
            .iter()
            .filter(|p| p.phi_sync.is_some() && !p.missing().is_empty())
            .collect();
        let note = if partial.is_empty() {
            String::new()
        } else {
            let mut missing: Vec<cep_shared::Container> =
                partial.iter().flat_map(|p| p.missing()).collect();
            missing.sort();
            missing.dedup();
            let names: Vec<String> = missing.iter().map(|c| format!("{c} no data")).collect();
            format!(
                "  partial on {} of {} days: {}",
                partial.len(),
                ps.len(),
                names.join(", ")
            )
        };
        out.push_str(&format!(
            "  {week}  Φ {:<8} {} / {} / {}{note}\n",
            fmt(col(|p| p.phi_sync)),
            fmt(col(|p| p.sales)),
            fmt(col(|p| p.operations)),
            fmt(col(|p| p.finance))
        ));
    }
    let final_missing = s
        .phi_series
        .last()
        .map(PhiPoint::missing)
        .unwrap_or_default();
    out.push_str(&format!(
        "\nFinal Φ_sync {} — status {}\nRed flags: {}\n",
        cep_shared::phi::shown(s.final_phi_sync, &final_missing),
        s.final_status,
        if s.red_flags.is_empty() {
            "none".into()
        } else {
            s.red_flags.join("; ")
        }
    ));
    out.push_str(&format!(
        "Feedback-loop parameter changes: {}\n",
        if s.parameter_changes.is_empty() {
            "none".into()
        } else {
            s.parameter_changes.join("; ")
        }
    ));
    out.push_str(&format!(
        "Jobs run: {}, dead letters: {}\nReports: {} in {}\n",
        s.jobs_run, s.dead_letters, s.reports, s.reports_dir
    ));
    out.push_str("\nAssumptions: the simulated world's planted rates (simulate.world in config.yaml), not forecasts\n");
    for (name, share) in s.assumptions.shares() {
        out.push_str(&format!(
            "  {:<24} {:>6.1} %\n",
            name.replace('_', " "),
            share * 100.0
        ));
    }
    for (variant, lift) in &s.assumptions.variant_lift {
        out.push_str(&format!(
            "  {:<24} {lift:>6.2} ×\n",
            format!("variant {variant} reply lift")
        ));
    }
    out
}

/// The funnel's stages in the order a prospect goes through them, then the work and
/// money that follow.
const FUNNEL_ORDER: [&str; 25] = [
    "prospects_found",
    "needs_data",
    "hot_leads",
    "warm_leads",
    "pitched",
    "contacted",
    "replied",
    "unsubscribed",
    "meetings_booked",
    "meetings_canceled",
    "meetings_held",
    "no_shows",
    "meetings_won",
    "meetings_lost",
    "clients",
    "clients_live",
    "messages_recorded",
    "messages_deferred_now",
    "posts_scheduled",
    "profiles_linked",
    "profile_points_measured",
    "invoices",
    "invoices_paid",
    "revenue_cents",
    "mrr_cents",
];

/// `part ÷ whole` as a percentage with one decimal and its sample, or "no data".
fn rate(part: i64, whole: i64, of: &str) -> String {
    if whole == 0 {
        return format!("no data (0 {of})");
    }
    format!(
        "{:.1} % of {} {of}",
        part as f64 * 100.0 / whole as f64,
        thousands(whole)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_carry_their_sample() {
        assert_eq!(rate(3, 4, "meetings"), "75.0 % of 4 meetings");
        assert_eq!(rate(1, 3, "held"), "33.3 % of 3 held");
        assert_eq!(rate(0, 0, "held"), "no data (0 held)");
    }
}
