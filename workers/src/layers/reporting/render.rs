//! Rendering a report a person reads: HTML with an inline SVG chart, every value escaped
//! by the template engine (maud).

use super::rules::{Metric, Report, Trend, label};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:720px;margin:2em auto;color:#1a202c}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e2e8f0;padding:.4em;text-align:left}";

/// An inline SVG bar chart: one bar per (label, value), an optional target line; a
/// sentence instead when there is nothing to chart.
pub fn bar_chart(title: &str, bars: &[(String, f64)], target: Option<f64>) -> Markup {
    if bars.is_empty() {
        return html! { p { strong { (title) } ": not known yet (the profile has not been read)." } };
    }
    let (w, h) = (560.0, 220.0);
    let max = bars
        .iter()
        .map(|b| b.1)
        .chain(target)
        .fold(1.0_f64, f64::max);
    let slot = (w - 40.0) / bars.len() as f64;
    let f = |v: f64| format!("{v:.1}");
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title) width=(w) height=(h)
            viewBox=(format!("0 0 {w} {h}")) {
            title { (title) }
            @for (i, (name, v)) in bars.iter().enumerate() {
                @let bh = (v / max) * (h - 50.0);
                @let x = 30.0 + i as f64 * slot + slot * 0.15;
                @let y = h - 30.0 - bh;
                rect x=(f(x)) y=(f(y)) width=(f(slot * 0.7)) height=(f(bh)) fill="#2b6cb0" {
                    title { (name) ": " (f(*v)) }
                }
                text x=(f(x + slot * 0.35)) y=(f(h - 12.0)) font-size="11" text-anchor="middle" { (name) }
                text x=(f(x + slot * 0.35)) y=(f(y - 4.0)) font-size="11" text-anchor="middle" { (format!("{v:.0}")) }
            }
            @if let Some(t) = target {
                @let y = h - 30.0 - (t / max) * (h - 50.0);
                line x1="20" x2=(w - 10.0) y1=(f(y)) y2=(f(y)) stroke="#c53030" stroke-dasharray="4" {}
                text x=(w - 10.0) y=(f(y - 4.0)) font-size="11" text-anchor="end" fill="#c53030" { "target " (format!("{t:.0}")) }
            }
        }
    }
}

fn fmt_change(m: &Metric) -> String {
    match (m.change_percent, m.trend) {
        (Some(c), Some(t)) => format!(
            "{c:+.1} % ({})",
            match t {
                Trend::Up => "up",
                Trend::Down => "down",
                Trend::Flat => "flat",
            }
        ),
        _ => "no earlier report".into(),
    }
}

pub fn render(report: &Report, chart: &Markup) -> String {
    let day = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let list = |items: &[String], empty: &str| {
        html! {
            @if items.is_empty() { p { (empty) } }
            @else { ul { @for i in items { li { (i) } } } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (report.title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (report.title) }
                p { (report.report_type) " report, " (day(report.period_start)) " to " (day(report.period_end)) }
                @if let Some(c) = &report.coherence { p { "Φ_sync: " (c) } }
                (chart)
                h2 { "Metrics" }
                table {
                    tr { th { "Metric" } th { "This period" } th { "Previous" } th { "Change" } }
                    @for m in &report.metrics {
                        tr {
                            td { (label(&m.name)) }
                            td { (format!("{:.1}", m.value)) }
                            td { (m.previous.map(|p| format!("{p:.1}")).unwrap_or_else(|| "–".into())) }
                            td { (fmt_change(m)) }
                        }
                    }
                }
                h2 { "Insights" }
                (list(&report.insights, "Nothing stood out this period."))
                h2 { "Recommendations" }
                (list(&report.recommendations, "Every tracked metric is on target."))
            }
        }
    }
    .into_string()
}

/// A file name for a report's subject: anything but letters, digits, `-` and `_`
/// becomes `_`.
pub fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_a_bar_per_value_and_the_target() {
        let svg = bar_chart(
            "Profile score",
            &[("start".into(), 40.0), ("now".into(), 65.0)],
            Some(85.0),
        )
        .into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("target 85"));
        assert!(svg.starts_with("<svg"));
    }
}
