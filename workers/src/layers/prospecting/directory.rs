//! The offline prospect source: a bundled, deterministic directory of local businesses
//! with the profile signals the GBP score needs. Real sources implement the same
//! [`ProspectSource`] shape.

pub use cep_shared::config::CATEGORIES;
use cep_shared::ids::SeededRng;
use cep_shared::signals::{ProfileSignals, Signal};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Business {
    /// The source's stable id.
    pub id: String,
    pub name: String,
    pub category: String,
    pub location: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub utc_offset_minutes: i32,
    pub signals: ProfileSignals,
}

/// Cities of the bundled directory and their standard-time UTC offsets.
pub const CITIES: [(&str, i32); 8] = [
    ("Miami, FL", -300),
    ("Austin, TX", -360),
    ("Denver, CO", -420),
    ("Phoenix, AZ", -420),
    ("Seattle, WA", -480),
    ("Columbus, OH", -300),
    ("Nashville, TN", -360),
    ("Portland, OR", -480),
];

const PER_PAIR: usize = 24;
const FIRST: [&str; 16] = [
    "Sunrise",
    "Oak",
    "Harbor",
    "Summit",
    "Maple",
    "Liberty",
    "Cedar",
    "Bayview",
    "Pioneer",
    "Elm",
    "Golden",
    "Riverside",
    "Northgate",
    "Crescent",
    "Heritage",
    "Bluebird",
];
const SECOND: [&str; 8] = [
    "Family", "Pro", "City", "Premier", "Local", "Trusted", "Modern", "Classic",
];

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// The directory knows every profile signal of most businesses; about one in eight it
/// knows from a bare listing (opening hours and website only), so they need data.
fn listing_only(id: &str) -> bool {
    SeededRng::for_decision(0x5eed, &[id, "known"]).chance(0.125)
}

fn business(location: &str, offset: i32, category: &str, n: usize) -> Business {
    let id = format!("dir:{}:{}:{n:03}", slug(location), slug(category));
    let mut rng = SeededRng::for_decision(0x5eed, &[&id]);
    let name = format!(
        "{} {} {}",
        FIRST[rng.below(FIRST.len() as u64) as usize],
        SECOND[rng.below(SECOND.len() as u64) as usize],
        title(category)
    );
    // A spread of profile maturity: roughly a third each of weak, middling and strong.
    let maturity = rng.unit();
    let has_profile = rng.chance(0.55 + 0.45 * maturity);
    let website = rng.chance(0.3 + 0.6 * maturity);
    let reviews = if has_profile {
        (rng.unit() * maturity * 80.0) as u32
    } else {
        0
    };
    let signals = ProfileSignals {
        has_profile,
        claimed: has_profile && rng.chance(0.3 + 0.7 * maturity),
        photos: if has_profile {
            (rng.unit() * maturity * 30.0) as u32
        } else {
            0
        },
        reviews,
        rating: if reviews > 0 {
            3.0 + (rng.unit() * 2.0 * 10.0).round() / 10.0
        } else {
            0.0
        },
        posted_last_30_days: has_profile && rng.chance(maturity * 0.6),
        services_listed: has_profile && rng.chance(maturity),
        hours_listed: has_profile && rng.chance(0.3 + 0.6 * maturity),
        website_linked: website,
        description: has_profile && rng.chance(maturity),
        website: None,
        owner_reply_share: if reviews > 0 {
            rng.unit() * maturity
        } else {
            0.0
        },
        known: listing_only(&id).then(|| [Signal::Hours, Signal::Website].into()),
    };
    let domain = format!("{}-{n}.example", slug(&name));
    Business {
        email: Some(format!("owner@{domain}")),
        phone: Some(format!("+1555{:07}", rng.below(10_000_000))),
        website: website.then(|| format!("https://{domain}/")),
        id,
        name,
        category: category.to_owned(),
        location: location.to_owned(),
        utc_offset_minutes: offset,
        signals,
    }
}

fn title(category: &str) -> String {
    match category {
        "hvac" => "HVAC".into(),
        c => c
            .split(' ')
            .map(|w| {
                let mut cs = w.chars();
                cs.next()
                    .map(|f| f.to_uppercase().collect::<String>() + cs.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Where prospects come from.
pub trait ProspectSource {
    fn search(&self, location: &str, category: &str) -> Vec<Business>;
}

/// The bundled directory: 8 cities × 17 categories × 24 businesses = 3,264.
#[derive(Debug, Clone, Default)]
pub struct OfflineDirectory;

impl OfflineDirectory {
    pub fn all(&self) -> impl Iterator<Item = Business> {
        CITIES.into_iter().flat_map(|(city, offset)| {
            CATEGORIES
                .into_iter()
                .flat_map(move |cat| (0..PER_PAIR).map(move |n| business(city, offset, cat, n)))
        })
    }
}

impl ProspectSource for OfflineDirectory {
    fn search(&self, location: &str, category: &str) -> Vec<Business> {
        let Some((city, offset)) = CITIES
            .into_iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(location.trim()))
        else {
            return Vec::new();
        };
        let category = category.trim().to_ascii_lowercase();
        if !CATEGORIES.contains(&category.as_str()) {
            return Vec::new();
        }
        (0..PER_PAIR)
            .map(|n| business(city, offset, &category, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::prospecting::rules::{LeadClass, classify, gbp_score};
    use cep_shared::config::ProspectingRules;

    #[test]
    fn the_directory_is_large_deterministic_and_covers_every_category() {
        let all: Vec<_> = OfflineDirectory.all().collect();
        assert!(all.len() >= 1000);
        let again: Vec<_> = OfflineDirectory.all().collect();
        assert_eq!(all, again);
        let ids: std::collections::HashSet<_> = all.iter().map(|b| &b.id).collect();
        assert_eq!(ids.len(), all.len(), "ids are unique");
        for cat in ProspectingRules::default().categories {
            assert!(all.iter().any(|b| b.category == cat), "{cat} missing");
        }
        let cities: std::collections::HashSet<_> = all.iter().map(|b| &b.location).collect();
        assert!(cities.len() >= 5);
    }

    #[test]
    fn the_directory_holds_hot_warm_and_unqualified_leads() {
        let r = ProspectingRules::default();
        let classes: Vec<_> = OfflineDirectory
            .all()
            .map(|b| classify(gbp_score(&b.signals, &r), &r))
            .collect();
        for c in [
            LeadClass::Hot,
            LeadClass::Warm,
            LeadClass::Cold,
            LeadClass::NotQualified,
            LeadClass::NeedsData,
        ] {
            assert!(classes.contains(&c), "{c:?} missing");
        }
    }

    #[test]
    fn search_matches_city_and_category_case_insensitively() {
        let found = OfflineDirectory.search("miami, fl", "Dental");
        assert_eq!(found.len(), PER_PAIR);
        assert!(
            found
                .iter()
                .all(|b| b.location == "Miami, FL" && b.category == "dental")
        );
        assert!(OfflineDirectory.search("Atlantis", "dental").is_empty());
    }
}
