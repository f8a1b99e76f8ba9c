//! Client reports: what a linked profile did (Google's Performance API, its reviews),
//! the report a client reads, and its delivery.

use crate::gbp::{LOCATION, live, optimize, profile_reads};
use crate::helpers::*;
use cep_shared::Clock;
use cep_workers::layers::optimization::gbp;
use wiremock::MockServer;

#[tokio::test]
async fn a_linked_profiles_days_keywords_and_reviews_are_read_once_each() {
    let server = MockServer::start().await;
    profile_reads(&server, None, None).await;
    let (mut s, mut secrets) = live(&server, true);
    secrets.gbp_access_token = Some("gbp-test-token".into());
    s.providers.gbp.performance_history_days = 10;
    s.providers.gbp.performance_lag_days = 3;
    let clock = Clock::simulated(in_window()); // 2026-01-07
    let h = harness_with(Backend::Embedded, s, secrets, clock.clone()).await;
    let ctx = &h.ctx;
    a_client(ctx).await;
    gbp::link(ctx, "client_1", LOCATION).await.unwrap();
    optimize(ctx, "2026-W02").await.unwrap();

    // Ten days back to three days ago: 2025-12-28 to 2026-01-04, every day whole.
    let days = |sql: &str| {
        let sql = sql.to_owned();
        async move { scalar(ctx, &sql).await }
    };
    assert_eq!(
        days("SELECT COUNT(DISTINCT day) FROM profile_metrics").await,
        8
    );
    assert_eq!(days("SELECT COUNT(*) FROM profile_metrics").await, 8 * 7);
    // Calls are each day's day of the month: 28+29+30+31+1+2+3+4.
    assert_eq!(
        days("SELECT SUM(value) FROM profile_metrics WHERE metric = 'CALL_CLICKS'").await,
        128
    );
    // Website clicks on the five weekdays; the zeros Google left out are stored as zeros.
    assert_eq!(
        days("SELECT SUM(value) FROM profile_metrics WHERE metric = 'WEBSITE_CLICKS'").await,
        5
    );
    assert_eq!(
        days("SELECT MIN(day) = '2025-12-28' AND MAX(day) = '2026-01-04' FROM profile_metrics")
            .await,
        1
    );
    // December's searches, the whole month before; the withheld one as "fewer than 15".
    assert_eq!(
        days("SELECT impressions FROM profile_keywords WHERE month = '2025-12' AND keyword = 'dentist near me'").await,
        128
    );
    assert_eq!(
        days("SELECT below FROM profile_keywords WHERE keyword = 'oak dental' AND impressions IS NULL").await,
        15
    );
    // Reviews with their dates: one answered the day after.
    assert_eq!(days("SELECT COUNT(*) FROM profile_reviews").await, 2);
    assert_eq!(
        days("SELECT replied_at - created_at FROM profile_reviews WHERE review_id = 'r1'").await,
        23 * 3_600_000
    );

    // A week later only the days since are asked for, and December is not asked again.
    clock.set(in_window() + chrono::Duration::days(7));
    optimize(ctx, "2026-W03").await.unwrap();
    let asked: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with(":fetchMultiDailyMetricsTimeSeries"))
        .map(|r| {
            let q: std::collections::HashMap<String, String> =
                r.url.query_pairs().into_owned().collect();
            format!(
                "{}-{}-{}..{}-{}-{}",
                q["dailyRange.start_date.year"],
                q["dailyRange.start_date.month"],
                q["dailyRange.start_date.day"],
                q["dailyRange.end_date.year"],
                q["dailyRange.end_date.month"],
                q["dailyRange.end_date.day"]
            )
        })
        .collect();
    assert_eq!(asked, ["2025-12-28..2026-1-4", "2026-1-5..2026-1-11"]);
    let keyword_reads = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/monthly"))
        .count();
    assert_eq!(keyword_reads, 1);
    assert_eq!(
        days("SELECT COUNT(DISTINCT day) FROM profile_metrics").await,
        15
    );
}
