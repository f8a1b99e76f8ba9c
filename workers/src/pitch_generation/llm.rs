//! LLM pitch writers (Ollama, Anthropic, OpenAI-compatible) behind the template writer.
//!
//! One call writes all four channels as JSON. The answer is validated — its shape, each
//! channel's word limit, no unfilled placeholders, the opt-out line email and SMS must
//! carry — and on an error, a timeout or an invalid answer the template writer writes
//! the pitch instead and the fallback is counted. Our own fleet-wide budget for the
//! provider running out is different: the job is deferred until the window reopens.

use super::writer::{self, Brief, Channel, PitchDraft};
use super::{anthropic, ollama, openai};
use crate::provider::{self, Reply};
use crate::{Ctx, JobError};
use cep_shared::config::{LlmProviders, PitchRules, PitchWriter, Provider};
use serde::Deserialize;

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

/// The JSON schema the answer must follow (Ollama takes it as `format`).
pub fn schema() -> serde_json::Value {
    let text = |with_subject: bool| {
        let mut props = serde_json::json!({ "body": { "type": "string" } });
        let mut required = vec!["body"];
        if with_subject {
            props["subject"] = serde_json::json!({ "type": "string" });
            required.push("subject");
        }
        serde_json::json!({ "type": "object", "properties": props, "required": required })
    };
    serde_json::json!({
        "type": "object",
        "properties": {
            "email": text(true), "linkedin": text(false), "phone": text(false), "sms": text(false)
        },
        "required": ["email", "linkedin", "phone", "sms"]
    })
}

pub fn prompt(brief: &Brief<'_>, tone: &str, variant: &str, rules: &PitchRules) -> Prompt {
    let limits = Channel::ALL
        .map(|c| format!("{} ≤ {} words", c.as_str(), c.word_limit(rules)))
        .join(", ");
    let angle = if variant == "b" {
        "lead with what nearby competitors gain"
    } else {
        "lead with the yearly revenue at stake"
    };
    Prompt {
        system: format!(
            "You write short, honest cold outreach for an agency that improves local businesses' \
             Google Business Profiles. Tone: {tone}. Never invent facts beyond the brief, never \
             use placeholders such as [Name]. Offer a free audit of the profile. Word limits: \
             {limits}. The email must end with an opt-out sentence (\"If this is not useful, \
             reply and we will not write again.\"); the SMS must end with \"Reply STOP to opt \
             out.\". Answer only with JSON: {{\"email\":{{\"subject\",\"body\"}},\
             \"linkedin\":{{\"body\"}},\"phone\":{{\"body\"}},\"sms\":{{\"body\"}}}}."
        ),
        user: {
            let mut user = format!(
                "Business: {}\nCategory: {}\nLocation: {}\nWhat we found: {}\nEstimated yearly revenue lost: ${}\nAngle: {angle}.",
                brief.business,
                brief.category,
                brief.location,
                brief.pain_points.join("; "),
                brief.revenue_lost
            );
            if !brief.website.is_empty() {
                user.push_str(&format!(
                    "\nTheir website, as a phone loads it: {}.",
                    brief.website.join("; ")
                ));
            }
            if !brief.facts.is_empty() {
                user.push_str(&format!(
                    "\nResearched facts (use only these, never their URLs): {}.",
                    brief.facts.join("; ")
                ));
            }
            user
        },
        schema: schema(),
    }
}

#[derive(Deserialize)]
struct Text {
    subject: Option<String>,
    body: String,
}

