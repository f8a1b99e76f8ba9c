//! What the fleet knows of a prospect's presence, as sources and audits report it: its
//! Google Business Profile and its website. Prospecting scores them, the pitch cites
//! them, the testing engine fills in the website's part.

pub use crate::vocabulary::Signal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a source tells us about a business's Google Business Profile. A value whose
/// signal is not in `known` was not told: it is unknown, never "absent".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileSignals {
    pub has_profile: bool,
    pub claimed: bool,
    pub photos: u32,
    pub reviews: u32,
    pub rating: f64,
    pub posted_last_30_days: bool,
    pub services_listed: bool,
    pub hours_listed: bool,
    pub website_linked: bool,
    pub description: bool,
    /// Share of reviews the owner replied to, 0..1.
    pub owner_reply_share: f64,
    /// The testing engine's audit of the business's website, once run.
    pub website: Option<WebsiteSignal>,
    /// The signals the source told. None (the bundled directory, rows written before
    /// sources declared theirs): every signal is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known: Option<BTreeSet<Signal>>,
}

impl Signal {
    /// What the signal is, as a client reads it.
    pub fn label(self) -> &'static str {
        match self {
            Signal::Profile => "A Business Profile exists",
            Signal::Claimed => "Claimed by the business",
            Signal::Photos => "Photos",
            Signal::Reviews => "Reviews",
            Signal::Rating => "Average rating",
            Signal::RecentPost => "Posted in the last 30 days",
            Signal::Services => "Services listed",
            Signal::Hours => "Opening hours listed",
            Signal::Website => "Website linked",
            Signal::Description => "Description written",
            Signal::OwnerReplies => "Reviews answered by the owner",
        }
    }
}

impl ProfileSignals {
    /// What the profile still lacks, by what its signals show (an unknown signal
    /// suggests nothing): the work a report names as coming next.
    pub fn gaps(&self, photos_wanted: u32, reviews_wanted: u32) -> Vec<String> {
        let mut out = Vec::new();
        let known = |s: Signal| self.knows(s);
        if known(Signal::Profile) && !self.has_profile {
            out.push("Create the Business Profile".to_owned());
            return out;
        }
        if known(Signal::Description) && !self.description {
            out.push("Write the profile's description".to_owned());
        }
        if known(Signal::Hours) && !self.hours_listed {
            out.push("List the opening hours".to_owned());
        }
        if known(Signal::Services) && !self.services_listed {
            out.push("List the services offered".to_owned());
        }
        if known(Signal::Website) && !self.website_linked {
            out.push("Link the website".to_owned());
        }
        if known(Signal::Photos) && self.photos < photos_wanted {
            out.push(format!(
                "Add photos: the profile has {}, customers look for at least {photos_wanted}",
                self.photos
            ));
        }
        if known(Signal::Reviews) && self.reviews < reviews_wanted {
            out.push(format!(
                "Ask happy customers for reviews: {} so far",
                self.reviews
            ));
        }
        if known(Signal::RecentPost) && !self.posted_last_30_days {
            out.push("Post on the profile at least weekly".to_owned());
        }
        out
    }

    /// Whether `signal` is known. A business known to have no profile has none of what
    /// lives on one, so everything about its profile is known; with no reviews, neither
    /// a rating nor replies to them can be missing.
    pub fn knows(&self, signal: Signal) -> bool {
        let Some(known) = &self.known else {
            return true;
        };
        let told = |s: Signal| known.contains(&s);
        if told(Signal::Profile) && !self.has_profile {
            return true;
        }
        match signal {
            Signal::Rating | Signal::OwnerReplies if told(Signal::Reviews) && self.reviews == 0 => {
                true
            }
            s => told(s),
        }
    }

    /// What a signal says as a person reads it, or `None` when it is not known.
    pub fn shown(&self, signal: Signal) -> Option<String> {
        if !self.knows(signal) {
            return None;
        }
        let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
        Some(match signal {
            Signal::Profile => yes(self.has_profile),
            Signal::Claimed => yes(self.claimed),
            Signal::Photos => self.photos.to_string(),
            Signal::Reviews => self.reviews.to_string(),
            Signal::Rating if self.reviews == 0 => "no reviews".into(),
            Signal::Rating => format!("{:.1}", self.rating),
            Signal::RecentPost => yes(self.posted_last_30_days),
            Signal::Services => yes(self.services_listed),
            Signal::Hours => yes(self.hours_listed),
            Signal::Website => yes(self.website_linked),
            Signal::Description => yes(self.description),
            Signal::OwnerReplies if self.reviews == 0 => "no reviews".into(),
            Signal::OwnerReplies => format!("{:.0} %", self.owner_reply_share * 100.0),
        })
    }

