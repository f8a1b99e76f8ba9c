//! Ollama `/api/chat`, non-streaming, with the answer's JSON schema as `format`.

use super::chat::Prompt;
use crate::Ctx;
use crate::clients::provider::Reply;
use cep_shared::config::LlmProviders;
use serde::Deserialize;

pub fn request(ctx: &Ctx, cfg: &LlmProviders, p: &Prompt) -> reqwest::RequestBuilder {
    let body = serde_json::json!({
        "model": cfg.model,
        "messages": [
            { "role": "system", "content": p.system },
            { "role": "user", "content": p.user },
        ],
        "format": p.schema,
        "stream": false,
        "options": { "temperature": cfg.temperature, "num_predict": cfg.max_tokens },
    });
    ctx.http
        .post(format!("{}/api/chat", cfg.ollama_url.trim_end_matches('/')))
        .json(&body)
}

#[derive(Deserialize)]
struct Message {
    content: String,
}

#[derive(Deserialize)]
struct Chat {
    message: Message,
    done_reason: Option<String>,
}

pub fn text(r: &Reply) -> Result<String, String> {
    let chat: Chat =
        serde_json::from_slice(&r.body).map_err(|e| format!("not an Ollama chat answer: {e}"))?;
    if chat.done_reason.as_deref() == Some("length") {
        return Err("the answer was cut at max_tokens".into());
    }
    Ok(chat.message.content)
}
