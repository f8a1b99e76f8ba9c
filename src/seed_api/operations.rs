//! The operations container's seed inputs: layer 5's client and business (a sale closed
//! outside the pipeline), layer 6's client without a period (this week's run).

use super::dry_run_only;
use anyhow::Context as _;
use cep_shared::{JobKind, Layer};
use cep_workers::Ctx;
use cep_workers::layers::onboarding::{self, Sale};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnboardingInput {
    client_name: String,
    business_name: String,
    email: String,
    #[serde(default)]
    phone: Option<String>,
    business_type: String,
    /// The tier sold; the warm tier (`layers.onboarding.warm_tier`) when not given.
    #[serde(default)]
    billing_tier: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// The longest name, address or category taken.
const MAX_FIELD: usize = 200;

/// Layer 5 on a sale closed outside the pipeline: the client, its documents and
/// checklist, and its first profile pass queued; once per address.
pub(super) async fn onboarding(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
    let o: OnboardingInput = serde_json::from_value(input.clone()).context(
        "layer 5's seed input is {\"client_name\": …, \"business_name\": …, \"email\": …, \"phone\": …, \"business_type\": …, \"billing_tier\": … (optional)}",
    )?;
    dry_run_only(o.dry_run)?;
    let fields = [
        ("client_name", &o.client_name),
        ("business_name", &o.business_name),
        ("email", &o.email),
        ("business_type", &o.business_type),
    ];
    for (name, value) in fields {
        anyhow::ensure!(!value.trim().is_empty(), "`{name}` is empty");
        anyhow::ensure!(
            value.chars().count() <= MAX_FIELD,
            "`{name}` is longer than {MAX_FIELD} characters"
        );
    }
    let email = o.email.trim().to_lowercase();
    anyhow::ensure!(
        email
            .split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.')),
        "`email` {:?} is not an email address",
        o.email
    );
    let tier_given = o.billing_tier.is_some();
    let tier = o
        .billing_tier
        .unwrap_or_else(|| ctx.settings.layers.onboarding.warm_tier.clone());
    let sale = Sale {
        client_name: o.client_name.trim().to_owned(),
        business_name: o.business_name.trim().to_owned(),
        email,
        phone: o.phone.filter(|p| !p.trim().is_empty()),
        business_type: o.business_type.trim().to_lowercase(),
        tier,
    };
    let started = onboarding::open_sale(ctx, sale).await?;
    let client_id = started
        .client_id
        .clone()
        .context("a sale always opens a client")?;
    let done = onboarding::store::tasks_done(ctx, &client_id).await?;
    let mut out = serde_json::to_value(&started)?;
    out["status"] = json!(started.state);
    out["tasks_completed"] = json!(done);
    if !tier_given {
        out["billing_tier_from"] = json!("layers.onboarding.warm_tier");
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizationInput {
    client_id: String,
    #[serde(default)]
    business_name: Option<String>,
    #[serde(default)]
    business_type: Option<String>,
    /// Not used: a score is measured from the linked profile or recorded at sale.
    #[serde(default)]
    current_gbp_score: Option<f64>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// Layer 6 on a client: this ISO week's run (what the weekly review would start). A
/// name or category that is not the client's is refused; a score handed in is answered
/// back as not used.
pub(super) async fn optimization(ctx: &Ctx, input: &Value) -> anyhow::Result<Value> {
    let o: OptimizationInput = serde_json::from_value(input.clone()).context(
        "layer 6's seed input is {\"client_id\": …, \"business_name\": …, \"business_type\": …, \"current_gbp_score\": …} (or the layer's own {\"client_id\": …, \"period\": \"2026-W02\"})",
    )?;
    dry_run_only(o.dry_run)?;
    let client = cep_workers::layers::optimization::store::client(ctx, &o.client_id).await?;
    for (name, given, recorded) in [
        ("business_name", &o.business_name, &client.business_name),
        ("business_type", &o.business_type, &client.business_type),
    ] {
        if let Some(given) = given {
            anyhow::ensure!(
                given.trim().eq_ignore_ascii_case(recorded),
                "`{name}` {given:?} is not client `{}`'s, which is {recorded:?}",
                o.client_id
            );
        }
    }
    let period = onboarding::iso_week(ctx.now());
    let job = json!({ "client_id": o.client_id, "period": period });
    let run =
        cep_workers::handle(ctx, JobKind::Layer(Layer::Optimization), &job.to_string()).await?;
    let completed = run["optimizations_completed"]
        .as_array()
        .map_or(0, Vec::len);
    let mut not_used = Vec::new();
    if let Some(score) = o.current_gbp_score {
        not_used.push(json!({
            "current_gbp_score": score,
            "why": "the score is read from the linked profile, or the one recorded at sale: see score_before",
        }));
    }
    Ok(json!({
        "optimizations_completed": completed,
        // Measured on a linked profile; unknown without one.
        "score_improvement": run["score_gain"],
        "posts_created": run["posts_scheduled"],
        "not_used": not_used,
        "run": run,
    }))
}
