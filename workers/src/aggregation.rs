//! The aggregator: each container's health over its window, from recorded outcomes,
//! rolled up into Φ_sync and stored in `coherence_metrics`.

use crate::{Ctx, JobError};
use cep_shared::Container;
use cep_shared::clock::DAY;
use cep_shared::config::Timescale;
use cep_shared::ids::stable_id;
use cep_shared::jobs::AggregationJob;
use cep_shared::phi::{Coherence, ContainerInputs, Window, coherence, ratio};
use cep_shared::vocabulary::EventKind;

/// Where a container's window starts when it reaches back `n` (≥ 1) whole windows from
/// `now`: days and weeks by their length, months by the calendar (the same day of the
/// month `n` months before, clamped to that month's end).
pub fn window_start(t: Timescale, now: i64, n: u32) -> i64 {
    match t {
        Timescale::Daily => now - i64::from(n) * DAY,
        Timescale::Weekly => now - i64::from(n) * 7 * DAY,
        Timescale::Monthly => cep_shared::clock::from_millis(now)
            .checked_sub_months(chrono::Months::new(n))
            .map_or(i64::MIN, |t| t.timestamp_millis()),
    }
}

async fn count(ctx: &Ctx, kind: EventKind, from: i64, to: i64) -> Result<f64, JobError> {
    Ok(ctx.store.count_events(kind, from, to).await? as f64)
}

async fn pair(ctx: &Ctx, sql: &'static str, from: i64, to: i64) -> Result<(f64, f64), JobError> {
    let (a, b): (i64, i64) = sqlx::query_as(sql)
        .bind(from)
        .bind(to)
        .fetch_one(ctx.store.pool())
        .await?;
    Ok((a as f64, b as f64))
}

/// A container's two ratios over one span, with their samples.
struct Ratios {
    conversion: (f64, f64),
    efficiency: (f64, f64),
    /// The efficiency ratio's sample: its denominator, or for the margin the invoices
    /// paid.
    efficiency_sample: f64,
}

async fn ratios(ctx: &Ctx, c: Container, from: i64, now: i64) -> Result<Ratios, JobError> {
    Ok(match c {
        Container::Sales => {
            let delivered = count(ctx, EventKind::Delivered, from, now).await?;
            let due = count(ctx, EventKind::Due, from, now).await?;
            Ratios {
                conversion: (
                    count(ctx, EventKind::Booked, from, now).await?
                        - count(ctx, EventKind::Canceled, from, now).await?,
                    count(ctx, EventKind::Contacted, from, now).await?,
                ),
                efficiency: (delivered, due),
                efficiency_sample: due,
            }
        }
        Container::Operations => {
            // Tasks that fell due in the window, and those done by their due date.
            let (due, on_time) = pair(
                ctx,
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN done_at IS NOT NULL AND done_at <= due_at THEN 1 ELSE 0 END), 0)
                   FROM tasks WHERE due_at >= $1 AND due_at < $2",
                from,
                now,
            )
            .await?;
            Ratios {
                conversion: (
                    count(ctx, EventKind::Completed, from, now).await?,
                    count(ctx, EventKind::Started, from, now).await?,
                ),
                efficiency: (on_time, due),
                efficiency_sample: due,
            }
        }
        Container::Finance => {
            // Invoices that fell due in the window, and those paid by now.
            let (due, paid) = pair(
                ctx,
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN paid_at IS NOT NULL AND paid_at < $2 THEN 1 ELSE 0 END), 0)
                   FROM invoices WHERE due_at >= $1 AND due_at < $2",
                from,
                now,
            )
            .await?;
            let (paid_in_window, _) = pair(
                ctx,
                "SELECT COUNT(*), 0 FROM invoices WHERE paid_at >= $1 AND paid_at < $2",
                from,
                now,
            )
            .await?;
            let (revenue, costs): (i64, i64) = sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'revenue' THEN amount_cents ELSE 0 END), 0) AS BIGINT),
                        CAST(COALESCE(SUM(CASE WHEN kind = 'cost' THEN amount_cents ELSE 0 END), 0) AS BIGINT)
                   FROM transactions WHERE occurred_at >= $1 AND occurred_at < $2",
            )
            .bind(from)
            .bind(now)
            .fetch_one(ctx.store.pool())
            .await?;
            Ratios {
                conversion: (paid, due),
                efficiency: ((revenue - costs).max(0) as f64, revenue as f64),
                efficiency_sample: paid_in_window,
            }
        }
    })
}

