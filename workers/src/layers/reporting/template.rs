//! The templates a client's report and its email are written with: built in, or an
//! agency's own from `reports.templates_dir` (minijinja; `.html` escaped by default, a
//! bounded amount of work per render), with the agency's brand.

use super::client::ClientReport;
use crate::JobError;
use cep_shared::config::{LOGO_MAX_BYTES, ReportSettings};
use minijinja::{Environment, Value, context};
use serde::Serialize;

const CLIENT_HTML: &str = include_str!("templates/client.html");
const EMAIL_TXT: &str = include_str!("templates/email.txt");

/// The most a template file may weigh.
const TEMPLATE_MAX_BYTES: u64 = 256 * 1024;
/// Template work per render: a loop without end runs out of it.
const FUEL: u64 = 2_000_000;

/// The brand as a template reads it; the logo as a `data:` URI.
#[derive(Debug, Clone, Serialize)]
pub struct BrandView {
    pub agency_name: String,
    pub logo: Option<String>,
    pub primary_colour: String,
    pub accent_colour: String,
    pub contact: String,
    pub footer: String,
}

pub struct Templates {
    env: Environment<'static>,
    pub brand: BrandView,
}

fn read_capped(path: &std::path::Path, max: u64, key: &str) -> Result<Vec<u8>, JobError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| JobError::Invalid(format!("{key}: cannot read {}: {e}", path.display())))?;
    if meta.len() > max {
        return Err(JobError::Invalid(format!(
            "{key}: {} is {} bytes, more than the {max} a report may carry",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path)
        .map_err(|e| JobError::Invalid(format!("{key}: cannot read {}: {e}", path.display())))
}

impl Templates {
    /// The built-in templates, each replaced by the agency's file of the same name when
    /// `templates_dir` has one; refused, naming the file, when one does not compile.
    pub fn load(r: &ReportSettings) -> Result<Self, JobError> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, built_in) in [("client.html", CLIENT_HTML), ("email.txt", EMAIL_TXT)] {
            let own = r
                .templates_dir
                .as_ref()
                .map(|d| d.join(name))
                .filter(|p| p.is_file());
            let source = match own {
                Some(path) => {
                    let bytes = read_capped(&path, TEMPLATE_MAX_BYTES, "reports.templates_dir")?;
                    String::from_utf8(bytes).map_err(|_| {
                        JobError::Invalid(format!(
                            "reports.templates_dir: {} is not UTF-8 text",
                            path.display()
                        ))
                    })?
                }
                None => built_in.to_owned(),
            };
            env.add_template_owned(name, source).map_err(|e| {
                JobError::Invalid(format!(
                    "reports.templates_dir: {name} does not compile: {e}"
                ))
            })?;
        }
        let b = &r.brand;
        let logo = match &b.logo {
            Some(path) => {
                use base64::Engine;
                let bytes = read_capped(path, LOGO_MAX_BYTES, "reports.brand.logo")?;
                let kind = match path.extension().and_then(|e| e.to_str()) {
                    Some(e) if e.eq_ignore_ascii_case("svg") => "image/svg+xml",
                    Some(e) if e.eq_ignore_ascii_case("png") => "image/png",
                    _ => "image/jpeg",
                };
                Some(format!(
                    "data:{kind};base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ))
            }
            None => None,
        };
        Ok(Self {
            env,
            brand: BrandView {
                agency_name: b.agency_name.clone(),
                logo,
                primary_colour: b.primary_colour.clone(),
                accent_colour: b.accent_colour.clone(),
                contact: b.contact.clone(),
                footer: b.footer.clone(),
            },
        })
    }

    /// The brand for a template: the logo's `data:` URI is ours (base64 of the file),
    /// safe in an attribute as it is.
    fn brand(&self) -> Value {
        let b = &self.brand;
        context! {
            agency_name => b.agency_name,
            logo => b.logo.clone().map(Value::from_safe_string),
            primary_colour => b.primary_colour,
            accent_colour => b.accent_colour,
            contact => b.contact,
            footer => b.footer,
        }
    }

    fn render(&self, name: &str, ctx: Value) -> Result<String, JobError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| JobError::Invalid(format!("report template {name}: {e}")))
    }

    /// A client's report as a page.
    pub fn client_html(&self, report: &ClientReport) -> Result<String, JobError> {
        let (views, actions) = super::render::history_charts(
            &report.history,
            &self.brand.primary_colour,
            &self.brand.accent_colour,
        );
        self.render(
            "client.html",
            context! {
                report => Value::from_serialize(report),
                brand => self.brand(),
                charts => context! {
                    views => Value::from_safe_string(views.into_string()),
                    actions => Value::from_safe_string(actions.into_string()),
                },
            },
        )
    }

    /// The email a client gets with its report.
    pub fn email_text(
        &self,
        report: &ClientReport,
        client_name: &str,
        link: &str,
        expires: &str,
        pdf_attached: bool,
    ) -> Result<String, JobError> {
        self.render(
            "email.txt",
            context! {
                report => Value::from_serialize(report),
                brand => self.brand(),
                client_name => client_name,
                link => link,
                expires => expires,
                pdf_attached => pdf_attached,
            },
        )
    }
}
