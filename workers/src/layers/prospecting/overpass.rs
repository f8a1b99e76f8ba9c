//! OpenStreetMap through the Overpass API: free, and its data may be stored (ODbL,
//! "© OpenStreetMap contributors"). Both the classic `amenity` tag and the newer
//! `healthcare` tag are queried where a category has both.
//!
//! OSM knows nothing about a Google profile: a business found here carries only what
//! OSM says (a website, opening hours), every GBP signal is unverified until audited,
//! so it scores low and is pitched an audit. Polite use of the public instance is
//! enforced by the `overpass` rate limit (10/minute, 10,000/day by default).

use super::directory::Business;
use crate::clients::provider;
use crate::{Ctx, JobError};
use cep_shared::config::Provider;
use cep_shared::signals::ProfileSignals;
use serde::Deserialize;
use std::collections::BTreeSet;

/// The OSM tags a category is found by.
pub fn tags(category: &str) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match category.trim().to_lowercase().as_str() {
        "dental" | "dentist" => &[("amenity", "dentist"), ("healthcare", "dentist")],
        "hvac" => &[("craft", "hvac")],
        "plumbing" | "plumber" => &[("craft", "plumber")],
        "electrician" => &[("craft", "electrician")],
        "roofing" => &[("craft", "roofer")],
        "landscaping" => &[("craft", "gardener")],
        "auto repair" => &[("shop", "car_repair")],
        "chiropractor" => &[("healthcare", "chiropractor")],
        "veterinarian" => &[("amenity", "veterinary")],
        "real estate" => &[("office", "estate_agent")],
        "attorney" => &[("office", "lawyer")],
        "accountant" => &[("office", "accountant")],
        "restaurant" => &[("amenity", "restaurant")],
        "salon" => &[("shop", "hairdresser")],
        "spa" => &[("leisure", "spa"), ("shop", "beauty")],
        "gym" | "fitness" => &[("leisure", "fitness_centre")],
        _ => return None,
    })
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The Overpass QL for a category in a city ("Miami, FL" → the area named "Miami").
pub fn query(location: &str, category: &str) -> Result<String, JobError> {
    let tags = tags(category).ok_or_else(|| {
        JobError::Invalid(format!("category `{category}` has no OpenStreetMap tag"))
    })?;
    let city = location.split(',').next().unwrap_or(location).trim();
    let mut q = format!(
        "[out:json][timeout:60];\narea[\"name\"=\"{}\"][\"boundary\"=\"administrative\"]->.a;\n(",
        quote(city)
    );
    for (k, v) in tags {
        q.push_str(&format!(" nwr(area.a)[\"{k}\"=\"{v}\"];"));
    }
    q.push_str(" );\nout center tags;");
    Ok(q)
}

#[derive(Deserialize)]
struct Center {
    lon: f64,
}

#[derive(Deserialize)]
struct Element {
    #[serde(rename = "type")]
    kind: String,
    id: i64,
    lon: Option<f64>,
    center: Option<Center>,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct Answer {
    elements: Vec<Element>,
}

/// A standard-time UTC offset from longitude (15° an hour), for send windows when the
/// source gives no time zone.
pub fn offset_from_longitude(lon: f64) -> i32 {
    ((lon / 15.0).round() as i32) * 60
}

pub async fn search(ctx: &Ctx, location: &str, category: &str) -> Result<Vec<Business>, JobError> {
    let url = &ctx.settings.providers.prospects.overpass_url;
    let req = ctx
        .http
        .post(url)
        .form(&[("data", query(location, category)?)]);
    let answer: Answer = provider::call(ctx, Provider::Overpass, "", req)
        .await?
        .json()?;
    let mut out = Vec::new();
    for e in answer.elements {
        let tag = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| e.tags.get(*k))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(name) = tag(&["name"]) else {
            continue;
        };
        let website = tag(&["website", "contact:website"]);
        let lon = e.lon.or(e.center.as_ref().map(|c| c.lon)).unwrap_or(0.0);
        out.push(Business {
            id: format!("osm:{}/{}", e.kind, e.id),
            name,
            category: category.to_owned(),
            location: location.to_owned(),
            email: tag(&["email", "contact:email"]),
            phone: tag(&["phone", "contact:phone"]),
            // OpenStreetMap tells nothing of the Google profile: every signal unknown
            // until a Places lookup (its own website and hours are not the profile's).
            signals: ProfileSignals {
                known: Some(BTreeSet::new()),
                ..ProfileSignals::default()
            },
            website,
            utc_offset_minutes: offset_from_longitude(lon),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dentists_are_queried_by_both_tags_in_the_city_area() {
        let q = query("Miami, FL", "dental").unwrap();
        assert!(q.contains(r#"area["name"="Miami"]["boundary"="administrative"]->.a;"#));
        assert!(q.contains(r#"nwr(area.a)["amenity"="dentist"];"#));
        assert!(q.contains(r#"nwr(area.a)["healthcare"="dentist"];"#));
        assert!(q.ends_with("out center tags;"));
        assert!(query("Miami", "astrology").is_err());
    }

    #[test]
    fn longitude_gives_a_standard_time_offset() {
        assert_eq!(offset_from_longitude(-80.19), -300);
        assert_eq!(offset_from_longitude(-122.33), -480);
    }
}
