//! Validation run once at load; every finding names its key. One list of findings
//! serves both the start (which refuses the first failure) and `cep architecture check`
//! (which reports them all).

use super::{ConfigError, Provider, Settings};
use crate::layer::Container;
use crate::vocabulary::Channel;
use std::str::FromStr;

mod readiness;

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// How serious a finding is: a failure refuses to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warn,
    Fail,
}

/// One thing wrong with the configuration: the key it concerns and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub key: String,
    pub severity: Severity,
    pub reason: String,
}

impl From<Finding> for ConfigError {
    fn from(f: Finding) -> Self {
        ConfigError::invalid(&f.key, f.reason)
    }
}

/// The findings of one pass over the configuration, in the order of its keys.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn check(&mut self, ok: bool, key: &str, reason: impl Into<String>) {
        if !ok {
            self.0.push(Finding {
                key: key.to_owned(),
                severity: Severity::Fail,
                reason: reason.into(),
            });
        }
    }

    fn ratio(&mut self, value: f64, key: &str) {
        self.check(
            value.is_finite() && (0.0..=1.0).contains(&value),
            key,
            format!("must be between 0 and 1, got {value}"),
        );
    }

    fn cron(&mut self, expr: &str, key: &str) {
        if let Err(e) = parse_cron(expr, key) {
            let ConfigError::Invalid { key, reason } = e else {
                return;
            };
            self.check(false, &key, reason);
        }
    }

    /// The first failure, as the error that refuses to start.
    fn first_failure(self) -> Result<(), ConfigError> {
        match self.0.into_iter().find(|f| f.severity == Severity::Fail) {
            Some(f) => Err(f.into()),
            None => Ok(()),
        }
    }
}

/// Parses a seven-field cron expression, naming `key` when it does not parse.
pub fn parse_cron(expr: &str, key: &str) -> Result<cron::Schedule, ConfigError> {
    cron::Schedule::from_str(expr)
        .map_err(|e| ConfigError::invalid(key, format!("`{expr}` is not a cron expression: {e}")))
}

impl Settings {
    /// Every way the configuration is wrong, each naming its key; empty when it is
    /// valid.
    pub fn findings(&self) -> Vec<Finding> {
        let mut f = Findings::default();
        self.collect(&mut f);
        f.0
    }