/// The recorded inputs of one container at `now`: over its window, reached back by
/// whole windows (at most `phi.max_widen` times) until both ratios have
/// `phi.min_sample`. Still short: no ratios, so the container has no data. The error
/// rate is taken over the last span tried.
pub async fn container_inputs(
    ctx: &Ctx,
    c: Container,
    now: i64,
) -> Result<ContainerInputs, JobError> {
    let timescale = ctx.settings.containers.get(c).timescale;
    let min = f64::from(ctx.settings.phi.min_sample.get(c));
    let max_widen = ctx.settings.phi.max_widen;
    let mut widened = 0;
    loop {
        let from = window_start(timescale, now, widened + 1);
        let r = ratios(ctx, c, from, now).await?;
        let enough = r.conversion.1 >= min && r.efficiency_sample >= min;
        if enough || widened == max_widen {
            let (failed, ended) = ctx.store.outcome_counts(c, from, now).await?;
            return Ok(ContainerInputs {
                conversion_rate: enough
                    .then(|| ratio(r.conversion.0, r.conversion.1))
                    .flatten(),
                efficiency: enough
                    .then(|| ratio(r.efficiency.0, r.efficiency.1))
                    .flatten(),
                error_rate: ratio(failed as f64, ended as f64),
                conversion_sample: r.conversion.1 as u64,
                efficiency_sample: r.efficiency_sample as u64,
                window: enough.then_some(Window {
                    from,
                    to: now,
                    widened,
                }),
            });
        }
        widened += 1;
    }
}

pub async fn compute(ctx: &Ctx, now: i64) -> Result<Coherence, JobError> {
    let mut inputs = Vec::new();
    for c in Container::ALL {
        inputs.push((c, container_inputs(ctx, c, now).await?));
    }
    Ok(coherence(&inputs, &ctx.settings))
}

/// Computes and stores Φ_sync for the job's period; a rerun overwrites the same row.
pub async fn handle(ctx: &Ctx, job: AggregationJob) -> Result<Coherence, JobError> {
    let now = ctx.now();
    let c = compute(ctx, now).await?;
    let health = |k: Container| {
        c.containers
            .iter()
            .find(|h| h.container == k)
            .and_then(|h| h.health)
    };
    sqlx::query(
        "INSERT INTO coherence_metrics (id, computed_at, phi_sync, status, sales_health, operations_health, finance_health, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET computed_at = $2, phi_sync = $3, status = $4, sales_health = $5,
                                        operations_health = $6, finance_health = $7, details = $8",
    )
    .bind(stable_id("phi", &[&job.period]))
    .bind(now)
    .bind(c.phi_sync)
    .bind(c.status.as_str())
    .bind(health(Container::Sales))
    .bind(health(Container::Operations))
    .bind(health(Container::Finance))
    .bind(serde_json::to_string(&c)?)
    .execute(ctx.store.pool())
    .await?;
    let health: Vec<(Container, Option<f64>)> =
        Container::ALL.iter().map(|k| (*k, health(*k))).collect();
    cep_shared::metrics::get().record_phi(c.phi_sync, &health, now);
    tracing::info!(phi_sync = %c.shown(), status = %c.status, "phi_sync aggregated");
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> i64 {
        chrono::Utc
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn a_monthly_window_reaches_back_by_calendar_months_clamped_to_their_end() {
        let m = Timescale::Monthly;
        // 31 March back one month: February has 28 days (29 in a leap year).
        assert_eq!(window_start(m, at(2026, 3, 31, 12), 1), at(2026, 2, 28, 12));
        assert_eq!(window_start(m, at(2024, 3, 31, 12), 1), at(2024, 2, 29, 12));
        // Back two months from 31 March is 31 January; from 31 May one month is 30 April.
        assert_eq!(window_start(m, at(2026, 3, 31, 12), 2), at(2026, 1, 31, 12));
        assert_eq!(window_start(m, at(2026, 5, 31, 12), 1), at(2026, 4, 30, 12));
        // Across a year.
        assert_eq!(window_start(m, at(2026, 1, 15, 0), 1), at(2025, 12, 15, 0));
    }

    #[test]
    fn daily_and_weekly_windows_reach_back_by_their_length() {
        let now = at(2026, 3, 8, 23);
        assert_eq!(window_start(Timescale::Daily, now, 1), at(2026, 3, 7, 23));
        assert_eq!(window_start(Timescale::Daily, now, 3), at(2026, 3, 5, 23));
        assert_eq!(window_start(Timescale::Weekly, now, 2), at(2026, 2, 22, 23));
    }
}
