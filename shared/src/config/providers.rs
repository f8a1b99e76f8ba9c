//! The external services behind the offline defaults: where prospects come from, which
//! LLM writes pitches, how email leaves, and the fleet-wide rate limit of each provider.
//! Keys and tokens are never here: see [`super::Secrets`].

use serde::{Deserialize, Serialize};

/// Every external provider the fleet calls, declared once: its name is its config key,
/// its rate-limit key and its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Overpass,
    Places,
    WebSearch,
    Firecrawl,
    Ollama,
    Anthropic,
    Openai,
    Twilio,
    Calendly,
    Stripe,
    Gbp,
    /// Google's 10 edits per minute per profile: counted per location.
    GbpEdits,
}

impl Provider {
    pub const ALL: [Provider; 12] = [
        Provider::Overpass,
        Provider::Places,
        Provider::WebSearch,
        Provider::Firecrawl,
        Provider::Ollama,
        Provider::Anthropic,
        Provider::Openai,
        Provider::Twilio,
        Provider::Calendly,
        Provider::Stripe,
        Provider::Gbp,
        Provider::GbpEdits,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Overpass => "overpass",
            Provider::Places => "places",
            Provider::WebSearch => "web_search",
            Provider::Firecrawl => "firecrawl",
            Provider::Ollama => "ollama",
            Provider::Anthropic => "anthropic",
            Provider::Openai => "openai",
            Provider::Twilio => "twilio",
            Provider::Calendly => "calendly",
            Provider::Stripe => "stripe",
            Provider::Gbp => "gbp",
            Provider::GbpEdits => "gbp_edits",
        }
    }
}

/// A fixed, calendar-aligned window (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Minute,
    Hour,
    Day,
    Month,
}

impl Per {
    pub const fn as_str(self) -> &'static str {
        match self {
            Per::Minute => "minute",
            Per::Hour => "hour",
            Per::Day => "day",
            Per::Month => "month",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub per: Per,
    pub limit: u64,
}

const fn limit(per: Per, limit: u64) -> Limit {
    Limit { per, limit }
}

/// Calls allowed per window, shared by every worker replica. An empty list: unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub overpass: Vec<Limit>,
    pub places: Vec<Limit>,
    pub web_search: Vec<Limit>,
    pub firecrawl: Vec<Limit>,
    pub ollama: Vec<Limit>,
    pub anthropic: Vec<Limit>,
    pub openai: Vec<Limit>,
    pub twilio: Vec<Limit>,
    pub calendly: Vec<Limit>,
    pub stripe: Vec<Limit>,
    pub gbp: Vec<Limit>,
    pub gbp_edits: Vec<Limit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            overpass: vec![limit(Per::Minute, 10), limit(Per::Day, 10_000)],
            places: vec![limit(Per::Minute, 600)],
            web_search: vec![limit(Per::Hour, 100)],
            firecrawl: vec![limit(Per::Month, 250)],
            ollama: vec![],
            anthropic: vec![limit(Per::Day, 1000)],
            openai: vec![limit(Per::Day, 1000)],
            twilio: vec![limit(Per::Minute, 60)],
            calendly: vec![limit(Per::Minute, 500)],
            stripe: vec![limit(Per::Minute, 1000)],
            gbp: vec![limit(Per::Minute, 300)],
            gbp_edits: vec![limit(Per::Minute, 10)],
        }
    }
}

impl RateLimits {
    pub fn get(&self, p: Provider) -> &[Limit] {
        match p {
            Provider::Overpass => &self.overpass,
            Provider::Places => &self.places,
            Provider::WebSearch => &self.web_search,
            Provider::Firecrawl => &self.firecrawl,
            Provider::Ollama => &self.ollama,
            Provider::Anthropic => &self.anthropic,
            Provider::Openai => &self.openai,
            Provider::Twilio => &self.twilio,
            Provider::Calendly => &self.calendly,
            Provider::Stripe => &self.stripe,
            Provider::Gbp => &self.gbp,
            Provider::GbpEdits => &self.gbp_edits,
        }
    }
}

/// Where prospects come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProspectSource {
    /// The bundled directory: deterministic, no network.
    Offline,
    /// OpenStreetMap through Overpass (free; patchy phones and websites).
    Overpass,
    /// Google Places API (New) Text Search; needs `GOOGLE_PLACES_API_KEY`.
    Places,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProspectProviders {
    pub source: ProspectSource,
    pub overpass_url: String,
    pub places_url: String,
    /// Places pages per search (20 results each; Google stops at about 3).
    pub places_max_pages: u32,
}

impl Default for ProspectProviders {
    fn default() -> Self {
        Self {
            source: ProspectSource::Offline,
            overpass_url: "https://overpass-api.de/api/interpreter".into(),
            places_url: "https://places.googleapis.com".into(),
            places_max_pages: 3,
        }
    }
}

