//! Every provider's rate limits against the most calls a day the configuration can ask
//! of it.

use super::record::{Finding, ProviderInfo, Status, finding};
use cep_shared::Secrets;
use cep_shared::config::{Per, PitchWriter, ProspectSource, Provider, ResearchSearch, Settings};

pub(super) const fn per_day(per: Per) -> f64 {
    match per {
        Per::Minute => 1440.0,
        Per::Hour => 24.0,
        Per::Day => 1.0,
        Per::Month => 1.0 / 30.0,
    }
}

pub(super) const fn window_seconds(per: Per) -> u64 {
    match per {
        Per::Minute => 60,
        Per::Hour => 3600,
        Per::Day => 86_400,
        Per::Month => 30 * 86_400,
    }
}

/// Whether the configuration calls `p`, and the most calls a day it can ask for.
fn demand(s: &Settings, secrets: &Secrets, p: Provider) -> (bool, Option<u64>) {
    let prospects = u64::from(s.layers.prospecting.campaigns_per_day)
        * u64::from(s.layers.prospecting.max_prospects);
    let campaigns = u64::from(s.layers.prospecting.campaigns_per_day);
    let research = &s.engines.research;
    let researched = research.researches_before_pitch();
    let llm = |w: PitchWriter| {
        let writes = s.providers.llm.writer == w;
        let summarizes = researched && writes;
        let calls = u64::from(writes) * prospects + u64::from(summarizes) * prospects;
        (writes, Some(calls))
    };
    match p {
        Provider::Overpass => (
            s.providers.prospects.source == ProspectSource::Overpass,
            Some(campaigns),
        ),
        Provider::Places => (
            s.providers.prospects.source == ProspectSource::Places,
            Some(campaigns * u64::from(s.providers.prospects.places_max_pages)),
        ),
        Provider::WebSearch => (
            research.provider != ResearchSearch::Offline,
            Some(if researched { prospects } else { 0 }),
        ),
        Provider::Firecrawl => (
            research.firecrawl,
            Some(if researched { prospects } else { 0 }),
        ),
        Provider::Ollama => llm(PitchWriter::Ollama),
        Provider::Anthropic => llm(PitchWriter::Anthropic),
        Provider::Openai => llm(PitchWriter::Openai),
        Provider::Twilio => (
            !s.providers.twilio.account_sid.is_empty(),
            Some(u64::from(s.layers.outreach.daily_caps.sms)),
        ),
        Provider::Calendly => (secrets.calendly_api_token.is_some(), None),
        Provider::Stripe => (s.providers.stripe.create_invoices, None),
        Provider::Gbp | Provider::GbpEdits => (!s.providers.gbp.dry_run, None),
    }
}

/// Every provider's budget: a service the configuration calls with no limit, a
/// limit a shorter window's limit makes unreachable, and a day's worst-case demand
/// above what the budget allows (the rest is deferred, not failed).
pub(super) fn rate_limits(s: &Settings, secrets: &Secrets) -> (Vec<ProviderInfo>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut findings = Vec::new();
    for p in Provider::ALL {
        let key = format!("providers.rate_limits.{}", p.as_str());
        let limits = s.providers.rate_limits.get(p);
        let (in_use, wanted) = demand(s, secrets, p);
        let capacity = limits
            .iter()
            .map(|l| l.limit as f64 * per_day(l.per))
            .reduce(f64::min);
        out.push(ProviderInfo {
            provider: p.as_str().into(),
            in_use,
            limits: limits
                .iter()
                .map(|l| format!("{}/{}", l.limit, l.per.as_str()))
                .collect(),
            capacity_per_day: capacity,
            demand_per_day: wanted.filter(|_| in_use),
        });
        for short in limits {
            for long in limits {
                if window_seconds(short.per) < window_seconds(long.per) && short.limit > long.limit
                {
                    findings.push(finding(
                        "rate_limits",
                        &key,
                        Status::Warn,
                        format!(
                            "{}/{} can never be reached under {}/{}",
                            short.limit,
                            short.per.as_str(),
                            long.limit,
                            long.per.as_str()
                        ),
                    ));
                }
            }
        }
        if !in_use {
            continue;
        }
        let local = p == Provider::Ollama;
        match (capacity, wanted) {
            (None, _) if !local => findings.push(finding(
                "rate_limits",
                &key,
                Status::Warn,
                format!(
                    "{} is called with no limit: nothing keeps the fleet inside its quota",
                    p.as_str()
                ),
            )),
            (Some(cap), Some(want)) if want as f64 > cap => findings.push(finding(
                "rate_limits",
                &key,
                Status::Warn,
                format!(
                    "up to {want} calls a day against a budget of {cap:.0} a day: the rest wait for the next window"
                ),
            )),
            _ => findings.push(finding(
                "rate_limits",
                &key,
                Status::Pass,
                match (capacity, wanted) {
                    (Some(cap), Some(want)) => {
                        format!("up to {want} calls a day within a budget of {cap:.0}")
                    }
                    (Some(cap), None) => format!("a budget of {cap:.0} calls a day"),
                    _ => format!("{} runs locally, unlimited", p.as_str()),
                },
            )),
        }
    }
    (out, findings)
}
