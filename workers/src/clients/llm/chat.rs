//! What every LLM adapter shares: the prompt it sends, why an answer was not used, and
//! reading the JSON object a model answered with.

/// Why an LLM answer was not used; the `reason` label of `cep_pitch_fallbacks_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Error(String),
    Timeout,
    Invalid(String),
}

impl Failure {
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Error(_) => "error",
            Failure::Timeout => "timeout",
            Failure::Invalid(_) => "invalid",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Error(e) => write!(f, "{e}"),
            Failure::Timeout => write!(f, "no answer in time"),
            Failure::Invalid(e) => write!(f, "invalid answer: {e}"),
        }
    }
}

/// The chat every adapter sends.
pub struct Prompt {
    pub system: String,
    pub user: String,
    /// The JSON schema of the answer (Ollama enforces it; the others are told).
    pub schema: serde_json::Value,
}

/// The JSON object inside a model's text (models sometimes wrap it in a code fence).
fn json_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (start < end).then(|| &text[start..=end])
}

/// Reads the JSON object a model answered with, or says why it cannot.
pub fn answer_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let json = json_object(text).ok_or("no JSON object in the answer")?;
    serde_json::from_str(json).map_err(|e| format!("wrong shape: {e}"))
}
