//! Client reports: what a linked profile did (Google's Performance API, its reviews),
//! the report a client reads, and its delivery.

mod delivery;

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

/// A linked client whose profile's history Google keeps for `history_days` before
/// `now`, and the ctx its reports are written in.
async fn linked_client(
    history_days: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> (Harness, MockServer) {
    let server = MockServer::start().await;
    profile_reads(&server, None, None).await;
    let (mut s, mut secrets) = live(&server, true);
    secrets.gbp_access_token = Some("gbp-test-token".into());
    s.providers.gbp.performance_history_days = history_days;
    let h = harness_with(Backend::Embedded, s, secrets, Clock::simulated(now)).await;
    a_client(&h.ctx).await;
    gbp::link(&h.ctx, "client_1", LOCATION).await.unwrap();
    (h, server)
}

/// Writes the period's reports; the client's page.
pub async fn client_page(ctx: &cep_workers::Ctx, period: &str) -> String {
    cep_workers::handle(
        ctx,
        cep_shared::JobKind::Layer(cep_shared::Layer::Reporting),
        &serde_json::json!({ "period": period }).to_string(),
    )
    .await
    .unwrap();
    let (html,): (String,) = sqlx::query_as(
        "SELECT html FROM reports WHERE client_id = 'client_1' AND report_type = 'monthly' AND period_start = $1",
    )
    .bind(
        cep_shared::period::Period::parse(period)
            .unwrap()
            .span_millis()
            .0,
    )
    .fetch_one(ctx.store.pool())
    .await
    .unwrap();
    html
}

/// The text of the headline figure labelled `label`: value, change and previous.
fn figure(html: &str, label: &str) -> String {
    let at = html
        .find(&format!("<div class=\"label\">{label}</div>"))
        .unwrap_or_else(|| panic!("no figure {label}"));
    let rest = &html[at..];
    let end = rest.find("</div>\n  </div>").unwrap();
    rest[..end]
        .split(['<', '>'])
        .enumerate()
        .filter(|(i, t)| i % 2 == 0 && !t.trim().is_empty())
        .map(|(_, t)| t.trim().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

pub fn at(y: i32, m: u32, d: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

#[tokio::test]
async fn a_year_of_history_compares_february_and_march_with_the_month_before_each() {
    let (h, _google) = linked_client(400, at(2026, 4, 5)).await;
    let feb = client_page(&h.ctx, "2026-02").await;
    assert!(
        feb.contains(
            "February 2026 (1 February 2026 to 28 February 2026), compared with January 2026"
        ),
        "{feb}"
    );
    // Calls: 1 + … + 28 = 406 against January's 1 + … + 31 = 496.
    assert_eq!(
        figure(&feb, "Calls"),
        "Calls | 406 | -18.1 % | January 2026: 496"
    );
    // 20 weekdays in February 2026, 22 in January; views 10 a day.
    assert_eq!(
        figure(&feb, "Website clicks"),
        "Website clicks | 20 | -9.1 % | January 2026: 22"
    );
    assert_eq!(
        figure(&feb, "Profile views"),
        "Profile views | 280 | -9.7 % | January 2026: 310"
    );
    assert!(!feb.contains("Google's figures cover"), "February is whole");
    let mar = client_page(&h.ctx, "2026-03").await;
    assert!(mar.contains("(1 March 2026 to 31 March 2026), compared with February 2026"));
    assert_eq!(
        figure(&mar, "Calls"),
        "Calls | 496 | +22.2 % | February 2026: 406"
    );
    assert_eq!(
        figure(&mar, "Website clicks"),
        "Website clicks | 22 | +10.0 % | February 2026: 20"
    );
    // Six whole months charted, October to March, none missing.
    for month in [
        "Oct 2025", "Nov 2025", "Dec 2025", "Jan 2026", "Feb 2026", "Mar 2026",
    ] {
        assert!(mar.contains(&format!(">{month}</text>")), "{month}");
    }
    assert!(
        !mar.contains("no data") && !mar.contains(">partial<"),
        "{mar}"
    );
    // The month's searches, the withheld one as Google words it.
    assert!(mar.contains("<td>dentist near me</td><td>128</td>"));
    assert!(mar.contains("<td>oak dental</td><td>fewer than 15</td>"));
}

#[tokio::test]
async fn two_months_of_history_show_two_months_and_say_the_rest_is_not_recorded() {
    // Google has the profile's figures from 1 February on.
    let (h, _google) = linked_client(63, at(2026, 4, 5)).await;
    assert_eq!(
        scalar(&h.ctx, "SELECT COUNT(*) FROM profile_metrics").await,
        0,
        "nothing read before the reports"
    );
    let feb = client_page(&h.ctx, "2026-02").await;
    assert_eq!(
        figure(&feb, "Calls"),
        "Calls | 406 | nothing recorded before | January 2026: not recorded"
    );
    let mar = client_page(&h.ctx, "2026-03").await;
    assert_eq!(
        figure(&mar, "Calls"),
        "Calls | 496 | +22.2 % | February 2026: 406"
    );
    // October to January are gaps, in both charts; never a zero.
    assert_eq!(mar.matches(">no data</text>").count(), 8, "{mar}");
}

#[tokio::test]
async fn a_month_under_way_is_marked_partial_and_not_compared() {
    let (h, _google) = linked_client(400, at(2026, 3, 15)).await;
    let mar = client_page(&h.ctx, "2026-03").await;
    // Figures settle three days late: 1 to 12 March.
    assert!(
        mar.contains("Google&#x27;s figures cover 12 of the period&#x27;s 31 days so far."),
        "{mar}"
    );
    assert_eq!(
        figure(&mar, "Calls"),
        "Calls | 78 | not comparable: a period is not whole | February 2026: 406"
    );
    assert_eq!(mar.matches(">partial</text>").count(), 2);
}

#[tokio::test]
async fn a_client_without_a_linked_profile_is_told_so_and_shown_no_figure() {
    let h = harness(
        Backend::Embedded,
        settings(),
        Clock::simulated(at(2026, 3, 5)),
    )
    .await;
    a_client(&h.ctx).await;
    let feb = client_page(&h.ctx, "2026-02").await;
    assert!(feb.contains("Your Business Profile is not linked to our account yet"));
    assert!(
        !feb.contains("class=\"figure\""),
        "no figure without a profile"
    );
    assert!(!feb.contains("<svg"), "no chart without a profile");
    assert!(feb.contains("Not known yet: your profile has not been read."));
    assert!(!feb.contains("<h2>Reviews</h2>"));
}

#[tokio::test]
async fn an_agencys_own_templates_and_brand_write_the_report_escaped() {
    let dir = TempDir::new();
    std::fs::write(
        dir.0.join("client.html"),
        "<html><body style=\"color: {{ brand.primary_colour }}\"><h1>{{ brand.agency_name }} for {{ report.client }}</h1>\
         {% if brand.logo %}<img src=\"{{ brand.logo }}\">{% endif %}{{ report.period }}</body></html>",
    )
    .unwrap();
    let logo = dir.0.join("logo.svg");
    std::fs::write(&logo, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
    let mut s = settings();
    s.reports.templates_dir = Some(dir.0.clone());
    s.reports.brand.agency_name = "Brightside Local".into();
    s.reports.brand.primary_colour = "#aa3300".into();
    s.reports.brand.logo = Some(logo);
    let h = harness(Backend::Embedded, s, Clock::simulated(at(2026, 3, 5))).await;
    a_client(&h.ctx).await;
    // A client whose name is markup is shown as text.
    sqlx::query("UPDATE clients SET business_name = '<script>alert(1)</script> Dental'")
        .execute(h.ctx.store.pool())
        .await
        .unwrap();
    let page = client_page(&h.ctx, "2026-02").await;
    assert!(page.starts_with("<html><body style=\"color: #aa3300\"><h1>Brightside Local for &lt;script&gt;alert(1)&lt;&#x2f;script&gt; Dental</h1>"), "{page}");
    assert!(page.contains("<img src=\"data:image/svg+xml;base64,"));
    assert!(page.ends_with("February 2026</body></html>"));

    // A template that does not compile is refused, naming it; one that runs away is
    // stopped.
    std::fs::write(dir.0.join("client.html"), "{% for x in report %}").unwrap();
    let err = cep_workers::layers::reporting::template::Templates::load(&h.ctx.settings.reports)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("client.html does not compile"), "{err}");
    std::fs::write(
        dir.0.join("client.html"),
        "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
    )
    .unwrap();
    let job = cep_workers::handle(
        &h.ctx,
        cep_shared::JobKind::Layer(cep_shared::Layer::Reporting),
        r#"{"period": "2026-02"}"#,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(job.contains("report template client.html"), "{job}");
}

#[test]
fn a_brand_that_is_not_a_colour_or_an_image_is_refused_naming_its_key() {
    let mut s = cep_shared::Settings::default();
    s.reports.brand.primary_colour = "red;}body{display:none".into();
    let err = s.validate().unwrap_err().to_string();
    assert!(err.contains("reports.brand.primary_colour"), "{err}");
    let mut s = cep_shared::Settings::default();
    s.reports.brand.logo = Some("logo.gif".into());
    let err = s.validate().unwrap_err().to_string();
    assert!(err.contains("reports.brand.logo"), "{err}");
    let mut s = cep_shared::Settings::default();
    s.reports.from = "not an address".into();
    assert!(
        s.validate()
            .unwrap_err()
            .to_string()
            .contains("reports.from")
    );
}
