//! An LLM's review of the record, when one is configured and has its key.

use super::record::{Record, Review};
use cep_shared::Secrets;
use cep_shared::config::{Reviewer, Settings};
use cep_workers::clients::llm::Llm;
use serde::Deserialize;

/// The LLM that reviews, when one is configured and has its key.
pub fn reviewer(s: &Settings, secrets: &Secrets) -> Option<Llm> {
    match s.engines.architecture.review {
        Reviewer::None => None,
        Reviewer::Ollama => Some(Llm::Ollama),
        Reviewer::Anthropic => secrets.anthropic_api_key.as_ref().map(|_| Llm::Anthropic),
        Reviewer::Openai => secrets.openai_api_key.as_ref().map(|_| Llm::Openai),
    }
}

#[derive(Deserialize)]
struct ReviewAnswer {
    summary: String,
    #[serde(default)]
    concerns: Vec<String>,
}

/// Asks the configured LLM to review the record; `None` when no reviewer is set up.
/// A failed review is recorded with its reason and does not fail the check.
pub async fn review(ctx: &cep_workers::Ctx, record: &Record) -> Option<Review> {
    use cep_workers::clients::llm::{self, Prompt};
    let llm = reviewer(&ctx.settings, &ctx.secrets)?;
    let model = ctx.settings.engines.architecture.model.clone();
    let prompt = Prompt {
        system: "You review the design of a job-queue worker fleet for a local-SEO agency. \
                 Read the design record and name concrete risks the automated checks may \
                 have missed: scheduling, capacity, rate limits, failure handling. Do not \
                 repeat findings that passed. Answer only with JSON: \
                 {\"summary\": string, \"concerns\": [string]}."
            .into(),
        user: record.markdown.clone(),
        schema: serde_json::json!({
            "type": "object",
            "properties": {
                "summary": { "type": "string" },
                "concerns": { "type": "array", "items": { "type": "string" } }
            },
            "required": ["summary", "concerns"]
        }),
    };
    let by = ctx.settings.engines.architecture.review.as_str().to_owned();
    let answer = llm::ask_model(ctx, llm, &model, &prompt)
        .await
        .map_err(|f| f.to_string())
        .and_then(|text| {
            llm::answer_json::<ReviewAnswer>(&text)
                .map_err(|e| format!("the review is not the JSON asked for: {e}"))
        });
    Some(match answer {
        Ok(a) => Review {
            by,
            model,
            summary: Some(a.summary),
            concerns: a.concerns,
            error: None,
        },
        Err(e) => Review {
            by,
            model,
            summary: None,
            concerns: Vec::new(),
            error: Some(e),
        },
    })
}