    /// The signals not known, in their order.
    pub fn unknown(&self) -> Vec<Signal> {
        Signal::ALL
            .iter()
            .copied()
            .filter(|s| !self.knows(*s))
            .collect()
    }

    /// These signals and those `other` knows: each known value from whichever source
    /// told it (`other` first).
    pub fn merged(&self, other: &ProfileSignals) -> ProfileSignals {
        let take = |s: Signal| other.knows(s) || !self.knows(s);
        let pick = |s: Signal, theirs: bool, ours: bool| if take(s) { theirs } else { ours };
        let known: BTreeSet<Signal> = Signal::ALL
            .iter()
            .copied()
            .filter(|s| self.knows(*s) || other.knows(*s))
            .collect();
        ProfileSignals {
            has_profile: pick(Signal::Profile, other.has_profile, self.has_profile),
            claimed: pick(Signal::Claimed, other.claimed, self.claimed),
            photos: if take(Signal::Photos) {
                other.photos
            } else {
                self.photos
            },
            reviews: if take(Signal::Reviews) {
                other.reviews
            } else {
                self.reviews
            },
            rating: if take(Signal::Rating) {
                other.rating
            } else {
                self.rating
            },
            posted_last_30_days: pick(
                Signal::RecentPost,
                other.posted_last_30_days,
                self.posted_last_30_days,
            ),
            services_listed: pick(
                Signal::Services,
                other.services_listed,
                self.services_listed,
            ),
            hours_listed: pick(Signal::Hours, other.hours_listed, self.hours_listed),
            website_linked: pick(Signal::Website, other.website_linked, self.website_linked),
            description: pick(Signal::Description, other.description, self.description),
            owner_reply_share: if take(Signal::OwnerReplies) {
                other.owner_reply_share
            } else {
                self.owner_reply_share
            },
            website: other.website.or(self.website),
            known: (known.len() < Signal::ALL.len()).then_some(known),
        }
    }
}

/// A prospect's website signal: the audit's verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct WebsiteSignal {
    pub loads: bool,
    pub name_phone_city_match: bool,
    pub local_business_data: bool,
    pub mobile_viewport: bool,
    pub load_ms: u64,
}

impl WebsiteSignal {
    /// What the audit found wrong, in a pitch's words (`slow_ms`: the slow-load mark).
    pub fn findings(&self, slow_ms: u64) -> Vec<String> {
        if !self.loads {
            return vec!["the website does not load".into()];
        }
        let mut out = Vec::new();
        if !self.name_phone_city_match {
            out.push("the website's name, phone or city differ from the Google profile".into());
        }
        if !self.local_business_data {
            out.push("the website has no LocalBusiness structured data".into());
        }
        if !self.mobile_viewport {
            out.push("the website is not laid out for phones".into());
        }
        if self.load_ms > slow_ms {
            out.push(format!(
                "the website takes {:.1} s to load",
                self.load_ms as f64 / 1000.0
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn told(signals: &[Signal]) -> Option<BTreeSet<Signal>> {
        Some(signals.iter().copied().collect())
    }

    #[test]
    fn what_a_source_did_not_tell_is_unknown_and_no_profile_tells_everything() {
        let osm = ProfileSignals {
            known: told(&[]),
            ..ProfileSignals::default()
        };
        assert_eq!(osm.unknown(), Signal::ALL);
        let none = ProfileSignals {
            known: told(&[Signal::Profile]),
            ..ProfileSignals::default()
        };
        assert!(none.unknown().is_empty(), "no profile: nothing on it");
        let places = ProfileSignals {
            has_profile: true,
            known: told(&[Signal::Profile, Signal::Photos, Signal::Reviews]),
            ..ProfileSignals::default()
        };
        // No reviews: no rating and no replies to miss.
        assert!(places.knows(Signal::Rating) && places.knows(Signal::OwnerReplies));
        assert!(!places.knows(Signal::Claimed));
        assert!(
            ProfileSignals::default().unknown().is_empty(),
            "the directory"
        );
    }

    #[test]
    fn merging_keeps_each_known_value_and_the_union_of_what_is_known() {
        let osm = ProfileSignals {
            hours_listed: true,
            known: told(&[Signal::Hours]),
            ..ProfileSignals::default()
        };
        let places = ProfileSignals {
            has_profile: true,
            reviews: 12,
            rating: 4.4,
            known: told(&[Signal::Profile, Signal::Reviews, Signal::Rating]),
            ..ProfileSignals::default()
        };
        let m = osm.merged(&places);
        assert!(m.has_profile && m.hours_listed);
        assert_eq!((m.reviews, m.rating), (12, 4.4));
        assert_eq!(
            m.unknown(),
            [
                Signal::Claimed,
                Signal::Photos,
                Signal::RecentPost,
                Signal::Services,
                Signal::Website,
                Signal::Description,
                Signal::OwnerReplies
            ]
        );
    }
}
