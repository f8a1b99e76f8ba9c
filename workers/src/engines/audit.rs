//! The testing engine: a business's website audited in headless Chromium (Debian's
//! `chromium`, driven over the DevTools protocol; no browser is downloaded).
//!
//! The page is loaded as a phone would (412×915, mobile), then checked: it loads, the
//! business's name, phone and city appear on it, it carries schema.org `LocalBusiness`
//! structured data (or a subtype), it declares a mobile viewport, and how long it took
//! to load. A screenshot is kept. The audit lands in `test_results` and, for a
//! prospect, in its website signal.

use crate::clients::chromium::Chromium;
use crate::{Ctx, JobError};
use cep_shared::ids::stable_id;
pub use cep_shared::signals::{ProfileSignals, WebsiteSignal};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// What the page should show.
#[derive(Debug, Clone, Default)]
pub struct Expect<'a> {
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub city: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    pub url: String,
    pub outcome: String,
    pub signal: WebsiteSignal,
    pub name_found: bool,
    pub phone_found: bool,
    pub city_found: bool,
    /// The schema.org types of the page's JSON-LD.
    pub structured_types: Vec<String>,
    pub screenshot: Option<String>,
    pub problems: Vec<String>,
}

/// schema.org types that are a `LocalBusiness` (the ones our categories meet).
const LOCAL_BUSINESS: [&str; 16] = [
    "LocalBusiness",
    "Dentist",
    "MedicalBusiness",
    "MedicalClinic",
    "HomeAndConstructionBusiness",
    "HVACBusiness",
    "Plumber",
    "Electrician",
    "RoofingContractor",
    "GeneralContractor",
    "AutoRepair",
    "AutomotiveBusiness",
    "FoodEstablishment",
    "Restaurant",
    "LegalService",
    "ProfessionalService",
];

/// What the page itself reports, gathered in one evaluation.
const PROBE: &str = r#"JSON.stringify({
  text: document.body ? document.body.innerText : "",
  viewport: (document.querySelector('meta[name="viewport"]') || {}).content || "",
  ldjson: Array.from(document.querySelectorAll('script[type="application/ld+json"]')).map(s => s.textContent),
  loadMs: (() => { const n = performance.getEntriesByType("navigation")[0]; return n ? Math.round(n.loadEventEnd || n.duration) : 0; })()
})"#;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    text: String,
    viewport: String,
    ldjson: Vec<String>,
    load_ms: f64,
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The `@type`s in JSON-LD blocks, through `@graph` and arrays.
fn types_of(blocks: &[String]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(o) => {
                match o.get("@type") {
                    Some(Value::String(t)) => out.push(t.clone()),
                    Some(Value::Array(ts)) => {
                        out.extend(ts.iter().filter_map(|t| t.as_str().map(String::from)))
                    }
                    _ => {}
                }
                if let Some(g) = o.get("@graph") {
                    walk(g, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for b in blocks {
        if let Ok(v) = serde_json::from_str::<Value>(b) {
            walk(&v, &mut out);
        }
    }
    out
}

/// Judges what the page reported against what it should show.
fn judge(ctx: &Ctx, url: &str, p: &Probe, expect: &Expect<'_>) -> Audit {
    let text = p.text.to_lowercase();
    let page_digits = digits(&p.text);
    let name_found = text.contains(&expect.name.to_lowercase());
    let phone_found = expect.phone.is_some_and(|ph| {
        let d = digits(ph);
        // The national number, whatever the formatting or country prefix.
        d.len() >= 7 && page_digits.contains(&d[d.len().saturating_sub(10)..])
    });
    let city_found = expect
        .city
        .is_some_and(|c| text.contains(&c.to_lowercase()));
    let structured_types = types_of(&p.ldjson);
    let local_business = structured_types
        .iter()
        .any(|t| LOCAL_BUSINESS.contains(&t.as_str()));
    let mobile_viewport = p.viewport.contains("width=device-width");
    let load_ms = p.load_ms.max(0.0) as u64;
    let mut problems = Vec::new();
    let mut flag = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    flag(name_found, "the business's name is not on the page");
    flag(
        expect.phone.is_none() || phone_found,
        "the profile's phone number is not on the page",
    );
    flag(
        expect.city.is_none() || city_found,
        "the business's city is not on the page",
    );
    flag(
        local_business,
        "no schema.org LocalBusiness structured data",
    );
    flag(mobile_viewport, "no mobile viewport (width=device-width)");
    let slow = ctx.settings.engines.testing.slow_load_ms;
    flag(
        load_ms <= slow,
        &format!("slow: loaded in {load_ms} ms (over {slow} ms)"),
    );
    let nap = name_found
        && (expect.phone.is_none() || phone_found)
        && (expect.city.is_none() || city_found);
    Audit {
        url: url.to_owned(),
        outcome: if problems.is_empty() {
            "passed"
        } else {
            "failed"
        }
        .into(),
        signal: WebsiteSignal {
            loads: true,
            name_phone_city_match: nap,
            local_business_data: local_business,
            mobile_viewport,
            load_ms,
        },
        name_found,
        phone_found,
        city_found,
        structured_types,
        screenshot: None,
        problems,
    }
}

/// Audits `url`, keeping its screenshot under `screenshots`.
pub async fn website(
    ctx: &Ctx,
    url: &str,
    expect: &Expect<'_>,
    screenshots: &Path,
) -> Result<Audit, JobError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(JobError::Invalid(format!("`{url}` is not an http(s) URL")));
    }
    let t = &ctx.settings.engines.testing;
    let limit = std::time::Duration::from_secs(t.timeout_seconds);
    let launched = tokio::time::timeout(limit, Chromium::launch(&t.browser, t.headless))
        .await
        .map_err(|_| JobError::Transient("chromium did not start in time".into()))?;
    let mut browser = launched.map_err(|e| match e {
        JobError::Invalid(why) => JobError::Invalid(format!("engines.testing.browser: {why}")),
        other => other,
    })?;
    let outcome = tokio::time::timeout(limit, drive(&mut browser, url)).await;
    browser.close().await;
    let (probe, png) = match outcome {
        Ok(Ok(done)) => done,
        Ok(Err(JobError::Invalid(why))) => return Ok(unloaded(url, why)),
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Ok(unloaded(
                url,
                format!("the page did not load within {} s", t.timeout_seconds),
            ));
        }
    };
    let mut audit = judge(ctx, url, &probe, expect);
    std::fs::create_dir_all(screenshots)
        .map_err(|e| JobError::Transient(format!("{}: {e}", screenshots.display())))?;
    let file = screenshots.join(format!(
        "{}.png",
        stable_id("shot", &[url, &ctx.now().to_string()])
    ));
    std::fs::write(&file, png)
        .map_err(|e| JobError::Transient(format!("{}: {e}", file.display())))?;
    audit.screenshot = Some(file.display().to_string());
    Ok(audit)
}

