//! Optimization's pure rules: the visibility a measured gain is worth, what a client is
//! due, and the content calendar's posts.

use cep_shared::clock::{DAY, HOUR};
use cep_shared::config::OptimizationRules;
use cep_shared::ids::stable_id;
use std::collections::HashSet;

/// Visibility for a measured score gain (a loss gives a negative one).
pub fn visibility_gain(score_gain: i64, r: &OptimizationRules) -> f64 {
    r.visibility_per_point * score_gain as f64
}

pub fn posts_per_week(category: &str, r: &OptimizationRules) -> u32 {
    match category {
        "dental" => r.posts_per_week_dental,
        "hvac" => r.posts_per_week_hvac,
        "restaurant" => r.posts_per_week_restaurant,
        _ => r.posts_per_week_other,
    }
}

/// The default optimizations a client does not have yet.
pub fn todo<'r>(done: &HashSet<String>, r: &'r OptimizationRules) -> Vec<&'r String> {
    r.kinds[..r.default_run]
        .iter()
        .filter(|k| !done.contains(*k))
        .collect()
}

/// A post of the content calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedPost {
    /// Per (client, day, slot), so weekly runs extend the calendar without duplicates.
    pub id: String,
    pub scheduled_for: i64,
    pub topic: &'static str,
    pub body: String,
}

/// The content calendar from `now`: `calendar_weeks` of posts, spread over each week,
/// published at 10:00 UTC. A post's text follows from its week and slot, so a client's
/// texts do not repeat within [`super::posts::NO_REPEAT_WEEKS`] weeks.
pub fn calendar(
    client_id: &str,
    business: &str,
    category: &str,
    now: i64,
    r: &OptimizationRules,
) -> Vec<PlannedPost> {
    let per_week = posts_per_week(category, r);
    let week_start = now.div_euclid(DAY) * DAY;
    let mut posts = Vec::new();
    for week in 0..r.calendar_weeks {
        for slot in 0..per_week {
            let day = week_start
                + i64::from(week) * 7 * DAY
                + i64::from(slot) * (7 * DAY / i64::from(per_week.max(1)));
            let date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(day)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let n = (day / (7 * DAY)) as usize * per_week as usize + slot as usize;
            let (topic, body) = super::posts::post(business, category, n);
            posts.push(PlannedPost {
                id: stable_id("post", &[client_id, &date, &slot.to_string()]),
                scheduled_for: day + 10 * HOUR,
                topic,
                body,
            });
        }
    }
    posts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_is_worth_0_8_a_measured_point() {
        let r = OptimizationRules::default();
        assert!((visibility_gain(25, &r) - 20.0).abs() < 1e-9);
        assert!((visibility_gain(-5, &r) + 4.0).abs() < 1e-9);
    }

    #[test]
    fn posts_per_week_by_category() {
        let r = OptimizationRules::default();
        assert_eq!(posts_per_week("dental", &r), 2);
        assert_eq!(posts_per_week("hvac", &r), 1);
        assert_eq!(posts_per_week("restaurant", &r), 3);
        assert_eq!(posts_per_week("spa", &r), 1);
    }

    #[test]
    fn the_calendar_spreads_posts_over_the_weeks_and_consecutive_topics_differ() {
        let r = OptimizationRules::default();
        let posts = calendar("c1", "Oak Dental", "dental", 3 * DAY + 5 * HOUR, &r);
        assert_eq!(posts.len(), (r.calendar_weeks * 2) as usize);
        assert_eq!(posts[0].scheduled_for, 3 * DAY + 10 * HOUR);
        assert_eq!(posts[1].scheduled_for - posts[0].scheduled_for, 7 * DAY / 2);
        assert!(posts.windows(2).all(|w| w[0].topic != w[1].topic));
        let again = calendar("c1", "Oak Dental", "dental", 3 * DAY + 9 * HOUR, &r);
        assert_eq!(posts, again, "a rerun the same day plans the same posts");
    }
}
