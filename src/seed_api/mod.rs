//! The seed API document's parameters for `cep layer`, where they differ from the layer's
//! own job: layer 2's `prospects`, 3's `pitches`, 4's `webhook_payload`, 5's client and
//! business, 6's client without a period, 7's and 8's `clients`, 9's
//! `performance_data`. Each is mapped onto the layer's own jobs or rules, and the result
//! carries the seed's fields beside ours. What the store records is never overridden by
//! a number handed in: such a number is refused when it contradicts the record, or
//! answered back as not used. Other inputs go to the layer as they are.

mod finance;
mod operations;
mod sales;

use cep_shared::{JobKind, Layer};
use cep_workers::Ctx;
use serde_json::Value;

/// Runs `input` when it is the seed's shape for `kind`'s layer; `None` otherwise.
pub async fn run(ctx: &Ctx, kind: JobKind, input: &Value) -> Option<anyhow::Result<Value>> {
    match kind {
        JobKind::Layer(Layer::PitchGeneration) if input.get("prospects").is_some() => {
            Some(sales::pitches(ctx, input).await)
        }
        JobKind::Layer(Layer::Outreach) if input.get("pitches").is_some() => {
            Some(sales::outreach(ctx, input).await)
        }
        JobKind::Layer(Layer::Booking) if input.get("webhook_payload").is_some() => {
            Some(sales::booking(ctx, input).await)
        }
        JobKind::Layer(Layer::Onboarding) if input.get("business_name").is_some() => {
            Some(operations::onboarding(ctx, input).await)
        }
        JobKind::Layer(Layer::Optimization) if is_seed_optimization(input) => {
            Some(operations::optimization(ctx, input).await)
        }
        JobKind::Layer(Layer::Reporting) if input.get("clients").is_some() => {
            Some(finance::reporting(ctx, input).await)
        }
        JobKind::Layer(Layer::Finance) if input.get("clients").is_some() => {
            Some(finance::finance(ctx, input).await)
        }
        JobKind::Layer(Layer::FeedbackLoop) if input.get("performance_data").is_some() => {
            Some(finance::feedback(ctx, input))
        }
        _ => None,
    }
}

/// Layer 6's own job is `{client_id, period}`; the seed's names the client without a
/// period.
fn is_seed_optimization(input: &Value) -> bool {
    input.get("period").is_none() && input.get("client_id").is_some()
}

/// The seed's `dry_run`: this fleet's dry runs are its configuration's, so only `true`
/// (or nothing) is taken.
fn dry_run_only(dry_run: Option<bool>) -> anyhow::Result<()> {
    anyhow::ensure!(
        dry_run != Some(false),
        "`dry_run: false` is not taken from a layer's input: sending follows the configuration (`layers.outreach.dry_run`, `providers.gbp.dry_run`)"
    );
    Ok(())
}
