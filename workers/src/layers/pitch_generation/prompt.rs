//! The pitch prompt an LLM writer is given, and the validation its answer must pass.

use super::writer::{self, Brief, Channel, PitchDraft};
use crate::clients::llm::{Prompt, answer_json};
use cep_shared::config::PitchRules;
use serde::Deserialize;

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
        .iter()
        .map(|&c| format!("{c} ≤ {} words", rules.word_limits.get(c)))
        .collect::<Vec<_>>()
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
        let limit = rules.word_limits.get(channel) as usize;
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
