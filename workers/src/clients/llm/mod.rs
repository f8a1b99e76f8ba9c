//! The LLM client: one prompt, three adapters (Ollama `/api/chat`, Anthropic Messages,
//! OpenAI-compatible chat completions), one fleet-wide budget and timeout. Pitches,
//! research summaries and the design review all ask through it; it knows nothing of
//! what they ask. It may depend on the runtime and the provider client only.

mod anthropic;
mod chat;
mod client;
mod ollama;
mod openai;

pub use chat::{Failure, Prompt, answer_json};
pub use client::{Llm, ask_model};
pub(crate) use client::{adapter, ask};
