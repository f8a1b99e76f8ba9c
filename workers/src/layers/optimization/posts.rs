//! The words of a client's posts: each names the business and one of the services its
//! category is known for (or the category itself), and a client's posts do not repeat a
//! text within [`NO_REPEAT_WEEKS`] weeks.

/// A client's posts never repeat a text within this many weeks.
pub const NO_REPEAT_WEEKS: usize = 12;

/// What a business of `category` is known for, as a reader would say it; the last is
/// the category's own name.
pub fn subjects(category: &str) -> [&'static str; 3] {
    match category {
        "dental" => ["dental check-ups", "teeth whitening", "dental care"],
        "hvac" => [
            "air conditioning repair",
            "furnace tune-ups",
            "heating and cooling",
        ],
        "plumbing" => ["leak repairs", "water heater installs", "plumbing"],
        "electrician" => ["panel upgrades", "lighting installs", "electrical work"],
        "roofing" => ["roof inspections", "storm damage repairs", "roofing"],
        "landscaping" => ["lawn care", "garden design", "landscaping"],
        "auto repair" => ["brake service", "engine diagnostics", "car repairs"],
        "chiropractor" => ["back pain care", "posture checks", "chiropractic care"],
        "veterinarian" => ["pet check-ups", "vaccinations", "veterinary care"],
        "real estate" => ["home valuations", "first-time buyer advice", "real estate"],
        "attorney" => ["free consultations", "contract reviews", "legal advice"],
        "accountant" => ["tax returns", "bookkeeping", "accounting"],
        "restaurant" => ["the lunch menu", "weekend brunch", "dinner"],
        "salon" => ["haircuts", "colour treatments", "hair care"],
        "spa" => ["massages", "facials", "spa days"],
        "gym" => ["personal training", "group classes", "gym memberships"],
        "fitness" => ["fitness classes", "training plans", "fitness coaching"],
        _ => ["our services", "appointments", "our work"],
    }
}

/// The post templates, one topic each; `{b}` is the business, `{s}` a subject.
const TEMPLATES: [(&str, &str); 12] = [
    (
        "seasonal offer",
        "This season at {b}: {s} at a fair price. Message us to book a time.",
    ),
    (
        "team spotlight",
        "Meet the team behind {s} at {b}: local people who take pride in the details.",
    ),
    (
        "question answered",
        "A question we often hear at {b}: how often is {s} worth it? Ask us and we will give you a straight answer.",
    ),
    (
        "behind the scenes",
        "How {b} prepares for {s}: the checks we make before we start, so nothing is left to chance.",
    ),
    (
        "service highlight",
        "{b} offers {s}. Call or book online and we will find a time that suits you.",
    ),
    (
        "tip",
        "A quick tip from {b} about {s}: a little attention now saves time and money later.",
    ),
    (
        "opening hours",
        "Planning ahead? {b} is here for {s} through the week. Check our hours and book when it suits you.",
    ),
    (
        "thank you",
        "Thank you to everyone who chose {b} for {s} this month. Your reviews help neighbours find us.",
    ),
    (
        "first visit",
        "New to {b}? Here is what to expect from {s} on your first visit, start to finish.",
    ),
    (
        "myth",
        "A common myth about {s}, and what we at {b} tell people instead.",
    ),
    (
        "checklist",
        "Before you book {s}, {b} suggests three things to have ready. It makes the visit quicker.",
    ),
    (
        "neighbourhood",
        "{b} is proud to offer {s} close to home. Stop by or call: we are glad to help.",
    ),
];

/// The `n`-th post of a client: a topic and its text. Consecutive posts change topic,
/// and any [`TEMPLATES`] × 3 consecutive `n` give different texts.
pub fn post(business: &str, category: &str, n: usize) -> (&'static str, String) {
    let subjects = subjects(category);
    let (topic, template) = TEMPLATES[n % TEMPLATES.len()];
    let subject = subjects[(n / TEMPLATES.len()) % subjects.len()];
    let mut text = template.replace("{b}", business).replace("{s}", subject);
    // A template may open with the subject.
    if let Some(first) = text.chars().next().filter(|c| c.is_lowercase()) {
        text.replace_range(..first.len_utf8(), &first.to_uppercase().to_string());
    }
    (topic, text)
}

/// How many different texts a client can be given before one repeats.
pub const DISTINCT: usize = TEMPLATES.len() * 3;

#[cfg(test)]
mod tests {
    use super::*;
    use cep_shared::config::{OptimizationRules, ProspectingRules};

    #[test]
    fn posts_name_the_business_and_a_subject_and_do_not_repeat_within_twelve_weeks() {
        let r = OptimizationRules::default();
        for category in ProspectingRules::default().categories {
            let per_week = super::super::rules::posts_per_week(&category, &r) as usize;
            let needed = NO_REPEAT_WEEKS * per_week;
            assert!(needed <= DISTINCT, "{category}: {needed} posts in 12 weeks");
            let texts: Vec<String> = (500..500 + needed)
                .map(|n| post("Cedar Family Dental", &category, n).1)
                .collect();
            let distinct: std::collections::HashSet<&String> = texts.iter().collect();
            assert_eq!(
                distinct.len(),
                texts.len(),
                "{category} repeats within 12 weeks"
            );
            for t in &texts {
                assert!(t.contains("Cedar Family Dental"), "{t}");
                assert!(
                    subjects(&category)
                        .iter()
                        .any(|s| t.to_lowercase().contains(s)),
                    "{t}"
                );
                if let Some(why) = crate::layers::text_checks::broken(t) {
                    panic!("{why}: {t}");
                }
            }
        }
    }
}
