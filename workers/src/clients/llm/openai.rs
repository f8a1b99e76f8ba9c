//! OpenAI-compatible chat completions (`POST /v1/chat/completions`): OpenAI itself,
//! vLLM, LM Studio or Ollama's `/v1`. The key is optional for local servers.

use super::chat::Prompt;
use crate::Ctx;
use crate::clients::provider::Reply;
use cep_shared::config::LlmProviders;
use serde::Deserialize;

pub fn request(ctx: &Ctx, cfg: &LlmProviders, p: &Prompt) -> reqwest::RequestBuilder {
    let body = serde_json::json!({
        "model": cfg.model,
        "max_tokens": cfg.max_tokens,
        "temperature": cfg.temperature,
        "response_format": { "type": "json_object" },
        "messages": [
            { "role": "system", "content": p.system },
            { "role": "user", "content": p.user },
        ],
    });
    let req = ctx
        .http
        .post(format!(
            "{}/v1/chat/completions",
            cfg.openai_url.trim_end_matches('/')
        ))
        .json(&body);
    match ctx.secrets.openai_api_key.as_deref() {
        Some(key) => req.bearer_auth(key),
        None => req,
    }
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

pub fn text(r: &Reply) -> Result<String, String> {
    let c: Completion =
        serde_json::from_slice(&r.body).map_err(|e| format!("not a chat completion: {e}"))?;
    let choice = c
        .choices
        .into_iter()
        .next()
        .ok_or("the answer has no choices")?;
    if choice.finish_reason.as_deref() == Some("length") {
        return Err("the answer was cut at max_tokens".into());
    }
    choice
        .message
        .content
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the answer is empty".into())
}