    /// Refuses the configuration at its first failure, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut f = Findings::default();
        self.collect(&mut f);
        f.first_failure()
    }

    fn collect(&self, f: &mut Findings) {
        for (key, reason) in self.reports.problems() {
            f.check(false, key, reason);
        }
        let mut sum = 0.0;
        for c in Container::ALL {
            let s = self.containers.get(c);
            let key = format!("containers.{}", c.as_str());
            f.ratio(s.weight, &format!("{key}.weight"));
            f.cron(&s.schedule, &format!("{key}.schedule"));
            sum += s.weight;
        }
        f.check(
            (sum - 1.0).abs() < 1e-9,
            "containers",
            format!("container weights must sum to 1, they sum to {sum:.4}"),
        );

        let mut previous = ("", 0.0);
        for (status, value) in self.cep.phi_thresholds.ascending() {
            let name = status.as_str();
            let key = format!("cep.phi_thresholds.{name}");
            f.ratio(value, &key);
            f.check(
                value > previous.1,
                &key,
                format!(
                    "must be above `{}` ({}), thresholds ascend",
                    previous.0, previous.1
                ),
            );
            previous = (name, value);
        }
        let rf = &self.cep.red_flags;
        for (name, v) in [
            ("phi_below", rf.phi_below),
            ("sales_error_rate_above", rf.sales_error_rate_above),
            (
                "operations_error_rate_above",
                rf.operations_error_rate_above,
            ),
            ("finance_error_rate_above", rf.finance_error_rate_above),
            ("health_spread_above", rf.health_spread_above),
        ] {
            f.ratio(v, &format!("cep.red_flags.{name}"));
        }

        f.cron(&self.schedules.aggregation, "schedules.aggregation");
        f.check(
            self.schedules.tick_seconds > 0,
            "schedules.tick_seconds",
            "must be positive",
        );

        let q = &self.queue;
        f.check(
            !q.key_prefix.is_empty(),
            "queue.key_prefix",
            "must not be empty",
        );
        f.check(
            q.heartbeat_interval_seconds > 0,
            "queue.heartbeat_interval_seconds",
            "must be positive",
        );
        f.check(
            q.missed_heartbeats >= 2,
            "queue.missed_heartbeats",
            "must be at least 2",
        );
        f.check(
            q.max_attempts >= 1,
            "queue.max_attempts",
            "must be at least 1",
        );
        f.check(
            (1..=crate::queue::MAX_FETCH as u32).contains(&q.fetch_batch),
            "queue.fetch_batch",
            "must be between 1 and 1000 (one fetch moves its batch in one Redis script)",
        );
        f.check(
            q.backoff_base_seconds <= q.backoff_max_seconds,
            "queue.backoff_base_seconds",
            "must not exceed queue.backoff_max_seconds",
        );
        f.check(
            (1024..=64 * 1024 * 1024).contains(&q.max_payload_bytes),
            "queue.max_payload_bytes",
            "must be between 1024 and 67108864 (64 MiB)",
        );
        f.check(
            q.idempotency_ttl_days >= 1,
            "queue.idempotency_ttl_days",
            "must be at least 1",
        );

        // A signature older than this is a replay; a tolerance of 0 refuses every
        // delivery, one past an hour lets replays through.
        for (key, tolerance) in [
            (
                "layers.booking.signature_tolerance_seconds",
                self.layers.booking.signature_tolerance_seconds,
            ),
            (
                "providers.stripe.webhook_tolerance_seconds",
                self.providers.stripe.webhook_tolerance_seconds,
            ),
        ] {
            f.check(
                (1..=3600).contains(&tolerance),
                key,
                format!("must be between 1 and 3600 seconds, got {tolerance}"),
            );
        }

        let t = &self.targets;
        for (name, value) in t.shares() {
            f.check(
                value > 0.0 && value <= 1.0,
                &format!("targets.{name}"),
                "must be a share above 0 and at most 1",
            );
        }
        for (name, value) in [
            ("prospects_per_day", t.prospects_per_day),
            ("onboarding_days", t.onboarding_days),
            ("score_gain", t.score_gain),
            ("visibility_gain", t.visibility_gain),
        ] {
            f.check(
                value.is_finite() && value > 0.0,
                &format!("targets.{name}"),
                "must be above 0",
            );
        }
        f.check(
            t.gbp_score > 0.0 && t.gbp_score <= 100.0,
            "targets.gbp_score",
            "must be above 0 and at most 100",
        );
        f.check(
            t.acquisition_cost_cents >= 1,
            "targets.acquisition_cost_cents",
            "must be at least 1 cent",
        );
        for c in crate::layer::Container::ALL {
            f.check(
                self.phi.min_sample.get(c) >= 1,
                &format!("phi.min_sample.{c}"),
                "must be at least 1",
            );
        }
        f.check(
            self.phi.max_widen <= 52,
            "phi.max_widen",
            "must be at most 52",
        );
        let world = &self.simulate.world;
        for (name, share) in world.shares() {
            f.check(
                share.is_finite() && (0.0..=1.0).contains(&share),
                &format!("simulate.world.{name}"),
                "must be a share between 0 and 1",
            );
        }
        for (variant, lift) in &world.variant_lift {
            f.check(
                lift.is_finite() && *lift >= 0.0 && *lift <= 10.0,
                &format!("simulate.world.variant_lift.{variant}"),
                "must be between 0 and 10",
            );
        }
        let sv = &self.server;
        f.check(
            (1..=100_000).contains(&sv.max_connections),
            "server.max_connections",
            "must be between 1 and 100000",
        );
        f.check(
            (1..=300).contains(&sv.header_timeout_seconds),
            "server.header_timeout_seconds",
            "must be between 1 and 300",
        );
        f.check(
            (1..=3600).contains(&sv.request_timeout_seconds),
            "server.request_timeout_seconds",
            "must be between 1 and 3600",
        );
        f.check(
            (1..=1_000_000).contains(&sv.rate_limit.per_minute),
            "server.rate_limit.per_minute",
            "must be between 1 and 1000000",
        );
        f.check(
            (1..=1_000_000).contains(&sv.rate_limit.burst),
            "server.rate_limit.burst",
            "must be between 1 and 1000000",
        );
        f.check(
            (1..=720).contains(&sv.console.session_hours),
            "server.console.session_hours",
            "must be between 1 and 720 (30 days)",
        );
        f.check(
            (1..=1000).contains(&sv.console.sign_in_failures),
            "server.console.sign_in_failures",
            "must be between 1 and 1000",
        );
        f.check(
            (1..=1440).contains(&sv.console.sign_in_window_minutes),
            "server.console.sign_in_window_minutes",
            "must be between 1 and 1440",
        );
        f.check(
            self.server.sample_seconds > 0,
            "server.sample_seconds",
            "must be positive",
        );
        for (key, addr) in [
            ("server.bind", Some(&sv.bind)),
            ("server.metrics_bind", sv.metrics_bind.as_ref()),
        ] {
            if let Some(addr) = addr {
                f.check(
                    addr.parse::<std::net::SocketAddr>().is_ok(),
                    key,
                    "must be an address and port, such as 0.0.0.0:8080",
                );
            }
        }
        f.check(
            sv.metrics_bind.as_ref() != Some(&sv.bind),
            "server.metrics_bind",
            "must differ from server.bind (leave it null to serve the metrics there)",
        );
        if let Some(url) = &self.server.pushgateway_url {
            f.check(
                url.starts_with("http://") || url.starts_with("https://"),
                "server.pushgateway_url",
                "must be an http(s) URL",
            );
        }
        let w = &self.worker;
        f.check(
            w.concurrency >= 1,
            "worker.concurrency",
            "must be at least 1",
        );
        let window = q.orphan_window().as_secs();
        f.check(
            w.shutdown_deadline_seconds < window,
            "worker.shutdown_deadline_seconds",
            format!(
                "must be shorter than the queue's orphan window (heartbeat_interval_seconds × missed_heartbeats = {window} s), or a draining worker's jobs would run twice"
            ),
        );

        self.validate_layers(f);
        self.validate_backends(f);
    }

    fn validate_backends(&self, f: &mut Findings) {
        if let Some(url) = &self.backends.redis_url {
            f.check(
                url.starts_with("redis://") || url.starts_with("rediss://"),
                "backends.redis_url",
                "must start with redis:// or rediss://",
            );
        }
        if let Some(url) = &self.backends.database_url {
            f.check(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "backends.database_url",
                "must start with postgres:// (the embedded default needs no URL)",
            );
        }
        f.check(
            self.backends.redis_url.is_some() == self.backends.database_url.is_some(),
            "backends",
            "set both REDIS_URL and DATABASE_URL for the fleet, or neither for the embedded default",
        );
    }

    fn validate_layers(&self, f: &mut Findings) {
        let l = &self.layers;
        let p = &l.prospecting;
        f.check(
            p.max_prospects >= 1,
            "layers.prospecting.max_prospects",
            "must be at least 1",
        );
        f.check(
            !p.categories.is_empty(),
            "layers.prospecting.categories",
            "must not be empty",
        );
        f.check(
            !p.locations.is_empty(),
            "layers.prospecting.locations",
            "must not be empty",
        );
        f.check(
            p.campaigns_per_day >= 1,
            "layers.prospecting.campaigns_per_day",
            "must be at least 1",
        );
        f.check(
            p.hot_below < p.warm_below && p.warm_below < p.cold_below && p.cold_below <= 100,
            "layers.prospecting.hot_below",
            "lead class bounds must ascend: hot_below < warm_below < cold_below ≤ 100",
        );
        f.check(
            p.score.total() == 100,
            "layers.prospecting.score",
            format!(
                "points must add up to 100, they add up to {}",
                p.score.total()
            ),
        );

        let pitch = &l.pitch_generation;
        f.check(
            ["professional", "casual", "direct", "consultative"]
                .contains(&pitch.default_tone.as_str()),
            "layers.pitch_generation.default_tone",
            "must be one of professional, casual, direct, consultative",
        );
        f.check(
            !pitch.variants.is_empty(),
            "layers.pitch_generation.variants",
            "must not be empty",
        );
        f.ratio(
            pitch.length_bonus_share,
            "layers.pitch_generation.length_bonus_share",
        );

        let o = &l.outreach;
        f.check(
            !o.sequence.is_empty(),
            "layers.outreach.sequence",
            "must have at least one step",
        );
        for (i, step) in o.sequence.iter().enumerate() {
            f.check(
                step.channel.parse::<Channel>().is_ok(),
                &format!("layers.outreach.sequence[{i}].channel"),
                format!(
                    "`{}` is not one of {}",
                    step.channel,
                    Channel::ALL
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        for (i, day) in o.send_days.iter().enumerate() {
            f.check(
                WEEKDAYS.contains(&day.as_str()),
                &format!("layers.outreach.send_days[{i}]"),
                format!("`{day}` is not one of {}", WEEKDAYS.join(", ")),
            );
        }
        f.check(
            o.send_start_hour < o.send_end_hour && o.send_end_hour <= 24,
            "layers.outreach.send_start_hour",
            "the send window must be start < end ≤ 24",
        );
        f.check(
            !o.postal_address.trim().is_empty(),
            "layers.outreach.postal_address",
            "every email needs a postal address",
        );

        f.check(
            o.dry_run || !self.providers.smtp.host.trim().is_empty(),
            "layers.outreach.dry_run",
            "sending for real needs an SMTP server: set providers.smtp.host, or keep dry_run: true",
        );
        f.check(
            l.booking.scheduling_url.starts_with("https://")
                || l.booking.scheduling_url.starts_with("http://"),
            "layers.booking.scheduling_url",
            "must be an http(s) URL",
        );
        for (key, tier) in [
            ("layers.onboarding.hot_tier", &l.onboarding.hot_tier),
            ("layers.onboarding.warm_tier", &l.onboarding.warm_tier),
        ] {
            f.check(
                l.finance.tier(tier).is_some(),
                key,
                format!("`{tier}` is not one of starter, professional, enterprise"),
            );
        }
        f.check(
            !l.onboarding.checklist.is_empty(),
            "layers.onboarding.checklist",
            "must have at least one task",
        );
        let opt = &l.optimization;
        f.check(
            opt.default_run <= opt.kinds.len(),
            "layers.optimization.default_run",
            "cannot exceed the number of kinds",
        );
        let fin = &l.finance;
        for (name, tier) in [
            ("starter", &fin.starter),
            ("professional", &fin.professional),
            ("enterprise", &fin.enterprise),
        ] {
            f.check(
                tier.monthly_cents > 0 && tier.setup_cents >= 0,
                &format!("layers.finance.{name}"),
                "prices must be positive cents",
            );
        }
        f.check(
            (0..=10_000).contains(&fin.tax_basis_points),
            "layers.finance.tax_basis_points",
            "must be between 0 and 10000",
        );
        let ac = &fin.acquisition_costs;
        for (tool, cents) in &ac.monthly {
            f.check(
                *cents >= 0,
                &format!("layers.finance.acquisition_costs.monthly.{tool}"),
                "must be cents, not negative",
            );
        }
        let pc = &ac.per_call;
        for (name, cents) in [
            ("places", pc.places),
            ("firecrawl", pc.firecrawl),
            ("anthropic", pc.anthropic),
            ("openai", pc.openai),
            ("twilio", pc.twilio),
        ] {
            f.check(
                cents >= 0,
                &format!("layers.finance.acquisition_costs.per_call.{name}"),
                "must be cents, not negative",
            );
        }
        self.validate_providers(f);
        let w = &l.feedback_loop.impact_weights;
        let total: f64 = crate::layer::Layer::ALL.iter().map(|l| w.get(*l)).sum();
        f.check(
            (total - 1.0).abs() < 1e-9,
            "layers.feedback_loop.impact_weights",
            format!("must sum to 1, they sum to {total:.4}"),
        );
    }
}

impl Settings {
    fn validate_providers(&self, f: &mut Findings) {
        let p = &self.providers;
        f.check(
            p.http_timeout_seconds > 0,
            "providers.http_timeout_seconds",
            "must be at least 1",
        );
        let r = &self.engines.research;
        f.check(
            r.provider != crate::config::ResearchSearch::Searxng || !r.searxng_url.is_empty(),
            "engines.research.searxng_url",
            "must be set when engines.research.provider is searxng",
        );
        f.check(
            (1..=100).contains(&r.max_results),
            "engines.research.max_results",
            "must be between 1 and 100",
        );
        f.check(
            self.engines.testing.timeout_seconds > 0,
            "engines.testing.timeout_seconds",
            "must be at least 1",
        );
        f.check(
            p.twilio.account_sid.is_empty() || !p.twilio.from.is_empty(),
            "providers.twilio.from",
            "must be set (a phone number or Messaging Service SID) when providers.twilio.account_sid is",
        );
        f.check(
            (1..=10).contains(&p.prospects.places_max_pages),
            "providers.prospects.places_max_pages",
            "must be between 1 and 10",
        );
        for (key, url) in [
            (
                "providers.prospects.overpass_url",
                &p.prospects.overpass_url,
            ),
            ("providers.prospects.places_url", &p.prospects.places_url),
            ("providers.llm.ollama_url", &p.llm.ollama_url),
            ("providers.llm.anthropic_url", &p.llm.anthropic_url),
            ("providers.llm.openai_url", &p.llm.openai_url),
            ("providers.stripe.api_url", &p.stripe.api_url),
            ("providers.calendly.api_url", &p.calendly.api_url),
            ("providers.twilio.api_url", &p.twilio.api_url),
            (
                "providers.gbp.business_information_url",
                &p.gbp.business_information_url,
            ),
            ("providers.gbp.v4_url", &p.gbp.v4_url),
            ("providers.gbp.performance_url", &p.gbp.performance_url),
            (
                "engines.research.duckduckgo_url",
                &self.engines.research.duckduckgo_url,
            ),
            (
                "engines.research.firecrawl_url",
                &self.engines.research.firecrawl_url,
            ),
        ] {
            f.check(
                url.starts_with("https://") || url.starts_with("http://"),
                key,
                format!("`{url}` is not an http(s) URL"),
            );
        }
        f.check(
            (0.0..=2.0).contains(&p.llm.temperature),
            "providers.llm.temperature",
            "must be between 0 and 2",
        );
        f.check(
            p.llm.timeout_seconds > 0 && p.llm.max_tokens > 0,
            "providers.llm",
            "timeout_seconds and max_tokens must be at least 1",
        );
        f.check(
            p.stripe.currency.len() == 3
                && p.stripe.currency.chars().all(|c| c.is_ascii_lowercase()),
            "providers.stripe.currency",
            "must be a lowercase ISO 4217 code such as usd",
        );
        f.check(
            p.smtp.pool_size > 0 && p.smtp.timeout_seconds > 0,
            "providers.smtp",
            "pool_size and timeout_seconds must be at least 1",
        );
        for provider in Provider::ALL {
            let limits = p.rate_limits.get(provider);
            for (i, l) in limits.iter().enumerate() {
                let key = format!("providers.rate_limits.{}[{i}]", provider.as_str());
                f.check(
                    l.limit > 0,
                    &key,
                    "a limit must be at least 1; remove it for none",
                );
                f.check(
                    !limits[..i].iter().any(|o| o.per == l.per),
                    &key,
                    format!("a second limit per {}", l.per.as_str()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finding_is_listed_and_the_start_refuses_the_first() {
        let mut s = Settings::default();
        assert_eq!(s.findings(), []);
        s.containers.sales.weight = 0.5;
        s.queue.key_prefix.clear();
        s.layers.outreach.send_days = vec!["mon".into(), "funday".into()];
        let keys: Vec<String> = s.findings().into_iter().map(|f| f.key).collect();
        assert_eq!(
            keys,
            [
                "containers",
                "queue.key_prefix",
                "layers.outreach.send_days[1]"
            ]
        );
        let ConfigError::Invalid { key, reason } = s.validate().unwrap_err() else {
            panic!("not an invalid key");
        };
        assert_eq!(key, "containers");
        assert!(reason.contains("sum to 1"), "{reason}");
    }
}
