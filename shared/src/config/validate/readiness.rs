//! Whether the fleet is ready for what its configuration switches on: every configured
//! service has its secret, and with the dry run off real mail would go out right.

use super::{ConfigError, Finding, Findings, Settings};
use crate::config::{PitchWriter, ProspectSource};

impl Settings {
    /// With the dry run off, what would send real mail wrong: no unsubscribe signing key,
    /// the shipped placeholder sender or postal address, a sender or link host that is
    /// an example, test or local one, or a public URL that is not `https` on a public
    /// host. A role that can send refuses to start on the first; `cep config` and
    /// `cep architecture check` list them all.
    pub fn live_findings(&self, secrets: &crate::config::Secrets) -> Vec<Finding> {
        let o = &self.layers.outreach;
        let mut f = Findings::default();
        if o.dry_run {
            return f.0;
        }
        let shipped = crate::config::OutreachRules::default();
        f.check(
            secrets.unsubscribe_key.is_some(),
            "layers.outreach.dry_run",
            "sending for real needs the environment variable CEP_UNSUBSCRIBE_KEY (unsubscribe links are signed with it)",
        );
        f.check(
            o.from_name.trim() != shipped.from_name && !o.from_name.trim().is_empty(),
            "layers.outreach.from_name",
            "is the shipped placeholder; set the name your mail is sent as",
        );
        let sender_host = o
            .from_address
            .rsplit_once('@')
            .map(|(_, h)| h)
            .unwrap_or("");
        f.check(
            o.from_address.trim() != shipped.from_address && !placeholder_host(sender_host),
            "layers.outreach.from_address",
            "is a placeholder (the shipped one, or an example, test or local domain); set your sending address",
        );
        f.check(
            o.postal_address.trim() != shipped.postal_address
                && !o.postal_address.trim().is_empty(),
            "layers.outreach.postal_address",
            "is the shipped placeholder; every email must carry your real postal address",
        );
        let public = url::Url::parse(&self.server.public_url).ok();
        let https = public.as_ref().is_some_and(|u| u.scheme() == "https");
        let host_ok = public
            .as_ref()
            .and_then(|u| u.host())
            .is_some_and(|h| match h {
                url::Host::Domain(d) => !placeholder_host(d),
                url::Host::Ipv4(ip) => public_ip(std::net::IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => public_ip(std::net::IpAddr::V6(ip)),
            });
        f.check(
            https && host_ok,
            "server.public_url",
            "the links in real mail point here: it must be https on a public host, not a local, private or example one",
        );
        f.0
    }

    /// See [`Settings::live_findings`]: the first refuses to start.
    pub fn check_live(&self, secrets: &crate::config::Secrets) -> Result<(), ConfigError> {
        Findings(self.live_findings(secrets)).first_failure()
    }

    /// The secrets the configured providers need, checked at start so a missing key
    /// refuses to start instead of failing every job.
    pub fn check_secrets(&self, secrets: &crate::config::Secrets) -> Result<(), ConfigError> {
        Findings(self.secret_findings(secrets)).first_failure()
    }

    /// Each configured service whose secret is missing from the environment.
    pub fn secret_findings(&self, secrets: &crate::config::Secrets) -> Vec<Finding> {
        let p = &self.providers;
        let mut f = Findings::default();
        let mut need = |on: bool, secret: &Option<String>, key: &str, var: &str| {
            f.check(
                !on || secret.is_some(),
                key,
                format!("needs the environment variable {var}"),
            );
        };
        need(
            p.prospects.source == ProspectSource::Places,
            &secrets.places_api_key,
            "providers.prospects.source",
            "GOOGLE_PLACES_API_KEY",
        );
        need(
            p.llm.writer == PitchWriter::Anthropic,
            &secrets.anthropic_api_key,
            "providers.llm.writer",
            "ANTHROPIC_API_KEY",
        );
        need(
            p.llm.writer == PitchWriter::Openai && p.llm.openai_url.contains("api.openai.com"),
            &secrets.openai_api_key,
            "providers.llm.writer",
            "OPENAI_API_KEY",
        );
        need(
            p.stripe.create_invoices,
            &secrets.stripe_api_key,
            "providers.stripe.create_invoices",
            "STRIPE_API_KEY",
        );
        need(
            p.smtp.username.is_some(),
            &secrets.smtp_password,
            "providers.smtp.username",
            "SMTP_PASSWORD",
        );
        need(
            !p.twilio.account_sid.is_empty(),
            &secrets.twilio_auth_token,
            "providers.twilio.account_sid",
            "TWILIO_AUTH_TOKEN",
        );
        need(
            !p.gbp.dry_run,
            &secrets.gbp_access_token,
            "providers.gbp.dry_run",
            "GBP_ACCESS_TOKEN",
        );
        need(
            self.engines.research.firecrawl,
            &secrets.firecrawl_api_key,
            "engines.research.firecrawl",
            "FIRECRAWL_API_KEY",
        );
        f.0
    }
}

/// A host no real mail should name: `localhost`, or a name under the reserved example,
/// test, invalid or local domains (RFC 2606, RFC 6761, RFC 6762).
fn placeholder_host(host: &str) -> bool {
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let under = |domain: &str| h == domain || h.ends_with(&format!(".{domain}"));
    h.is_empty()
        || ["localhost", "example", "test", "invalid", "local"]
            .iter()
            .any(|d| under(d))
        || ["example.com", "example.net", "example.org"]
            .iter()
            .any(|d| under(d))
}

/// An address people on the internet can reach: not loopback, private, link-local or
/// unspecified.
fn public_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified())
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Settings {
        let mut s = Settings::default();
        s.layers.outreach.dry_run = false;
        s.providers.smtp.host = "smtp.oakgrowth.co".into();
        s
    }

    fn ready(s: &mut Settings) {
        let o = &mut s.layers.outreach;
        o.from_name = "Oak Growth".into();
        o.from_address = "hello@oakgrowth.co".into();
        o.postal_address = "12 Elm Street, Austin, TX 78701, USA".into();
        s.server.public_url = "https://cep.oakgrowth.co".into();
    }

    #[test]
    fn sending_for_real_refuses_placeholders_a_missing_key_and_a_local_public_url() {
        let keyed = crate::config::Secrets {
            unsubscribe_key: Some("k".into()),
            ..Default::default()
        };
        // The dry run asks nothing.
        assert_eq!(Settings::default().live_findings(&Default::default()), []);
        // The shipped settings with the dry run off: every item named.
        let keys: Vec<String> = live()
            .live_findings(&Default::default())
            .into_iter()
            .map(|f| f.key)
            .collect();
        assert_eq!(
            keys,
            [
                "layers.outreach.dry_run",
                "layers.outreach.from_name",
                "layers.outreach.from_address",
                "layers.outreach.postal_address",
                "server.public_url"
            ]
        );
        let mut s = live();
        ready(&mut s);
        assert_eq!(s.live_findings(&keyed), []);
        assert!(s.check_live(&keyed).is_ok());
        // Example, test and local hosts, private addresses and plain http are refused.
        for url in [
            "http://cep.oakgrowth.co",
            "https://127.0.0.1:8080",
            "https://10.1.2.3",
            "https://192.168.0.10",
            "https://[::1]",
            "https://[fd00::1]",
            "https://localhost",
            "https://cep.example.com",
            "https://agency.test",
            "https://box.local",
            "not a url",
        ] {
            let mut t = s.clone();
            t.server.public_url = url.into();
            let keys: Vec<String> = t.live_findings(&keyed).into_iter().map(|f| f.key).collect();
            assert_eq!(keys, ["server.public_url"], "{url}");
        }
        for address in [
            "me@example.org",
            "me@mail.test",
            "me@agency.example",
            "me@localhost",
        ] {
            let mut t = s.clone();
            t.layers.outreach.from_address = address.into();
            assert_eq!(t.live_findings(&keyed).len(), 1, "{address}");
        }
    }
}
