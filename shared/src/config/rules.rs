//! The numbers of every layer (`business-rules.md`), all overridable in `config.yaml`.

use crate::vocabulary::Channel;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayerSettings {
    pub prospecting: ProspectingRules,
    pub pitch_generation: PitchRules,
    pub outreach: OutreachRules,
    pub booking: BookingRules,
    pub onboarding: OnboardingRules,
    pub optimization: OptimizationRules,
    pub reporting: ReportingRules,
    pub finance: FinanceRules,
    pub feedback_loop: FeedbackRules,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProspectingRules {
    pub max_prospects: u32,
    pub categories: Vec<String>,
    /// Cities the daily campaigns rotate through.
    pub locations: Vec<String>,
    /// Location × category campaigns started each day, rotating through all pairs.
    pub campaigns_per_day: u32,
    pub score: GbpScorePoints,
    /// Score below which a lead is hot / warm / cold; at or above `cold_below`: not qualified.
    pub hot_below: u32,
    pub warm_below: u32,
    pub cold_below: u32,
    /// Below this share of the score's points known, a prospect needs data: it is kept
    /// but not classed or pitched.
    pub min_coverage: f64,
    /// Estimated yearly revenue lost, in dollars, for scores below hot / warm, and otherwise.
    pub revenue_lost_hot: u64,
    pub revenue_lost_warm: u64,
    pub revenue_lost_other: u64,
}

/// The business categories of the seed: the default campaigns and the offline
/// directory's.
pub const CATEGORIES: [&str; 17] = [
    "dental",
    "hvac",
    "plumbing",
    "electrician",
    "roofing",
    "landscaping",
    "auto repair",
    "chiropractor",
    "veterinarian",
    "real estate",
    "attorney",
    "accountant",
    "restaurant",
    "salon",
    "spa",
    "gym",
    "fitness",
];

impl Default for ProspectingRules {
    fn default() -> Self {
        Self {
            max_prospects: 20,
            categories: CATEGORIES.map(String::from).to_vec(),
            locations: [
                "Miami, FL",
                "Austin, TX",
                "Denver, CO",
                "Phoenix, AZ",
                "Seattle, WA",
                "Columbus, OH",
            ]
            .map(String::from)
            .to_vec(),
            campaigns_per_day: 1,
            score: GbpScorePoints::default(),
            hot_below: 30,
            warm_below: 60,
            cold_below: 80,
            min_coverage: 0.5,
            revenue_lost_hot: 250_000,
            revenue_lost_warm: 100_000,
            revenue_lost_other: 25_000,
        }
    }
}

/// Points of the 0–100 GBP score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbpScorePoints {
    pub has_profile: u32,
    pub claimed: u32,
    pub has_photos: u32,
    pub ten_photos: u32,
    pub has_reviews: u32,
    pub ten_reviews: u32,
    pub rating_4: u32,
    pub recent_post: u32,
    pub services: u32,
    pub hours: u32,
    pub website: u32,
    pub description: u32,
    pub owner_replies: u32,
}

impl Default for GbpScorePoints {
    fn default() -> Self {
        Self {
            has_profile: 10,
            claimed: 10,
            has_photos: 10,
            ten_photos: 5,
            has_reviews: 10,
            ten_reviews: 5,
            rating_4: 5,
            recent_post: 10,
            services: 10,
            hours: 5,
            website: 10,
            description: 5,
            owner_replies: 5,
        }
    }
}

impl GbpScorePoints {
    pub fn total(&self) -> u32 {
        self.has_profile
            + self.claimed
            + self.has_photos
            + self.ten_photos
            + self.has_reviews
            + self.ten_reviews
            + self.rating_4
            + self.recent_post
            + self.services
            + self.hours
            + self.website
            + self.description
            + self.owner_replies
    }
}

/// Per-channel numbers, one field per outreach channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerChannel {
    pub email: u32,
    pub linkedin: u32,
    pub phone: u32,
    pub sms: u32,
}

