//! The settings of the seed's four engines: research, testing (website audits),
//! architecture (the design record) and the orchestrator's keys.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    pub research: ResearchEngine,
    pub architecture: ArchitectureEngine,
    pub testing: TestingEngine,
    pub orchestrator: OrchestratorEngine,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            research: ResearchEngine::default(),
            architecture: ArchitectureEngine {
                model: "claude-3-sonnet".into(),
                validation_rules: ValidationRules::Strict,
                review: Reviewer::Anthropic,
            },
            testing: TestingEngine::default(),
            orchestrator: OrchestratorEngine {
                timeout: 3600,
                retry_count: 3,
            },
        }
    }
}

/// The web search behind the research engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResearchSearch {
    /// No web search: research uses what the prospect source and the site know.
    Offline,
    /// DuckDuckGo's HTML endpoint: best effort (it often answers "rate limited").
    Duckduckgo,
    /// A SearxNG instance's JSON API (`searxng_url`).
    Searxng,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResearchEngine {
    /// Search results kept per query.
    pub max_results: u32,
    /// A summary fact without a source URL is dropped.
    pub citation_required: bool,
    pub provider: ResearchSearch,
    pub duckduckgo_url: String,
    pub searxng_url: String,
    /// Scrape the prospect's site through Firecrawl (`FIRECRAWL_API_KEY`).
    pub firecrawl: bool,
    pub firecrawl_url: String,
    /// Research each hot or warm prospect before its pitch is written: the LLM writer
    /// is given the cited facts (the template writer does not use them).
    pub before_pitch: bool,
    /// Cache lifetimes (seconds), in Redis in the fleet and SQLite embedded.
    pub cache: ResearchCache,
}

impl ResearchEngine {
    /// Whether each pitched prospect is researched first: asked for, and with
    /// something to research with (a web search or Firecrawl).
    pub fn researches_before_pitch(&self) -> bool {
        self.before_pitch && (self.provider != ResearchSearch::Offline || self.firecrawl)
    }
}

impl Default for ResearchEngine {
    fn default() -> Self {
        Self {
            max_results: 20,
            citation_required: true,
            provider: ResearchSearch::Offline,
            duckduckgo_url: "https://html.duckduckgo.com".into(),
            searxng_url: String::new(),
            firecrawl: false,
            firecrawl_url: "https://api.firecrawl.dev".into(),
            before_pitch: false,
            cache: ResearchCache::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResearchCache {
    /// A prospect source's answer for one category and location.
    pub prospect_search_seconds: u64,
    /// An LLM's pitch for one prospect and variant.
    pub pitch_seconds: u64,
    /// A business's research (search, scrape, summary).
    pub profile_analysis_seconds: u64,
}

impl Default for ResearchCache {
    fn default() -> Self {
        Self {
            prospect_search_seconds: 3600,
            pitch_seconds: 86_400,
            profile_analysis_seconds: 1800,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchitectureEngine {
    /// The model of the design review (`cep architecture check`).
    pub model: String,
    /// `strict`: a warning fails the check; `lenient`: only failures do.
    pub validation_rules: ValidationRules,
    /// Who reviews the design record: an LLM (`anthropic` runs only when
    /// ANTHROPIC_API_KEY is set, `openai` when OPENAI_API_KEY is) or `none`.
    #[serde(default = "default_reviewer")]
    pub review: Reviewer,
}

fn default_reviewer() -> Reviewer {
    Reviewer::Anthropic
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationRules {
    Strict,
    Lenient,
}

impl ValidationRules {
    pub const fn as_str(self) -> &'static str {
        match self {
            ValidationRules::Strict => "strict",
            ValidationRules::Lenient => "lenient",
        }
    }
}

/// The LLM that reviews the fleet's design record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reviewer {
    None,
    Ollama,
    Anthropic,
    Openai,
}

impl Reviewer {
    pub const fn as_str(self) -> &'static str {
        match self {
            Reviewer::None => "none",
            Reviewer::Ollama => "ollama",
            Reviewer::Anthropic => "anthropic",
            Reviewer::Openai => "openai",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestingEngine {
    /// The Chromium (or Chrome) binary: a path, or a name looked up on `PATH`.
    pub browser: String,
    pub headless: bool,
    /// Audit each prospect's website before its pitch is written.
    pub audit_websites: bool,
    /// A page that has not loaded by then fails its audit.
    pub timeout_seconds: u64,
    /// Slower than this and the audit flags the load time.
    pub slow_load_ms: u64,
}

impl Default for TestingEngine {
    fn default() -> Self {
        Self {
            browser: "chromium".into(),
            headless: true,
            audit_websites: false,
            timeout_seconds: 30,
            slow_load_ms: 3000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrchestratorEngine {
    /// Seconds a whole chain may take.
    pub timeout: u64,
    pub retry_count: u32,
}