fn unloaded(url: &str, why: String) -> Audit {
    Audit {
        url: url.to_owned(),
        outcome: "failed".into(),
        signal: WebsiteSignal::default(),
        name_found: false,
        phone_found: false,
        city_found: false,
        structured_types: Vec::new(),
        screenshot: None,
        problems: vec![why],
    }
}

/// One tab sized as a phone: the page loaded, probed and photographed.
async fn drive(browser: &mut Chromium, url: &str) -> Result<(Probe, Vec<u8>), JobError> {
    let tab = browser.tab(412, 915, true).await?;
    browser.navigate(&tab, url).await?;
    let probed = browser.evaluate(&tab, PROBE).await?;
    let probe: Probe = serde_json::from_str(probed.as_str().unwrap_or("{}")).map_err(|e| {
        JobError::Transient(format!("chromium: the page probe did not decode: {e}"))
    })?;
    let png = browser.screenshot(&tab, false).await?;
    Ok((probe, png))
}

/// Audits a prospect's website: recorded in `test_results` and its website signal.
pub async fn prospect(ctx: &Ctx, prospect_id: &str) -> Result<Audit, JobError> {
    let row: Option<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT name, location, phone, website FROM prospects WHERE id = $1")
            .bind(prospect_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    let (name, location, phone, site) =
        row.ok_or_else(|| JobError::Invalid(format!("no prospect `{prospect_id}`")))?;
    let url =
        site.ok_or_else(|| JobError::Invalid(format!("prospect `{prospect_id}` has no website")))?;
    let city = location.split(',').next().map(str::trim);
    let expect = Expect {
        name: &name,
        phone: phone.as_deref(),
        city,
    };
    let dir = ctx.settings.data_dir.join("screenshots");
    let audit = website(ctx, &url, &expect, &dir).await?;
    let now = ctx.now();
    let mut tx = ctx.store.pool().begin().await?;
    // Linked to the design record in force (the newest `cep architecture check`).
    sqlx::query(
        "INSERT INTO test_results (id, architecture_id, subject, outcome, details, created_at)
         VALUES ($1, (SELECT id FROM architectures ORDER BY created_at DESC, id LIMIT 1), $2, $3, $4, $5)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(stable_id("audit", &[prospect_id, &now.to_string()]))
    .bind(prospect_id)
    .bind(&audit.outcome)
    .bind(serde_json::to_string(&audit)?)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let (signals,): (String,) = sqlx::query_as("SELECT signals FROM prospects WHERE id = $1")
        .bind(prospect_id)
        .fetch_one(&mut *tx)
        .await?;
    let mut signals: ProfileSignals = serde_json::from_str(&signals)?;
    signals.website = Some(audit.signal);
    sqlx::query("UPDATE prospects SET signals = $2 WHERE id = $1")
        .bind(prospect_id)
        .bind(serde_json::to_string(&signals)?)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(audit)
}
