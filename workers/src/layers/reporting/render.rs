//! Rendering a report a person reads: HTML with an inline SVG chart, every value escaped
//! by the template engine (maud).

use super::client::HistoryPoint;
use super::rules::{Metric, Report, Trend, label, shown};
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

/// The last six periods as two SVG bar charts: views, and calls / direction requests /
/// website clicks side by side. A period not whole is drawn hollow and marked
/// "partial"; one with nothing stored is a gap marked "no data", never a zero.
pub fn history_charts(history: &[HistoryPoint], primary: &str, accent: &str) -> (Markup, Markup) {
    let views: Vec<Option<Vec<i64>>> = history.iter().map(|h| h.views.map(|v| vec![v])).collect();
    let actions: Vec<Option<Vec<i64>>> = history
        .iter()
        .map(|h| h.actions.map(|a| a.to_vec()))
        .collect();
    let third = "#718096";
    (
        grouped("Profile views", history, &views, &[("views", primary)]),
        grouped(
            "Calls, direction requests and website clicks",
            history,
            &actions,
            &[
                ("calls", primary),
                ("direction requests", accent),
                ("website clicks", third),
            ],
        ),
    )
}

fn grouped(
    title: &str,
    history: &[HistoryPoint],
    values: &[Option<Vec<i64>>],
    series: &[(&str, &str)],
) -> Markup {
    let (w, h) = (640.0, 240.0);
    // A legend above the bars when there is more than one series.
    let top = if series.len() > 1 { 52.0 } else { 28.0 };
    let (left, bottom) = (36.0, 40.0);
    let max = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (w - left - 8.0) / history.len().max(1) as f64;
    let bar = slot * 0.7 / series.len() as f64;
    let f = |v: f64| format!("{v:.1}");
    let y_of = |v: f64| h - bottom - v / max * (h - bottom - top);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title) width=(w) height=(h)
            viewBox=(format!("0 0 {w} {h}")) font-family="system-ui, sans-serif" {
            title { (title) }
            text x="0" y="14" font-size="13" font-weight="600" { (title) }
            @for (i, (name, colour)) in series.iter().enumerate() {
                @if series.len() > 1 {
                    rect x=(f(w - 170.0)) y=(f(4.0 + i as f64 * 14.0)) width="10" height="10" fill=(colour) {}
                    text x=(f(w - 155.0)) y=(f(13.0 + i as f64 * 14.0)) font-size="11" { (name) }
                }
            }
            line x1=(f(left)) x2=(f(w)) y1=(f(h - bottom)) y2=(f(h - bottom)) stroke="#a0aec0" {}
            text x=(f(left - 4.0)) y=(f(y_of(max) + 4.0)) font-size="10" text-anchor="end" { (cep_shared::format::thousands(max as i64)) }
            @for (i, (point, v)) in history.iter().zip(values).enumerate() {
                @let x0 = left + i as f64 * slot + slot * 0.15;
                @let mid = left + i as f64 * slot + slot * 0.5;
                text x=(f(mid)) y=(f(h - bottom + 14.0)) font-size="11" text-anchor="middle" { (point.label) }
                @match v {
                    None => {
                        text x=(f(mid)) y=(f(h - bottom - 8.0)) font-size="10" text-anchor="middle" fill="#718096" { "no data" }
                    }
                    Some(v) => {
                        @for (j, n) in v.iter().enumerate() {
                            @let colour = series[j].1;
                            @let y = y_of(*n as f64);
                            @let x = x0 + j as f64 * bar;
                            @if point.whole {
                                rect x=(f(x)) y=(f(y)) width=(f(bar * 0.9)) height=(f(h - bottom - y)) fill=(colour) {
                                    title { (series[j].0) ": " (cep_shared::format::thousands(*n)) }
                                }
                            } @else {
                                rect x=(f(x)) y=(f(y)) width=(f(bar * 0.9)) height=(f(h - bottom - y)) fill="none" stroke=(colour) stroke-dasharray="3" {
                                    title { (series[j].0) ": " (cep_shared::format::thousands(*n)) " (partial)" }
                                }
                            }
                        }
                        @if !point.whole {
                            text x=(f(mid)) y=(f(h - bottom + 27.0)) font-size="10" text-anchor="middle" fill="#718096" { "partial" }
                        }
                    }
                }
            }
        }
    }
}

fn fmt_change(m: &Metric) -> String {
    match (m.previous, m.change_percent, m.trend) {
        (None, _, _) => "no earlier report".into(),
        (Some(_), Some(c), Some(t)) => format!(
            "{c:+.1} % ({})",
            match t {
                Trend::Up => "up",
                Trend::Down => "down",
                Trend::Flat => "flat",
            }
        ),
        // From zero a percentage means nothing: say what happened.
        (Some(_), _, _) if m.value == 0.0 => "no change".into(),
        (Some(_), _, _) => "up from zero".into(),
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
                            td { (shown(&m.name, m.value)) }
                            td { (m.previous.map(|p| shown(&m.name, p)).unwrap_or_else(|| "–".into())) }
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
