//! Rendering a report a person reads: HTML with an inline SVG chart, every text escaped
//! by the one escaper every page uses.

use super::rules::{Metric, Report, Trend, label};

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An inline SVG bar chart: one bar per (label, value), an optional target line.
pub fn bar_chart(title: &str, bars: &[(String, f64)], target: Option<f64>) -> String {
    if bars.is_empty() {
        return format!(
            "<p><strong>{}</strong>: not known yet (the profile has not been read).</p>",
            html_escape(title)
        );
    }
    let w = 560.0;
    let h = 220.0;
    let max = bars
        .iter()
        .map(|b| b.1)
        .chain(target)
        .fold(1.0_f64, f64::max);
    let n = bars.len().max(1) as f64;
    let slot = (w - 40.0) / n;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{t}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <title>{t}</title>",
        t = html_escape(title)
    );
    for (i, (name, v)) in bars.iter().enumerate() {
        let bh = (v / max) * (h - 50.0);
        let x = 30.0 + i as f64 * slot + slot * 0.15;
        let y = h - 30.0 - bh;
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"#2b6cb0\"><title>{n}: {v:.1}</title></rect>\
             <text x=\"{tx:.1}\" y=\"{ly:.1}\" font-size=\"11\" text-anchor=\"middle\">{n}</text>\
             <text x=\"{tx:.1}\" y=\"{vy:.1}\" font-size=\"11\" text-anchor=\"middle\">{v:.0}</text>",
            bw = slot * 0.7,
            n = html_escape(name),
            tx = x + slot * 0.35,
            ly = h - 12.0,
            vy = y - 4.0,
        ));
    }
    if let Some(t) = target {
        let y = h - 30.0 - (t / max) * (h - 50.0);
        svg.push_str(&format!(
            "<line x1=\"20\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#c53030\" stroke-dasharray=\"4\"/>\
             <text x=\"{x2}\" y=\"{ty:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#c53030\">target {t:.0}</text>",
            x2 = w - 10.0,
            ty = y - 4.0
        ));
    }
    svg.push_str("</svg>");
    svg
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

pub fn render(report: &Report, chart: &str) -> String {
    let day = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let mut rows = String::new();
    for m in &report.metrics {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
            html_escape(label(&m.name)),
            m.value,
            m.previous
                .map(|p| format!("{p:.1}"))
                .unwrap_or_else(|| "–".into()),
            fmt_change(m)
        ));
    }
    let list = |items: &[String], empty: &str| {
        if items.is_empty() {
            format!("<p>{empty}</p>")
        } else {
            format!(
                "<ul>{}</ul>",
                items
                    .iter()
                    .map(|i| format!("<li>{}</li>", html_escape(i)))
                    .collect::<String>()
            )
        }
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:720px;margin:2em auto;color:#1a202c}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #e2e8f0;padding:.4em;text-align:left}}</style>\
         </head><body><h1>{title}</h1><p>{kind} report, {from} to {to}</p>{coherence}{chart}\
         <h2>Metrics</h2><table><tr><th>Metric</th><th>This period</th><th>Previous</th><th>Change</th></tr>{rows}</table>\
         <h2>Insights</h2>{insights}<h2>Recommendations</h2>{recs}</body></html>",
        title = html_escape(&report.title),
        kind = html_escape(&report.report_type),
        from = day(report.period_start),
        to = day(report.period_end),
        coherence = report
            .coherence
            .as_deref()
            .map(|c| format!("<p>Φ_sync: {}</p>", html_escape(c)))
            .unwrap_or_default(),
        insights = list(&report.insights, "Nothing stood out this period."),
        recs = list(
            &report.recommendations,
            "Every tracked metric is on target."
        ),
    )
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
        );
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("target 85"));
        assert!(svg.starts_with("<svg"));
    }
}
