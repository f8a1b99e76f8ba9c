//! Clients of the platforms the fleet talks to, shared by every layer and engine that
//! needs them: the provider call (fleet-wide budget, answer → what the job does next),
//! webhook signatures, the pooled SMTP transport, the LLM client and the PDF printer. A client knows no
//! layer; it may depend on the runtime's [`crate::Ctx`] and errors only.

pub mod chromium;
pub mod llm;
pub mod pdf;
pub mod provider;
pub mod signature;
pub mod smtp;