impl PerChannel {
    pub const fn get(&self, c: Channel) -> u32 {
        match c {
            Channel::Email => self.email,
            Channel::Linkedin => self.linkedin,
            Channel::Phone => self.phone,
            Channel::Sms => self.sms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PitchRules {
    pub word_limits: PerChannel,
    pub default_tone: String,
    /// Pitch variants and their starting weights (the feedback loop moves them).
    pub variants: Vec<String>,
    pub max_pain_points: usize,
    pub confidence_start: f64,
    pub confidence_hot: f64,
    pub confidence_warm: f64,
    pub confidence_other: f64,
    pub confidence_many_opportunities: f64,
    pub confidence_big_loss: f64,
    pub confidence_per_channel_length: f64,
    pub confidence_per_channel_audit: f64,
    /// Share of the word limit a text must use to earn the length bonus.
    pub length_bonus_share: f64,
}

impl Default for PitchRules {
    fn default() -> Self {
        Self {
            word_limits: PerChannel {
                email: 150,
                linkedin: 100,
                phone: 200,
                sms: 50,
            },
            default_tone: "professional".into(),
            variants: vec!["a".into(), "b".into()],
            max_pain_points: 3,
            confidence_start: 0.5,
            confidence_hot: 0.3,
            confidence_warm: 0.2,
            confidence_other: 0.1,
            confidence_many_opportunities: 0.1,
            confidence_big_loss: 0.1,
            confidence_per_channel_length: 0.05,
            confidence_per_channel_audit: 0.05,
            length_bonus_share: 0.8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceStep {
    pub channel: String,
    pub offset_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutreachRules {
    /// Nothing leaves the machine; would-be messages are recorded as such.
    pub dry_run: bool,
    pub sequence: Vec<SequenceStep>,
    pub daily_caps: PerChannel,
    /// Local send window: weekdays (`mon`..`sun`) and hours [start, end).
    pub send_days: Vec<String>,
    pub send_start_hour: u32,
    pub send_end_hour: u32,
    pub from_address: String,
    pub from_name: String,
    /// The postal address every email carries (CAN-SPAM).
    pub postal_address: String,
    /// The sending mailbox caps are counted against.
    pub mailbox: String,
}

impl Default for OutreachRules {
    fn default() -> Self {
        Self {
            dry_run: true,
            sequence: [("email", 0), ("linkedin", 24), ("sms", 48), ("phone", 72)]
                .map(|(channel, offset_hours)| SequenceStep {
                    channel: channel.into(),
                    offset_hours,
                })
                .to_vec(),
            daily_caps: PerChannel {
                email: 50,
                linkedin: 25,
                phone: 20,
                sms: 30,
            },
            send_days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            send_start_hour: 8,
            send_end_hour: 17,
            from_address: "hello@agency.example".into(),
            from_name: "Local Growth Agency".into(),
            postal_address: "100 Main Street, Suite 200, Springfield, IL 62701, USA".into(),
            mailbox: "primary".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BookingRules {
    /// Webhook timestamps older than this are refused.
    pub signature_tolerance_seconds: u64,
    /// The booking page pitches link to; `utm_campaign` (prospect) and `utm_content`
    /// (pitch) are added per message for attribution.
    pub scheduling_url: String,
}

impl Default for BookingRules {
    fn default() -> Self {
        Self {
            signature_tolerance_seconds: 180,
            scheduling_url: "https://calendly.com/local-growth-agency/discovery".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistTask {
    pub name: String,
    pub priority: String,
    pub due_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnboardingRules {
    pub documents: Vec<String>,
    pub hvac_documents: Vec<String>,
    pub dental_documents: Vec<String>,
    /// Each task depends on the one before it.
    pub checklist: Vec<ChecklistTask>,
    pub go_live_days_after_training: u32,
    /// Onboarding starts this long after a meeting is recorded won.
    pub start_after_won_hours: u32,
    /// The tier suggested for a meeting (`cep meetings`), by the lead class the prospect
    /// was found as, and the one the simulated world buys; the operator records the tier
    /// actually sold.
    pub hot_tier: String,
    pub warm_tier: String,
}

impl Default for OnboardingRules {
    fn default() -> Self {
        let task = |name: &str, priority: &str, due_days| ChecklistTask {
            name: name.into(),
            priority: priority.into(),
            due_days,
        };
        Self {
            documents: [
                "business license",
                "insurance",
                "w-9",
                "bank account",
                "logo",
            ]
            .map(String::from)
            .to_vec(),
            hvac_documents: vec!["service menu".into()],
            dental_documents: ["service menu", "pricing", "photos"]
                .map(String::from)
                .to_vec(),
            checklist: vec![
                task("collect documents", "critical", 3),
                task("prepare contract", "high", 5),
                task("set up account", "high", 7),
                task("set up payment", "high", 8),
                task("schedule training", "medium", 10),
                task("go live", "critical", 14),
            ],
            go_live_days_after_training: 2,
            start_after_won_hours: 1,
            hot_tier: "professional".into(),
            warm_tier: "starter".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizationRules {
    pub kinds: Vec<String>,
    /// How many of `kinds`, in order, a default run does.
    pub default_run: usize,
    pub visibility_per_point: f64,
    pub posts_per_week_dental: u32,
    pub posts_per_week_hvac: u32,
    pub posts_per_week_restaurant: u32,
    pub posts_per_week_other: u32,
    pub calendar_weeks: u32,
    /// Publish planned posts without an operator's approval (`cep post-approve`).
    pub auto_approve: bool,
}

impl Default for OptimizationRules {
    fn default() -> Self {
        Self {
            kinds: [
                "complete profile",
                "upload photos",
                "create post",
                "reply to reviews",
                "answer questions",
                "update services",
                "update hours",
                "link website",
            ]
            .map(String::from)
            .to_vec(),
            default_run: 5,
            visibility_per_point: 0.8,
            posts_per_week_dental: 2,
            posts_per_week_hvac: 1,
            posts_per_week_restaurant: 3,
            posts_per_week_other: 1,
            calendar_weeks: 4,
            auto_approve: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportingRules {
    /// Change (percent) beyond which a trend is up or down.
    pub trend_percent: f64,
    pub insight_sales_up_percent: f64,
    pub insight_finance_down_percent: f64,
    pub insight_gbp_below: f64,
    /// A metric worse than this share of its target earns a recommendation.
    pub recommend_below_share: f64,
    pub max_recommendations: usize,
}

impl Default for ReportingRules {
    fn default() -> Self {
        Self {
            trend_percent: 5.0,
            insight_sales_up_percent: 10.0,
            insight_finance_down_percent: 10.0,
            insight_gbp_below: 70.0,
            recommend_below_share: 0.8,
            max_recommendations: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub monthly_cents: i64,
    pub setup_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinanceRules {
    pub starter: Tier,
    pub professional: Tier,
    pub enterprise: Tier,
    pub net_days: u32,
    /// Tax in basis points (800 = 8 %).
    pub tax_basis_points: i64,
    pub software_cost_cents: i64,
    pub support_cost_cents: i64,
    /// What finding and winning clients costs: the spend CAC divides.
    pub acquisition_costs: AcquisitionCosts,
}

/// Acquisition spend: the monthly tools of prospecting and outreach, and each paid call
/// as it is made. Nothing is assumed: with none configured, CAC is unknown.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcquisitionCosts {
    /// Cents a month per tool (mailboxes, data, an LLM plan…), counted in each month's
    /// close.
    pub monthly: std::collections::BTreeMap<String, i64>,
    /// Cents per paid call, recorded when the call is made.
    pub per_call: PerCallCosts,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerCallCosts {
    pub places: i64,
    pub firecrawl: i64,
    pub anthropic: i64,
    pub openai: i64,
    pub twilio: i64,
}

impl PerCallCosts {
    /// The cents one call to `p` costs (0 for a provider that does not charge per call).
    pub fn of(&self, p: super::Provider) -> i64 {
        use super::Provider as P;
        match p {
            P::Places => self.places,
            P::Firecrawl => self.firecrawl,
            P::Anthropic => self.anthropic,
            P::Openai => self.openai,
            P::Twilio => self.twilio,
            _ => 0,
        }
    }
}

impl AcquisitionCosts {
    /// Some acquisition cost is configured, so a CAC can be measured.
    pub fn configured(&self) -> bool {
        let c = &self.per_call;
        !self.monthly.is_empty()
            || [c.places, c.firecrawl, c.anthropic, c.openai, c.twilio]
                .iter()
                .any(|v| *v > 0)
    }
}

impl Default for FinanceRules {
    fn default() -> Self {
        Self {
            starter: Tier {
                monthly_cents: 50_000,
                setup_cents: 100_000,
            },
            professional: Tier {
                monthly_cents: 150_000,
                setup_cents: 250_000,
            },
            enterprise: Tier {
                monthly_cents: 300_000,
                setup_cents: 500_000,
            },
            net_days: 30,
            tax_basis_points: 800,
            software_cost_cents: 5_000,
            support_cost_cents: 2_500,
            acquisition_costs: AcquisitionCosts::default(),
        }
    }
}

impl FinanceRules {
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        match name {
            "starter" => Some(&self.starter),
            "professional" => Some(&self.professional),
            "enterprise" => Some(&self.enterprise),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackRules {
    /// A metric this share or more below its target earns an insight.
    pub insight_gap_share: f64,
    pub high_confidence_gap_percent: f64,
    pub optimization_min_impact: f64,
    pub critical_above: f64,
    pub high_above: f64,
    pub max_optimizations: usize,
    pub bottleneck_below: f64,
    pub low_coherence_below: f64,
    pub impact_weights: ImpactWeights,
    /// Accepted optimizations are applied to the parameters layers 1–3 read.
    pub auto_apply: bool,
}

impl Default for FeedbackRules {
    fn default() -> Self {
        Self {
            insight_gap_share: 0.10,
            high_confidence_gap_percent: 25.0,
            optimization_min_impact: 70.0,
            critical_above: 90.0,
            high_above: 75.0,
            max_optimizations: 10,
            bottleneck_below: 0.10,
            low_coherence_below: 0.80,
            impact_weights: ImpactWeights::default(),
            auto_apply: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpactWeights {
    pub prospecting: f64,
    pub pitch_generation: f64,
    pub outreach: f64,
    pub booking: f64,
    pub onboarding: f64,
    pub optimization: f64,
    pub reporting: f64,
    pub finance: f64,
    pub feedback_loop: f64,
}

impl Default for ImpactWeights {
    fn default() -> Self {
        Self {
            prospecting: 0.15,
            pitch_generation: 0.15,
            outreach: 0.20,
            booking: 0.15,
            onboarding: 0.10,
            optimization: 0.10,
            reporting: 0.05,
            finance: 0.05,
            feedback_loop: 0.05,
        }
    }
}

impl ImpactWeights {
    pub fn get(&self, layer: crate::layer::Layer) -> f64 {
        use crate::layer::Layer::*;
        match layer {
            Prospecting => self.prospecting,
            PitchGeneration => self.pitch_generation,
            Outreach => self.outreach,
            Booking => self.booking,
            Onboarding => self.onboarding,
            Optimization => self.optimization,
            Reporting => self.reporting,
            Finance => self.finance,
            FeedbackLoop => self.feedback_loop,
        }
    }
}
