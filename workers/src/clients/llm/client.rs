//! Asking the configured LLM: which adapter, within the provider's fleet-wide budget and
//! the call's timeout.

use super::chat::{Failure, Prompt};
use super::{anthropic, ollama, openai};
use crate::Ctx;
use crate::clients::provider::{self, Reply};
use cep_shared::config::{LlmProviders, PitchWriter, Provider};

/// A kind of LLM the fleet can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Llm {
    Ollama,
    Anthropic,
    Openai,
}

impl Llm {
    /// The LLM a pitch writer setting names; `None` for the template writer.
    pub fn writing(w: PitchWriter) -> Option<Self> {
        match w {
            PitchWriter::Template => None,
            PitchWriter::Ollama => Some(Llm::Ollama),
            PitchWriter::Anthropic => Some(Llm::Anthropic),
            PitchWriter::Openai => Some(Llm::Openai),
        }
    }
}

pub(crate) type Request = fn(&Ctx, &LlmProviders, &Prompt) -> reqwest::RequestBuilder;
pub(crate) type ReadAnswer = fn(&Reply) -> Result<String, String>;

/// The configured LLM: its provider, how to ask it and how to read its answer; `None`
/// for the template writer.
pub(crate) fn adapter(w: PitchWriter) -> Option<(Provider, Request, ReadAnswer)> {
    Llm::writing(w).map(Llm::adapter)
}

impl Llm {
    fn adapter(self) -> (Provider, Request, ReadAnswer) {
        match self {
            Llm::Ollama => (Provider::Ollama, ollama::request, ollama::text),
            Llm::Anthropic => (Provider::Anthropic, anthropic::request, anthropic::text),
            Llm::Openai => (Provider::Openai, openai::request, openai::text),
        }
    }
}

/// Asks the model; the text of its answer, or why there is none.
pub(crate) async fn ask(
    ctx: &Ctx,
    cfg: &LlmProviders,
    (provider, request, text): (Provider, Request, ReadAnswer),
    p: &Prompt,
) -> Result<String, Failure> {
    let timeout = std::time::Duration::from_secs(cfg.timeout_seconds);
    let call = provider::send(ctx, provider, request(ctx, cfg, p));
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(reply)) => text(&reply).map_err(Failure::Invalid),
        Ok(Err(e)) => Err(Failure::Error(e.to_string())),
        Err(_) => Err(Failure::Timeout),
    }
}

/// Asks the `llm`, running `model`, within the provider's fleet-wide budget: for
/// prompts other than pitches (the architecture review).
pub async fn ask_model(ctx: &Ctx, llm: Llm, model: &str, p: &Prompt) -> Result<String, Failure> {
    let llm = llm.adapter();
    let cfg = LlmProviders {
        model: model.to_owned(),
        ..ctx.settings.providers.llm.clone()
    };
    provider::take_budget(ctx, llm.0, "")
        .await
        .map_err(|e| Failure::Error(e.to_string()))?;
    ask(ctx, &cfg, llm, p).await
}
