//! Onboarding's pure rules: the documents a client hands in, the checklist and its due
//! dates, the state each finished task moves a client to, the billing tier, the ids.

use cep_shared::clock::DAY;
use cep_shared::config::OnboardingRules;
use cep_shared::ids::stable_id;
use cep_shared::vocabulary::{ClientState, LeadClass};
use serde::{Deserialize, Serialize};

/// The state a client reaches when a checklist task of this name is done.
pub fn state_after(task: &str) -> Option<ClientState> {
    match task {
        "collect documents" => Some(ClientState::DocumentsReceived),
        "prepare contract" => Some(ClientState::ContractSigned),
        "set up account" => Some(ClientState::AccountSetUp),
        "set up payment" => Some(ClientState::PaymentSetUp),
        "schedule training" => Some(ClientState::TrainingScheduled),
        "go live" => Some(ClientState::Live),
        _ => None,
    }
}

/// Documents a client of `category` must hand in.
pub fn documents_for(category: &str, r: &OnboardingRules) -> Vec<String> {
    let mut docs = r.documents.clone();
    match category {
        "hvac" => docs.extend(r.hvac_documents.iter().cloned()),
        "dental" => docs.extend(r.dental_documents.iter().cloned()),
        _ => {}
    }
    docs
}

/// The billing tier of a new client: hot leads get the hot tier.
pub fn tier_for(lead_class: LeadClass, r: &OnboardingRules) -> &str {
    if lead_class == LeadClass::Hot {
        &r.hot_tier
    } else {
        &r.warm_tier
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTask {
    pub id: String,
    pub seq: u32,
    pub name: String,
    pub priority: String,
    pub depends_on: Option<String>,
    pub due_at: i64,
}

/// The checklist from `start`: each task depends on the one before it.
pub fn checklist(client_id: &str, start: i64, r: &OnboardingRules) -> Vec<PlannedTask> {
    let mut out: Vec<PlannedTask> = Vec::new();
    for (seq, t) in r.checklist.iter().enumerate() {
        out.push(PlannedTask {
            id: stable_id("task", &[client_id, &seq.to_string()]),
            seq: seq as u32,
            name: t.name.clone(),
            priority: t.priority.clone(),
            depends_on: out.last().map(|p| p.id.clone()),
            due_at: start + i64::from(t.due_days) * DAY,
        });
    }
    out
}

pub fn client_id_for(prospect_id: Option<&str>, email: &str) -> String {
    stable_id("cli", &[prospect_id.unwrap_or(email)])
}

/// The ISO week of `at` (`2026-W02`), the period of a client's weekly optimization.
pub fn iso_week(at: i64) -> String {
    use chrono::Datelike;
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at).unwrap_or_default();
    let w = t.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checklist_chains_dependencies_and_due_dates() {
        let r = OnboardingRules::default();
        let t = checklist("c1", 0, &r);
        let days: Vec<i64> = t.iter().map(|t| t.due_at / DAY).collect();
        assert_eq!(days, [3, 5, 7, 8, 10, 14]);
        assert_eq!(t[0].depends_on, None);
        for w in t.windows(2) {
            assert_eq!(w[1].depends_on.as_deref(), Some(w[0].id.as_str()));
        }
        assert_eq!(t[0].priority, "critical");
        assert_eq!(t[5].name, "go live");
    }

    #[test]
    fn documents_depend_on_the_category() {
        let r = OnboardingRules::default();
        assert_eq!(documents_for("plumbing", &r).len(), 5);
        assert_eq!(documents_for("hvac", &r).len(), 6);
        let dental = documents_for("dental", &r);
        assert_eq!(dental.len(), 8);
        assert!(dental.contains(&"pricing".to_string()));
    }

    #[test]
    fn every_task_moves_the_state_forward() {
        let r = OnboardingRules::default();
        let mut last = ClientState::DocumentsRequested;
        for t in &r.checklist {
            let s = state_after(&t.name).expect("a state per default task");
            assert!(s > last, "{} does not move forward", t.name);
            last = s;
        }
        assert_eq!(last, ClientState::Live);
    }
}