/// Who writes pitches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PitchWriter {
    /// Our own wording, offline.
    Template,
    Ollama,
    Anthropic,
    /// Any OpenAI-compatible chat completions server (OpenAI, vLLM, LM Studio…).
    Openai,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmProviders {
    pub writer: PitchWriter,
    pub model: String,
    pub ollama_url: String,
    pub anthropic_url: String,
    pub openai_url: String,
    pub max_tokens: u32,
    pub temperature: f64,
    /// An LLM answer slower than this falls back to the template writer.
    pub timeout_seconds: u64,
}

impl Default for LlmProviders {
    fn default() -> Self {
        Self {
            writer: PitchWriter::Template,
            model: "llama3.1".into(),
            ollama_url: "http://127.0.0.1:11434".into(),
            anthropic_url: "https://api.anthropic.com".into(),
            openai_url: "https://api.openai.com".into(),
            max_tokens: 1024,
            temperature: 0.4,
            timeout_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host or network.
    None,
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpProviders {
    /// Empty: no SMTP transport (outreach must stay in dry run).
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The password is `SMTP_PASSWORD`; no user means no authentication.
    pub username: Option<String>,
    /// Connections kept open per worker process.
    pub pool_size: u32,
    pub timeout_seconds: u64,
}

impl Default for SmtpProviders {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            pool_size: 4,
            timeout_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendlyProviders {
    /// API v2, used by `cep calendly` (with `CALENDLY_API_TOKEN`) to keep the webhook
    /// subscription active.
    pub api_url: String,
}

impl Default for CalendlyProviders {
    fn default() -> Self {
        Self {
            api_url: "https://api.calendly.com".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeProviders {
    /// Mirror each invoice to Stripe (customer, items, finalized invoice sent by
    /// Stripe); needs `STRIPE_API_KEY`. The Stripe webhook records payments either way
    /// once `STRIPE_WEBHOOK_SECRET` is set.
    pub create_invoices: bool,
    pub api_url: String,
    /// ISO currency of every amount (integer cents).
    pub currency: String,
    /// How far a `Stripe-Signature` timestamp may be from now.
    pub webhook_tolerance_seconds: u64,
}

impl Default for StripeProviders {
    fn default() -> Self {
        Self {
            create_invoices: false,
            api_url: "https://api.stripe.com".into(),
            currency: "usd".into(),
            webhook_tolerance_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioProviders {
    /// Empty: no SMS transport (follow-up texts are recorded, not sent). The auth
    /// token is `TWILIO_AUTH_TOKEN`.
    pub account_sid: String,
    /// The sending number (E.164) or a Messaging Service SID (`MG…`).
    pub from: String,
    pub api_url: String,
}

impl Default for TwilioProviders {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            from: String::new(),
            api_url: "https://api.twilio.com".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbpProviders {
    /// Record each edit the optimization layer would make instead of making it. Off
    /// needs `GBP_ACCESS_TOKEN` (an OAuth token with the business.manage scope).
    pub dry_run: bool,
    /// Business Information API v1 (locations).
    pub business_information_url: String,
    /// My Business API v4 (local posts, reviews).
    pub v4_url: String,
    /// Reviews without an owner reply get one (the optimization run's "reply to
    /// reviews"), at most this many per run.
    pub max_review_replies: u32,
    /// Business Profile Performance API v1 (daily metrics, monthly search keywords).
    pub performance_url: String,
    /// Google's daily metrics settle a few days late: days younger than this are not
    /// fetched (a day read too early would be stored short).
    pub performance_lag_days: u32,
    /// How far back a newly linked profile's daily metrics are fetched (Google keeps
    /// about 18 months).
    pub performance_history_days: u32,
}

impl Default for GbpProviders {
    fn default() -> Self {
        Self {
            dry_run: true,
            business_information_url: "https://mybusinessbusinessinformation.googleapis.com".into(),
            v4_url: "https://mybusiness.googleapis.com".into(),
            max_review_replies: 10,
            performance_url: "https://businessprofileperformance.googleapis.com".into(),
            performance_lag_days: 3,
            performance_history_days: 540,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// Any external HTTP call slower than this is a transient failure.
    pub http_timeout_seconds: u64,
    pub prospects: ProspectProviders,
    pub llm: LlmProviders,
    pub smtp: SmtpProviders,
    pub calendly: CalendlyProviders,
    pub stripe: StripeProviders,
    pub twilio: TwilioProviders,
    pub gbp: GbpProviders,
    pub rate_limits: RateLimits,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            http_timeout_seconds: 20,
            prospects: ProspectProviders::default(),
            llm: LlmProviders::default(),
            smtp: SmtpProviders::default(),
            calendly: CalendlyProviders::default(),
            stripe: StripeProviders::default(),
            twilio: TwilioProviders::default(),
            gbp: GbpProviders::default(),
            rate_limits: RateLimits::default(),
        }
    }
}