#[derive(Deserialize)]
struct Answer {
    email: Text,
    linkedin: Text,
    phone: Text,
    sms: Text,
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

fn has_placeholder(text: &str) -> bool {
    let mut rest = text;
    while let Some(i) = rest.find(['[', '{']) {
        let close = if rest[i..].starts_with('[') { ']' } else { '}' };
        match rest[i..].find(close) {
            Some(j) if j < 40 => return true,
            _ => rest = &rest[i + 1..],
        }
    }
    false
}

/// Validates a model's answer into four drafts.
pub fn validate(
    text: &str,
    tone: &str,
    variant: &str,
    rules: &PitchRules,
) -> Result<Vec<PitchDraft>, String> {
    let a: Answer = answer_json(text)?;
    let mut out = Vec::new();
    for (channel, t) in [
        (Channel::Email, a.email),
        (Channel::Linkedin, a.linkedin),
        (Channel::Phone, a.phone),
        (Channel::Sms, a.sms),
    ] {
        let name = channel.as_str();
        let body = t.body.trim().to_owned();
        let words = writer::word_count(&body);
        let limit = channel.word_limit(rules) as usize;
        if words == 0 {
            return Err(format!("{name}: empty body"));
        }
        if words > limit {
            return Err(format!("{name}: {words} words, the limit is {limit}"));
        }
        if has_placeholder(&body) {
            return Err(format!("{name}: an unfilled placeholder"));
        }
        let lower = body.to_lowercase();
        let opted = match channel {
            Channel::Email => ["not write again", "opt out", "unsubscribe"]
                .iter()
                .any(|p| lower.contains(p)),
            Channel::Sms => body.contains("STOP"),
            _ => true,
        };
        if !opted {
            return Err(format!("{name}: no opt-out line"));
        }
        let subject = match channel {
            Channel::Email => {
                let s = t.subject.unwrap_or_default().trim().to_owned();
                if s.is_empty() || s.chars().count() > 120 || has_placeholder(&s) {
                    return Err("email: the subject is empty, too long or unfilled".into());
                }
                Some(s)
            }
            _ => None,
        };
        out.push(PitchDraft {
            channel,
            tone: tone.to_owned(),
            variant: variant.to_owned(),
            subject,
            body,
        });
    }
    Ok(out)
}

pub(crate) type Request = fn(&Ctx, &LlmProviders, &Prompt) -> reqwest::RequestBuilder;
pub(crate) type ReadAnswer = fn(&Reply) -> Result<String, String>;

/// The configured LLM: its provider, how to ask it and how to read its answer; `None`
/// for the template writer.
pub(crate) fn adapter(w: PitchWriter) -> Option<(Provider, Request, ReadAnswer)> {
    match w {
        PitchWriter::Template => None,
        PitchWriter::Ollama => Some((Provider::Ollama, ollama::request, ollama::text)),
        PitchWriter::Anthropic => Some((Provider::Anthropic, anthropic::request, anthropic::text)),
        PitchWriter::Openai => Some((Provider::Openai, openai::request, openai::text)),
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

/// Asks the `writer` kind of LLM, running `model`, within the provider's fleet-wide
/// budget: for prompts other than pitches (the architecture review).
pub async fn ask_model(
    ctx: &Ctx,
    writer: PitchWriter,
    model: &str,
    p: &Prompt,
) -> Result<String, Failure> {
    let Some(llm) = adapter(writer) else {
        return Err(Failure::Error("no LLM configured".into()));
    };
    let cfg = LlmProviders {
        model: model.to_owned(),
        ..ctx.settings.providers.llm.clone()
    };
    provider::take_budget(ctx, llm.0, "")
        .await
        .map_err(|e| Failure::Error(e.to_string()))?;
    ask(ctx, &cfg, llm, p).await
}

/// The four drafts for a prospect and who wrote them (`template` or the LLM's name).
pub async fn drafts(
    ctx: &Ctx,
    brief: &Brief<'_>,
    tone: &str,
    variant: &str,
) -> Result<(Vec<PitchDraft>, &'static str), JobError> {
    let rules = &ctx.settings.layers.pitch_generation;
    let cfg = &ctx.settings.providers.llm;
    let template = || {
        Channel::ALL
            .iter()
            .map(|c| writer::write(brief, *c, tone, variant))
            .collect::<Vec<_>>()
    };
    let Some(llm) = adapter(cfg.writer) else {
        return Ok((template(), "template"));
    };
    let provider = llm.0;
    let p = prompt(brief, tone, variant, rules);
    // The same brief asked again within the cache's lifetime gets the same pitch.
    let key = format!(
        "pitch:{}:{}",
        provider.as_str(),
        cep_shared::ids::stable_id("brief", &[&p.system, &p.user])
    );
    let ttl = ctx.settings.engines.research.cache.pitch_seconds;
    if let Some(hit) = ctx.queue.cache_get(&key).await?
        && let Ok(drafts) = serde_json::from_str::<Vec<PitchDraft>>(&hit)
    {
        return Ok((drafts, provider.as_str()));
    }
    provider::take_budget(ctx, provider, "").await?;
    let result = match ask(ctx, cfg, llm, &p).await {
        Ok(text) => validate(&text, tone, variant, rules).map_err(Failure::Invalid),
        Err(f) => Err(f),
    };
    if let Ok(drafts) = &result {
        ctx.queue
            .cache_put(&key, &serde_json::to_string(drafts)?, ttl)
            .await?;
    }
    match result {
        Ok(drafts) => Ok((drafts, provider.as_str())),
        Err(failure) => {
            tracing::warn!(writer = provider.as_str(), %failure, "pitch written by the template writer instead");
            cep_shared::metrics::get()
                .pitch_fallbacks
                .with_label_values(&[provider.as_str(), failure.label()])
                .inc();
            Ok((template(), "template"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> serde_json::Value {
        serde_json::json!({
            "email": {"subject": "Quick wins for Oak Dental", "body": "We found gaps on your profile. A free audit? If this is not useful, reply and we will not write again."},
            "linkedin": {"body": "We help dentists in Miami show up on Maps."},
            "phone": {"body": "Hello, I am calling about your Google profile."},
            "sms": {"body": "Free audit of your Google profile? Reply STOP to opt out."}
        })
    }

    #[test]
    fn a_fenced_valid_answer_becomes_four_drafts() {
        let text = format!("```json\n{}\n```", good());
        let d = validate(&text, "professional", "a", &PitchRules::default()).unwrap();
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].subject.as_deref(), Some("Quick wins for Oak Dental"));
    }

    #[test]
    fn answers_that_break_a_rule_are_refused_with_the_reason() {
        let r = PitchRules::default();
        let mut long = good();
        long["sms"]["body"] =
            serde_json::json!(format!("{} Reply STOP to opt out.", "word ".repeat(60)));
        assert!(
            validate(&long.to_string(), "p", "a", &r)
                .unwrap_err()
                .contains("sms: 65 words")
        );
        let mut no_opt_out = good();
        no_opt_out["email"]["body"] = serde_json::json!("We found gaps. A free audit?");
        assert_eq!(
            validate(&no_opt_out.to_string(), "p", "a", &r).unwrap_err(),
            "email: no opt-out line"
        );
        let mut placeholder = good();
        placeholder["linkedin"]["body"] = serde_json::json!("Hi [Owner Name], quick idea.");
        assert!(
            validate(&placeholder.to_string(), "p", "a", &r)
                .unwrap_err()
                .contains("placeholder")
        );
        assert!(validate("I cannot help with that.", "p", "a", &r).is_err());
        assert!(
            validate(r#"{"email": "hi"}"#, "p", "a", &r)
                .unwrap_err()
                .starts_with("wrong shape")
        );
    }
}
