//! Applying an optimization to the parameters layers 1–3 read: pitch variant weights,
//! the send window, category priorities. Each change is recorded by [`params`] with its
//! before and after values, and can be rolled back.

use super::measure::{replies_by, replies_in_hours};
use super::rules::{Optimization, category_priorities, narrower_window, reweight};
use crate::layers::outreach::SendHours;
use crate::layers::params;
use crate::{Ctx, JobError};
use std::collections::BTreeMap;

/// Applies one optimization to the parameters layers 1–3 read; the id of the recorded
/// change, or `None` when the data does not justify one.
pub async fn apply(
    ctx: &Ctx,
    o: &Optimization,
    period: &str,
    from: i64,
    to: i64,
) -> Result<Option<String>, JobError> {
    let reason = format!("{}: {} (impact {:.0})", o.metric, o.action, o.impact);
    let key = format!("{period}:{}", o.metric);
    match o.metric.as_str() {
        "pitch_confidence" | "response_rate" => {
            let variants = &ctx.settings.layers.pitch_generation.variants;
            let current: BTreeMap<String, f64> = params::get(ctx, params::PITCH_VARIANT_WEIGHTS)
                .await?
                .unwrap_or_else(|| variants.iter().map(|v| (v.clone(), 1.0)).collect());
            let rates = replies_by(ctx, "pi.variant", from, to).await?;
            match reweight(&current, &rates) {
                Some(next) => {
                    params::set(ctx, params::PITCH_VARIANT_WEIGHTS, &next, &reason, &key).await
                }
                None => Ok(None),
            }
        }
        "booking_rate" => {
            let o = &ctx.settings.layers.outreach;
            let current: SendHours =
                params::get(ctx, params::SEND_HOURS)
                    .await?
                    .unwrap_or(SendHours {
                        start: o.send_start_hour,
                        end: o.send_end_hour,
                    });
            if current.end - current.start <= 6 {
                return Ok(None);
            }
            let morning = replies_in_hours(ctx, from, to, current.start, 12).await?;
            let afternoon = replies_in_hours(ctx, from, to, 12, current.end).await?;
            match narrower_window(current, morning, afternoon) {
                Some(next) => params::set(ctx, params::SEND_HOURS, &next, &reason, &key).await,
                None => Ok(None),
            }
        }
        "prospect_conversion" | "prospects_per_day" => {
            let rates = replies_by(ctx, "p.category", from, to).await?;
            match category_priorities(&rates) {
                Some(p) => params::set(ctx, params::CATEGORY_PRIORITIES, &p, &reason, &key).await,
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}
