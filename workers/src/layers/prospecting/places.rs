//! Google Places API (New) Text Search, paged, with a field mask.
//!
//! Google's terms let us keep only the `place_id` indefinitely: a prospect found here
//! is stored as its place id, our scores and the signals we derived, never Google's
//! name, phone, address or reviews. Pitch generation reads the name back on demand
//! ([`details`]) when it writes the pitch.

use super::directory::Business;
use crate::clients::provider;
use crate::{Ctx, JobError};
use cep_shared::config::Provider;
use cep_shared::signals::{ProfileSignals, Signal};
use serde::Deserialize;

/// What a Places result tells of a profile: not its claim, posts, services,
/// description or replies to reviews.
pub const PLACES_KNOWS: [Signal; 6] = [
    Signal::Profile,
    Signal::Photos,
    Signal::Reviews,
    Signal::Rating,
    Signal::Hours,
    Signal::Website,
];

/// What the score needs; `rating`, `userRatingCount`, `websiteUri` and
/// `regularOpeningHours` bill the call as Text Search Enterprise.
pub const FIELD_MASK: &str = "places.id,places.businessStatus,places.rating,places.userRatingCount,\
places.websiteUri,places.regularOpeningHours,places.photos,places.utcOffsetMinutes,nextPageToken";

/// The id a Places prospect is stored under.
pub fn prospect_id(place_id: &str) -> String {
    format!("places:{place_id}")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Place {
    id: String,
    business_status: Option<String>,
    rating: Option<f64>,
    user_rating_count: Option<u32>,
    website_uri: Option<String>,
    regular_opening_hours: Option<serde_json::Value>,
    #[serde(default)]
    photos: Vec<serde_json::Value>,
    utc_offset_minutes: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    places: Vec<Place>,
    next_page_token: Option<String>,
}

fn base(ctx: &Ctx) -> String {
    ctx.settings
        .providers
        .prospects
        .places_url
        .trim_end_matches('/')
        .to_owned()
}

fn key(ctx: &Ctx) -> &str {
    ctx.secrets.places_api_key.as_deref().unwrap_or_default()
}

/// One Text Search call with our field mask, under the fleet-wide Places limit.
async fn search_text(ctx: &Ctx, body: &serde_json::Value) -> Result<Page, JobError> {
    let req = ctx
        .http
        .post(format!("{}/v1/places:searchText", base(ctx)))
        .header("X-Goog-Api-Key", key(ctx))
        .header("X-Goog-FieldMask", FIELD_MASK)
        .json(body);
    provider::call(ctx, Provider::Places, "", req).await?.json()
}

pub async fn search(ctx: &Ctx, location: &str, category: &str) -> Result<Vec<Business>, JobError> {
    let pages = ctx.settings.providers.prospects.places_max_pages;
    let text_query = format!("{category} in {location}");
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..pages {
        let mut body = serde_json::json!({ "textQuery": text_query, "pageSize": 20 });
        if let Some(t) = &token {
            body["pageToken"] = serde_json::json!(t);
        }
        let page = search_text(ctx, &body).await?;
        for p in page.places {
            if p.business_status.as_deref() == Some("CLOSED_PERMANENTLY") {
                continue;
            }
            out.push(Business {
                id: prospect_id(&p.id),
                // Not Google's name: ours to show until pitching reads it on demand.
                name: format!("Google place {}", p.id),
                category: category.to_owned(),
                location: location.to_owned(),
                email: None,
                phone: None,
                website: None,
                utc_offset_minutes: p.utc_offset_minutes.unwrap_or(0),
                signals: signals_of(&p),
            });
        }
        token = page.next_page_token.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// What a place tells of its profile.
fn signals_of(p: &Place) -> ProfileSignals {
    let reviews = p.user_rating_count.unwrap_or(0);
    ProfileSignals {
        has_profile: true,
        photos: p.photos.len() as u32,
        reviews,
        rating: if reviews > 0 {
            p.rating.unwrap_or(0.0)
        } else {
            0.0
        },
        hours_listed: p.regular_opening_hours.is_some(),
        website_linked: p.website_uri.is_some(),
        known: Some(PLACES_KNOWS.into()),
        ..ProfileSignals::default()
    }
}

/// The profile of one business found elsewhere, looked up by its name and address: what
/// the best match tells, or — no open place matches — that it has no profile.
pub async fn lookup(ctx: &Ctx, name: &str, address: &str) -> Result<ProfileSignals, JobError> {
    let body = serde_json::json!({ "textQuery": format!("{name}, {address}"), "pageSize": 1 });
    let page = search_text(ctx, &body).await?;
    Ok(page
        .places
        .iter()
        .find(|p| p.business_status.as_deref() != Some("CLOSED_PERMANENTLY"))
        .map(signals_of)
        .unwrap_or_else(|| ProfileSignals {
            known: Some([Signal::Profile].into()),
            ..ProfileSignals::default()
        }))
}

/// The business's name, read from Places when a pitch needs it.
pub async fn details(ctx: &Ctx, place_id: &str) -> Result<String, JobError> {
    #[derive(Deserialize)]
    struct Name {
        text: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Details {
        display_name: Name,
    }
    let req = ctx
        .http
        .get(format!("{}/v1/places/{place_id}", base(ctx)))
        .header("X-Goog-Api-Key", key(ctx))
        .header("X-Goog-FieldMask", "displayName");
    let d: Details = provider::call(ctx, Provider::Places, "", req)
        .await?
        .json()?;
    Ok(d.display_name.text)
}
