//! What the fleet knows of a prospect's presence, as sources and audits report it: its
//! Google Business Profile and its website. Prospecting scores them, the pitch cites
//! them, the testing engine fills in the website's part.

use serde::{Deserialize, Serialize};

/// What a source tells us about a business's Google Business Profile.
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
