//! Anthropic Messages API: `POST /v1/messages`, the system prompt top-level.

use super::chat::Prompt;
use crate::Ctx;
use crate::clients::provider::Reply;
use cep_shared::config::LlmProviders;
use serde::Deserialize;

pub fn request(ctx: &Ctx, cfg: &LlmProviders, p: &Prompt) -> reqwest::RequestBuilder {
    let body = serde_json::json!({
        "model": cfg.model,
        "max_tokens": cfg.max_tokens,
        "temperature": cfg.temperature.min(1.0),
        "system": p.system,
        "messages": [{ "role": "user", "content": p.user }],
    });
    ctx.http
        .post(format!(
            "{}/v1/messages",
            cfg.anthropic_url.trim_end_matches('/')
        ))
        .header(
            "x-api-key",
            ctx.secrets.anthropic_api_key.as_deref().unwrap_or_default(),
        )
        .header("anthropic-version", "2023-06-01")
        .json(&body)
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Vec<Block>,
    stop_reason: Option<String>,
}

pub fn text(r: &Reply) -> Result<String, String> {
    let m: Message =
        serde_json::from_slice(&r.body).map_err(|e| format!("not an Anthropic message: {e}"))?;
    if m.stop_reason.as_deref() == Some("max_tokens") {
        return Err("the answer was cut at max_tokens".into());
    }
    let text: String = m
        .content
        .into_iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text)
        .collect();
    if text.is_empty() {
        return Err("the answer has no text block".into());
    }
    Ok(text)
}
