//! The figures: one row each, the median of interleaved runs with their spread, and
//! the table they print as.

use serde::{Deserialize, Serialize};

/// One measured figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// Jobs (or outcomes, or days) the figure was measured over.
    pub n: u64,
    /// The target this figure is held to, when there is one.
    pub target: Option<String>,
    /// The peers' figures for the same measure on the same kind of machine.
    pub peer: Option<String>,
    /// Runs the value is the median of, and half their min–max range as a percentage
    /// of it.
    pub runs: u32,
    pub spread_pct: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub machine: String,
    pub quick: bool,
    pub started_at: String,
    pub rows: Vec<Row>,
}

pub(super) fn row(scenario: &str, metric: &str, value: f64, unit: &str, n: u64) -> Row {
    Row {
        scenario: scenario.into(),
        metric: metric.into(),
        value,
        unit: unit.into(),
        n,
        target: None,
        peer: None,
        runs: 1,
        spread_pct: 0.0,
    }
}

/// Each figure's median over the runs (rows match by position: every run measures the
/// same things in the same order).
pub(super) fn median_rows(runs: Vec<Vec<Row>>) -> Vec<Row> {
    let n = runs.len() as u32;
    let mut runs = runs.into_iter();
    let Some(mut out) = runs.next() else {
        return Vec::new();
    };
    let mut values: Vec<Vec<f64>> = out.iter().map(|r| vec![r.value]).collect();
    for run in runs {
        for (v, r) in values.iter_mut().zip(run) {
            v.push(r.value);
        }
    }
    for (row, mut v) in out.iter_mut().zip(values) {
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        row.value = median;
        row.runs = n;
        row.spread_pct = if median > 0.0 {
            (v[v.len() - 1] - v[0]) / 2.0 / median * 100.0
        } else {
            0.0
        };
    }
    out
}

impl Row {
    pub(super) fn target(mut self, t: &str) -> Self {
        self.target = Some(t.into());
        self
    }

    pub(super) fn peer(mut self, p: &str) -> Self {
        self.peer = Some(p.into());
        self
    }
}

pub(super) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

// ---- scenarios -----------------------------------------------------------------

/// The table `cep bench` prints.
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "{} ({}), {}\n\n{:<12} {:<58} {:>14} {:<7} {:>10} {:>7}  target\n",
        if r.quick {
            "quick smoke run"
        } else {
            "full run"
        },
        r.machine,
        r.started_at,
        "scenario",
        "measure",
        "value",
        "unit",
        "n",
        "±%"
    );
    for row in &r.rows {
        out.push_str(&format!(
            "{:<12} {:<58} {:>14.2} {:<7} {:>10} {:>7.1}  {}\n",
            row.scenario,
            row.metric,
            row.value,
            row.unit,
            row.n,
            row.spread_pct,
            row.target.as_deref().unwrap_or("")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_figure_is_the_median_of_its_runs_with_half_the_range_as_spread() {
        let runs = [[100.0, 2.0], [90.0, 2.0], [110.0, 4.0]]
            .iter()
            .map(|v| {
                vec![
                    row("drain", "no-op", v[0], "jobs/s", 10),
                    row("latency", "p99", v[1], "ms", 10),
                ]
            })
            .collect();
        let rows = median_rows(runs);
        assert_eq!(rows[0].value, 100.0);
        assert!((rows[0].spread_pct - 10.0).abs() < 1e-9);
        assert_eq!(rows[1].value, 2.0);
        assert!((rows[1].spread_pct - 50.0).abs() < 1e-9);
        assert_eq!(rows[1].runs, 3);
    }
}
