//! The simulated world of `cep simulate`: every behavioural rate it plants, so the
//! summary can print them as assumptions and nobody mistakes one for a forecast.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulateSettings {
    pub world: WorldSettings,
}

/// How the simulated prospects, clients and staff behave (shares are 0–1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldSettings {
    /// Share of recorded emails, LinkedIn messages and calls or texts answered.
    pub email_reply: f64,
    pub linkedin_reply: f64,
    pub phone_reply: f64,
    /// Each pitch variant's reply rate relative to the channel's (1 = as it is).
    pub variant_lift: BTreeMap<String, f64>,
    /// Share of replies that go on to book a meeting.
    pub book_after_reply: f64,
    /// Share of messages whose reader books through the link without replying.
    pub book_from_link: f64,
    /// Share of messages whose reader follows the unsubscribe link.
    pub unsubscribe: f64,
    /// Share of bookings canceled, and of bookings rescheduled.
    pub cancel: f64,
    pub reschedule: f64,
    /// Share of meetings that take place (the rest are no-shows, marked in Calendly).
    pub show: f64,
    /// Share of held meetings won; the client buys the tier its lead class suggests.
    pub close: f64,
    /// Share of invoices paid late (after their due date), and never paid.
    pub pay_late: f64,
    pub never_pay: f64,
    /// Share of onboarding tasks the staff finish after their due date.
    pub task_late: f64,
    /// Share of live clients that cancel in a month.
    pub churn_per_month: f64,
}

impl Default for WorldSettings {
    fn default() -> Self {
        Self {
            email_reply: 0.035,
            linkedin_reply: 0.025,
            phone_reply: 0.045,
            variant_lift: [("a".to_string(), 0.7), ("b".to_string(), 1.5)].into(),
            book_after_reply: 0.6,
            book_from_link: 0.01,
            unsubscribe: 0.01,
            cancel: 0.10,
            reschedule: 0.06,
            show: 0.75,
            close: 0.35,
            pay_late: 0.20,
            never_pay: 0.04,
            task_late: 0.18,
            churn_per_month: 0.04,
        }
    }
}

impl WorldSettings {
    /// Every share, named as in `config.yaml`, in the order it is documented.
    pub fn shares(&self) -> [(&'static str, f64); 14] {
        [
            ("email_reply", self.email_reply),
            ("linkedin_reply", self.linkedin_reply),
            ("phone_reply", self.phone_reply),
            ("book_after_reply", self.book_after_reply),
            ("book_from_link", self.book_from_link),
            ("unsubscribe", self.unsubscribe),
            ("cancel", self.cancel),
            ("reschedule", self.reschedule),
            ("show", self.show),
            ("close", self.close),
            ("pay_late", self.pay_late),
            ("never_pay", self.never_pay),
            ("task_late", self.task_late),
            ("churn_per_month", self.churn_per_month),
        ]
    }
}
