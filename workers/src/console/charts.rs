//! Charts drawn on the server as SVG: a line over periods with optional bands (Φ_sync's
//! thresholds), hollow points for values that stand on partial data, and gaps where a
//! period has no value — never a zero in its place.

use maud::{Markup, html};

/// One period's value: its label, the value (none: unknown), and whether it stands on
/// partial data.
pub struct Point {
    pub label: String,
    pub value: Option<f64>,
    pub partial: bool,
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

/// A line chart of `points` with horizontal `bands` (value, label), values read by
/// `shown`; `max` tops the scale (or the largest value).
pub fn line(
    title: &str,
    points: &[Point],
    bands: &[(f64, &str)],
    max: Option<f64>,
    shown: impl Fn(f64) -> String,
) -> Markup {
    let top = max.unwrap_or_else(|| {
        points
            .iter()
            .filter_map(|p| p.value)
            .chain(bands.iter().map(|b| b.0))
            .fold(0.0_f64, f64::max)
            .max(1e-9)
    });
    let n = points.len().max(1);
    let x = |i: usize| LEFT + (W - LEFT - 10.0) * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v / top).clamp(0.0, 1.0));
    // Runs of known values, drawn as separate lines so a gap stays a gap.
    let mut runs: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => current.push_str(&format!("{:.1},{:.1} ", x(i), y(v))),
            None if !current.is_empty() => runs.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    let every = n.div_ceil(8);
    html! {
        figure {
            figcaption { strong { (title) } }
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                viewBox=(format!("0 0 {W} {H}")) style="width:100%;max-width:640px;background:#fff" {
                title { (title) }
                line x1=(LEFT) y1=(H - BOTTOM) x2=(W - 10.0) y2=(H - BOTTOM) stroke="#a0aec0" {}
                text x="4" y=(TOP + 8.0) font-size="11" fill="#4a5568" { (shown(top)) }
                text x="4" y=(H - BOTTOM) font-size="11" fill="#4a5568" { (shown(0.0)) }
                @for (v, name) in bands {
                    line x1=(LEFT) y1=(format!("{:.1}", y(*v))) x2=(W - 10.0) y2=(format!("{:.1}", y(*v)))
                        stroke="#cbd5e0" stroke-dasharray="4 3" {}
                    text x=(W - 12.0) y=(format!("{:.1}", y(*v) - 2.0)) font-size="10" fill="#718096" text-anchor="end" {
                        (name) " " (shown(*v))
                    }
                }
                @for r in &runs {
                    polyline points=(r) fill="none" stroke="#2b6cb0" stroke-width="2" {}
                }
                @for (i, p) in points.iter().enumerate() {
                    @if let Some(v) = p.value {
                        circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(v))) r="3.5"
                            fill=(if p.partial { "#fff" } else { "#2b6cb0" }) stroke="#2b6cb0" stroke-width="1.5" {
                            title { (p.label) ": " (shown(v)) @if p.partial { " (partial)" } }
                        }
                    } @else {
                        text x=(format!("{:.1}", x(i))) y=(H - BOTTOM - 4.0) font-size="9" fill="#a0aec0" text-anchor="middle" { "no data" }
                    }
                    @if i % every == 0 {
                        text x=(format!("{:.1}", x(i))) y=(H - 10.0) font-size="10" fill="#4a5568" text-anchor="middle" { (p.label) }
                    }
                }
            }
            @if points.iter().any(|p| p.partial) {
                p.muted { "Hollow points stand on partial data (a container had none)." }
            }
        }
    }
}
