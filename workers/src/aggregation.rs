//! The aggregator: each container's health over its window, from recorded outcomes,
//! rolled up into Φ_sync and stored in `coherence_metrics`.

use crate::{Ctx, JobError};
use cep_shared::Container;
use cep_shared::clock::DAY;
use cep_shared::config::Timescale;
use cep_shared::ids::stable_id;
use cep_shared::jobs::AggregationJob;
use cep_shared::phi::{Coherence, ContainerInputs, coherence, ratio};
use cep_shared::vocabulary::EventKind;

pub fn window_millis(t: Timescale) -> i64 {
    match t {
        Timescale::Daily => DAY,
        Timescale::Weekly => 7 * DAY,
        Timescale::Monthly => 30 * DAY,
    }
}

async fn count(ctx: &Ctx, kind: EventKind, from: i64, to: i64) -> Result<f64, JobError> {
    Ok(ctx.store.count_events(kind, from, to).await? as f64)
}

async fn due_and_done(
    ctx: &Ctx,
    sql: &'static str,
    from: i64,
    to: i64,
) -> Result<(f64, f64), JobError> {
    let (due, done): (i64, i64) = sqlx::query_as(sql)
        .bind(from)
        .bind(to)
        .fetch_one(ctx.store.pool())
        .await?;
    Ok((due as f64, done as f64))
}

/// The recorded inputs of one container over the window ending at `now`.
pub async fn container_inputs(
    ctx: &Ctx,
    c: Container,
    now: i64,
) -> Result<ContainerInputs, JobError> {
    let from = now - window_millis(ctx.settings.containers.get(c).timescale);
    let (conversion, efficiency) = match c {
        Container::Sales => (
            ratio(
                count(ctx, EventKind::Booked, from, now).await?
                    - count(ctx, EventKind::Canceled, from, now).await?,
                count(ctx, EventKind::Contacted, from, now).await?,
            ),
            ratio(
                count(ctx, EventKind::Delivered, from, now).await?,
                count(ctx, EventKind::Due, from, now).await?,
            ),
        ),
        Container::Operations => (
            ratio(
                count(ctx, EventKind::Completed, from, now).await?,
                count(ctx, EventKind::Started, from, now).await?,
            ),
            {
                // Tasks that fell due in the window, and those done by their due date.
                let (due, on_time) = due_and_done(
                    ctx,
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN done_at IS NOT NULL AND done_at <= due_at THEN 1 ELSE 0 END), 0)
                       FROM tasks WHERE due_at >= $1 AND due_at < $2",
                    from,
                    now,
                )
                .await?;
                ratio(on_time, due)
            },
        ),
        Container::Finance => (
            {
                // Invoices that fell due in the window, and those paid by now.
                let (due, paid) = due_and_done(
                    ctx,
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN paid_at IS NOT NULL AND paid_at < $2 THEN 1 ELSE 0 END), 0)
                       FROM invoices WHERE due_at >= $1 AND due_at < $2",
                    from,
                    now,
                )
                .await?;
                ratio(paid, due)
            },
            {
                let (revenue, costs): (i64, i64) = sqlx::query_as(
                    "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'revenue' THEN amount_cents ELSE 0 END), 0) AS BIGINT),
                            CAST(COALESCE(SUM(CASE WHEN kind = 'cost' THEN amount_cents ELSE 0 END), 0) AS BIGINT)
                       FROM transactions WHERE occurred_at >= $1 AND occurred_at < $2",
                )
                .bind(from)
                .bind(now)
                .fetch_one(ctx.store.pool())
                .await?;
                ratio((revenue - costs).max(0) as f64, revenue as f64)
            },
        ),
    };
    let (failed, ended) = ctx.store.outcome_counts(c, from, now).await?;
    Ok(ContainerInputs {
        conversion_rate: conversion,
        efficiency,
        error_rate: ratio(failed as f64, ended as f64),
    })
}

pub async fn compute(ctx: &Ctx, now: i64) -> Result<Coherence, JobError> {
    let mut inputs = Vec::new();
    for c in Container::ALL {
        inputs.push((c, container_inputs(ctx, c, now).await?));
    }
    let s = &ctx.settings;
    Ok(coherence(
        &inputs,
        &s.containers,
        &s.cep.phi_thresholds,
        &s.cep.red_flags,
    ))
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
    tracing::info!(phi_sync = ?c.phi_sync, status = %c.status, "phi_sync aggregated");
    Ok(c)
}
