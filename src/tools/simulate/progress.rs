//! How a simulation shows where it is: a progress bar on a terminal, a plain line per
//! simulated week when stderr is a file or a pipe, nothing for `--json`.

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    None,
    /// A line per simulated week (and the last day).
    Lines,
    /// A bar redrawn in place, with the simulated date.
    Bar,
}

impl Progress {
    /// A bar when stderr is a terminal, lines otherwise; nothing when the output is JSON.
    pub fn for_stderr(json: bool) -> Self {
        if json {
            Progress::None
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }
}

pub(super) struct Meter {
    how: Progress,
    days: u32,
    start: DateTime<Utc>,
    bar: Option<ProgressBar>,
    last_day: i64,
}

impl Meter {
    pub(super) fn new(how: Progress, days: u32, start: DateTime<Utc>) -> Self {
        let bar = (how == Progress::Bar).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(days.into()), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:40} day {pos}/{len}  {msg}  ({elapsed})")
                    .expect("a valid template"),
            );
            bar
        });
        Self {
            how,
            days,
            start,
            bar,
            last_day: -1,
        }
    }

    fn date(&self, day: i64) -> String {
        (self.start + chrono::Duration::days(day))
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The run reached simulated day `day` (0-based).
    pub(super) fn at(&mut self, day: i64, jobs: u64) {
        if day == self.last_day || day >= i64::from(self.days) {
            return;
        }
        self.last_day = day;
        match (&self.bar, self.how) {
            (Some(bar), _) => {
                bar.set_position(day as u64);
                bar.set_message(format!("{}  {jobs} jobs", self.date(day)));
            }
            (None, Progress::Lines) if day % 7 == 0 => {
                eprintln!(
                    "simulating {} (day {} of {}), {jobs} jobs run",
                    self.date(day),
                    day + 1,
                    self.days
                );
            }
            _ => {}
        }
    }

    pub(super) fn finish(&mut self, jobs: u64) {
        let last = self.date(i64::from(self.days) - 1);
        match (&self.bar, self.how) {
            (Some(bar), _) => {
                bar.set_position(self.days.into());
                bar.finish_with_message(format!("{last}  {jobs} jobs"));
            }
            (None, Progress::Lines) => {
                eprintln!("simulated {} days to {last}, {jobs} jobs run", self.days);
            }
            _ => {}
        }
    }
}
