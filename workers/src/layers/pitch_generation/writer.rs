//! The template pitch writer: our own wording, four channels, four tones, word limits
//! and variant ids. An LLM writer will sit behind the same [`PitchDraft`] shape.

pub use cep_shared::vocabulary::Channel;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PitchDraft {
    pub channel: Channel,
    pub tone: String,
    pub variant: String,
    pub subject: Option<String>,
    pub body: String,
}

/// A draft cut to its word limit and scored, as stored and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pitch {
    pub id: String,
    pub channel: Channel,
    pub variant: String,
    pub subject: Option<String>,
    pub body: String,
    pub word_count: usize,
    pub confidence: f64,
}

/// What the writer knows about the prospect.
#[derive(Debug, Clone)]
pub struct Brief<'a> {
    pub business: &'a str,
    pub category: &'a str,
    pub location: &'a str,
    pub pain_points: &'a [String],
    pub revenue_lost: u64,
    /// The website audit's findings (the testing engine), when it ran.
    pub website: &'a [String],
    /// Researched facts, each with its source URL (the research engine), when it ran.
    pub facts: &'a [String],
}

fn opener(tone: &str, business: &str) -> String {
    match tone {
        "casual" => {
            format!("Hi there, I was looking at {business} online and spotted a few quick wins.")
        }
        "direct" => format!("{business} is missing customers on Google Maps, and it is fixable."),
        "consultative" => format!(
            "I reviewed how {business} shows up when locals search, and I had a few questions."
        ),
        _ => format!("I am writing about how {business} appears in local Google search results."),
    }
}

fn money(d: u64) -> String {
    let s = d.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("${out}")
}

/// What we saw on the profile, as a sentence: the pain points as a list, or — none
/// known — a general line (never an empty list).
fn noticed(pains: &[String]) -> String {
    match pains {
        [] => "We noticed a few quick wins on your Google profile.".into(),
        [one] => format!("What we noticed: {one}."),
        [rest @ .., last] => format!("What we noticed: {} and {last}.", rest.join(", ")),
    }
}

pub fn write(brief: &Brief<'_>, channel: Channel, tone: &str, variant: &str) -> PitchDraft {
    let b = brief.business;
    let noticed = noticed(brief.pain_points);
    let audit = "I would be glad to send a free audit of your profile";
    let hook = if variant == "b" {
        format!(
            "Nearby {} businesses in {} are taking the calls you could be getting.",
            brief.category, brief.location
        )
    } else {
        format!(
            "We estimate gaps like these cost a business like yours about {} a year.",
            money(brief.revenue_lost)
        )
    };
    let body = match channel {
        Channel::Email => format!(
            "{} {noticed} {hook} Our team fixes Google Business Profiles for local {} businesses: we complete the listing, add photos and weekly posts, and help you earn and answer reviews, so more people nearby find you and call. Most owners see more calls within a few weeks, and you get a plain report every month showing what changed. {audit}, with the three changes that would matter most for {b}. Would a short call this week suit you? If this is not useful, reply and we will not write again.",
            opener(tone, b),
            brief.category
        ),
        Channel::Linkedin => format!(
            "{} {noticed} {hook} We help local {} businesses fix exactly this on Google. {audit} if you are interested. Open to a quick chat?",
            opener(tone, b),
            brief.category
        ),
        Channel::Phone => format!(
            "Hello, may I speak with the owner of {b}? {} I will be brief. When people nearby search for {} in {}, your Google profile is the first thing they see. {noticed} {hook} We specialise in fixing Google Business Profiles for local businesses: completing the listing, adding photos and regular posts, and building up reviews. Owners usually see more calls and direction requests within a few weeks. {audit}, with the three most important fixes, at no cost. Could I send that over, or book fifteen minutes this week to walk you through it? If now is not a good time, when would be better to call back?",
            opener(tone, b),
            brief.category,
            brief.location
        ),
        // A cold text knows no person's name: no name rather than the business's.
        Channel::Sms => format!(
            "Hi, a quick note about {b} on Google. {noticed} {audit}. Reply YES for it, STOP to opt out."
        ),
    };
    PitchDraft {
        channel,
        tone: tone.to_owned(),
        variant: variant.to_owned(),
        subject: (channel == Channel::Email).then(|| format!("A few quick wins for {b} on Google")),
        body,
    }
}

pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Cuts `text` to at most `limit` words, ending the last sentence cleanly.
pub fn cut_to(text: &str, limit: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= limit {
        return words.join(" ");
    }
    let mut out = words[..limit].join(" ");
    if !out.ends_with(['.', '?', '!']) {
        out = out.trim_end_matches([',', ';', ':']).to_owned();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cep_shared::config::PitchRules;

    #[test]
    fn amounts_print_with_thousands_separators() {
        assert_eq!(money(250_000), "$250,000");
        assert_eq!(money(999), "$999");
    }

    #[test]
    fn cutting_keeps_at_most_the_limit() {
        assert_eq!(cut_to("one two three four", 2), "one two…");
        assert_eq!(cut_to("one two.", 5), "one two.");
        assert_eq!(word_count(&cut_to(&"w ".repeat(300), 150)), 150);
    }

    /// The pain points of the rules, in their order.
    const PAINS: [&str; 8] = [
        "no Google Business Profile",
        "an unclaimed profile",
        "fewer than 10 reviews",
        "a rating below 4.0",
        "no photos",
        "no recent posts",
        "no opening hours",
        "an estimated six-figure yearly loss",
    ];

    /// Every subset of the pain points a brief can carry (at most three, in order).
    fn pain_sets() -> Vec<Vec<String>> {
        (0u32..1 << PAINS.len())
            .filter(|m| m.count_ones() <= 3)
            .map(|m| {
                (0..PAINS.len())
                    .filter(|i| m & (1 << i) != 0)
                    .map(|i| PAINS[i].to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_pitch_reads_right_for_every_pain_tone_channel_variant_and_category() {
        let r = PitchRules::default();
        let categories = cep_shared::config::ProspectingRules::default().categories;
        let mut checked = 0;
        for pains in pain_sets() {
            for category in &categories {
                let brief = Brief {
                    business: "Cedar Family Dental",
                    category,
                    location: "Miami, FL",
                    pain_points: &pains,
                    revenue_lost: 250_000,
                    website: &[],
                    facts: &[],
                };
                for tone in ["professional", "casual", "direct", "consultative"] {
                    for &ch in Channel::ALL {
                        for variant in ["a", "b"] {
                            let d = write(&brief, ch, tone, variant);
                            let limit = r.word_limits.get(ch) as usize;
                            let body = cut_to(&d.body, limit);
                            // Each fits its channel's word limit and offers the audit.
                            assert!(word_count(&body) <= limit);
                            assert!(
                                body.to_lowercase().contains("free audit"),
                                "{ch:?} {tone}: {body}"
                            );
                            let texts = [Some(body.as_str()), d.subject.as_deref()];
                            for text in texts.into_iter().flatten() {
                                if let Some(why) = crate::layers::text_checks::broken(text)
                                    .filter(|_| Some(text) != d.subject.as_deref())
                                {
                                    panic!(
                                        "{why} in {ch:?}/{tone}/{variant}/{category} {pains:?}: {text}"
                                    );
                                }
                            }
                            // A greeting names a person or nobody, never the business.
                            assert!(!body.contains("Hi Cedar"), "{body}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 93 * categories.len() * 4 * 4 * 2);
    }
}
