//! Client reports as the agency sends them: its brand, templates it may override, and
//! how a report is delivered (a no-login link, a PDF, a monthly email).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportSettings {
    /// A directory whose `client.html` and `email.txt` replace the built-in templates
    /// (minijinja; HTML escaped by default). A file it lacks keeps the built-in one.
    pub templates_dir: Option<PathBuf>,
    pub brand: Brand,
    /// How long a report's no-login link works.
    pub link_days: u32,
    /// Chromium tabs printing PDFs at once, per worker process.
    pub pdf_tabs: u32,
    /// A PDF that takes longer than this to print is a transient failure.
    pub pdf_timeout_seconds: u64,
    /// The month's close emails each client its report (link and PDF) through the SMTP
    /// transport; recorded only while `layers.outreach.dry_run` is on.
    pub email: bool,
    /// The sender of report emails (the agency's address).
    pub from: String,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            templates_dir: None,
            brand: Brand::default(),
            link_days: 90,
            pdf_tabs: 2,
            pdf_timeout_seconds: 30,
            email: true,
            from: "reports@agency.example".into(),
        }
    }
}

/// What a report carries of the agency: name, logo, colours, contact and footer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Brand {
    pub agency_name: String,
    /// A PNG, JPEG or SVG file, embedded in the report (at most 512 KiB).
    pub logo: Option<PathBuf>,
    /// `#rrggbb`: headings and the charts' bars.
    pub primary_colour: String,
    /// `#rrggbb`: the previous period in the charts.
    pub accent_colour: String,
    /// How the client reaches the agency, e.g. "hello@agency.example · (305) 555-0100".
    pub contact: String,
    pub footer: String,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            agency_name: "Your local SEO agency".into(),
            logo: None,
            primary_colour: "#1a365d".into(),
            accent_colour: "#90cdf4".into(),
            contact: String::new(),
            footer: String::new(),
        }
    }
}

/// The most a logo may weigh: it travels inside every report and email.
pub const LOGO_MAX_BYTES: u64 = 512 * 1024;

fn colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

impl ReportSettings {
    /// Every way these settings are wrong: (key, reason).
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let b = &self.brand;
        for (key, value) in [
            ("reports.brand.primary_colour", &b.primary_colour),
            ("reports.brand.accent_colour", &b.accent_colour),
        ] {
            if !colour(value) {
                out.push((key, format!("`{value}` is not a colour: expected #rrggbb")));
            }
        }
        if let Some(logo) = &b.logo {
            let ext = logo
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if !matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg" | "svg")) {
                out.push((
                    "reports.brand.logo",
                    format!("{} is not a .png, .jpg or .svg file", logo.display()),
                ));
            }
        }
        if let Some(dir) = &self.templates_dir
            && !dir.is_dir()
        {
            out.push((
                "reports.templates_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        if self.link_days == 0 || self.link_days > 3_650 {
            out.push((
                "reports.link_days",
                format!("must be 1 to 3650 days, got {}", self.link_days),
            ));
        }
        if self.pdf_tabs == 0 || self.pdf_tabs > 16 {
            out.push((
                "reports.pdf_tabs",
                format!("must be 1 to 16, got {}", self.pdf_tabs),
            ));
        }
        if self.pdf_timeout_seconds == 0 {
            out.push(("reports.pdf_timeout_seconds", "must be above 0".into()));
        }
        let address = self.from.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty()
                && host.contains('.')
                && !host.contains('@')
                && !self
                    .from
                    .chars()
                    .any(|c| c.is_whitespace() || "<>,;\"".contains(c))
        });
        if !address {
            out.push((
                "reports.from",
                format!("`{}` is not an email address", self.from),
            ));
        }
        out
    }
}
