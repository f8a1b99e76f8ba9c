//! Google Business Profile: the optimization layer's edits on a client's real profile.
//!
//! Reads go to the Business Information API v1 (`locations/{l}` with a `readMask`) and
//! the v4 API (reviews); edits are a `PATCH` of the location (with an `updateMask`), a
//! local post, or a review reply. Dry run (the default) records each edit it would
//! make in `gbp_edits` and makes none. Every call spends the `gbp` budget and every
//! edit also the `gbp_edits` budget of its location (Google allows 10 edits a minute
//! per profile): a spent budget defers the run to the next window, and a rerun skips
//! the edits already made, so a post is never published twice.

use crate::clients::provider;
use crate::{Ctx, JobError};
use cep_shared::config::Provider;
use cep_shared::ids::stable_id;
use cep_shared::signals::ProfileSignals;
use cep_shared::vocabulary::EditStatus;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What one sync did on a profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GbpSync {
    pub location: String,
    pub dry_run: bool,
    pub profile_fields: Vec<String>,
    pub posts: usize,
    pub review_replies: usize,
}

/// A location name as the APIs want it: `accounts/{a}/locations/{l}`.
pub fn parse_location(s: &str) -> Result<(&str, &str), String> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        ["accounts", a, "locations", l]
            if !a.is_empty()
                && !l.is_empty()
                && a.chars()
                    .chain(l.chars())
                    .all(|c| c.is_ascii_alphanumeric()) =>
        {
            Ok((a, l))
        }
        _ => Err(format!(
            "`{s}` is not a Business Profile location: expected accounts/<account id>/locations/<location id>"
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    #[serde(default)]
    website_uri: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    regular_hours: Option<Hours>,
    #[serde(default)]
    service_items: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Hours {
    #[serde(default)]
    periods: Vec<serde_json::Value>,
}

/// The fields of a location the score and the edits read.
pub const READ_MASK: &str = "name,websiteUri,profile,regularHours,serviceItems";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Media {
    #[serde(default)]
    total_media_item_count: Option<u32>,
    #[serde(default)]
    media_items: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Posts {
    #[serde(default)]
    local_posts: Vec<LocalPost>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocalPost {
    #[serde(default)]
    create_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Profile {
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reviews {
    #[serde(default)]
    reviews: Vec<Review>,
    #[serde(default)]
    average_rating: Option<f64>,
    #[serde(default)]
    total_review_count: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    review_id: String,
    #[serde(default)]
    star_rating: Option<String>,
    #[serde(default)]
    reviewer: Option<Reviewer>,
    #[serde(default)]
    review_reply: Option<serde_json::Value>,
    #[serde(default)]
    create_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reviewer {
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Created {
    name: Option<String>,
}

/// The client facts a sync works from.
pub struct Client<'a> {
    pub id: &'a str,
    pub business_name: &'a str,
    pub category: &'a str,
    pub website: Option<&'a str>,
    pub location: &'a str,
}

pub(super) fn token(ctx: &Ctx) -> Option<&str> {
    ctx.secrets.gbp_access_token.as_deref()
}

/// Our reply to a review, by its stars.
pub fn review_reply(business: &str, reviewer: Option<&str>, stars: Option<&str>) -> String {
    let name = reviewer
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("there");
    match stars {
        Some("FOUR" | "FIVE") => format!(
            "Thank you, {name}! We are glad you had a good experience with {business} and hope to see you again soon."
        ),
        Some("THREE") => format!(
            "Thank you for the feedback, {name}. We would love to hear how {business} could have done better: please get in touch."
        ),
        _ => format!(
            "We are sorry to hear this, {name}. {business} takes every review seriously; please contact us so we can put it right."
        ),
    }
}

/// Makes (or in dry run records) the profile edits a client is due: missing profile
/// fields and replies to unanswered reviews (from this run's `reading`), and approved
/// posts whose date has come.
pub async fn sync(
    ctx: &Ctx,
    c: &Client<'_>,
    reading: Option<&Reading>,
) -> Result<GbpSync, JobError> {
    let g = &ctx.settings.providers.gbp;
    let (account, loc) = parse_location(c.location).map_err(JobError::Invalid)?;
    let mut out = GbpSync {
        location: c.location.to_owned(),
        dry_run: g.dry_run,
        ..GbpSync::default()
    };
    // The profile as this run read it; without a token (dry run only) the profile and
    // reviews are unknown and only the due posts are recorded.
    if let Some(reading) = reading {
        let current = &reading.location;
        let mut patch = serde_json::Map::new();
        let mut fields = Vec::new();
        let missing = |s: &Option<String>| s.as_deref().is_none_or(|v| v.trim().is_empty());
        if current
            .profile
            .as_ref()
            .is_none_or(|p| missing(&p.description))
        {
            patch.insert(
                "profile".into(),
                json!({ "description": format!(
                    "{} is a local {} business. Call us or book online: we are glad to help.",
                    c.business_name, c.category
                ) }),
            );
            fields.push("profile.description".to_owned());
        }
        if missing(&current.website_uri)
            && let Some(site) = c.website
        {
            patch.insert("websiteUri".into(), json!(site));
            fields.push("websiteUri".to_owned());
        }
        if !fields.is_empty() {
            let url = format!(
                "{}/v1/locations/{loc}?updateMask={}",
                g.business_information_url.trim_end_matches('/'),
                fields.join(",")
            );
            let body = serde_json::Value::Object(patch);
            if edit(ctx, c, "profile", &fields.join(","), "PATCH", &url, &body).await? {
                out.profile_fields = fields;
            }
        }
    }

    let v4 = format!(
        "{}/v4/accounts/{account}/locations/{loc}",
        g.v4_url.trim_end_matches('/')
    );
    let due: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, body FROM posts WHERE client_id = $1 AND scheduled_for <= $2 AND published_at IS NULL
            AND approved_at IS NOT NULL ORDER BY scheduled_for, id",
    )
    .bind(c.id)
    .bind(ctx.now())
    .fetch_all(ctx.store.pool())
    .await?;
    for (post_id, summary) in due {
        let body = json!({
            "languageCode": "en",
            "summary": summary,
            "topicType": "STANDARD",
            "callToAction": { "actionType": "CALL" },
        });
        let url = format!("{v4}/localPosts");
        if edit(ctx, c, "post", &post_id, "POST", &url, &body).await? {
            out.posts += 1;
        }
    }

    if let Some(reading) = reading
        && g.max_review_replies > 0
    {
        let unanswered = reading
            .reviews
            .reviews
            .iter()
            .filter(|r| r.review_reply.is_none())
            .take(g.max_review_replies as usize);
        for r in unanswered {
            let comment = review_reply(
                c.business_name,
                r.reviewer.as_ref().and_then(|x| x.display_name.as_deref()),
                r.star_rating.as_deref(),
            );
            let url = format!("{v4}/reviews/{}/reply", r.review_id);
            let body = json!({ "comment": comment });
            if edit(ctx, c, "review_reply", &r.review_id, "PUT", &url, &body).await? {
                out.review_replies += 1;
            }
        }
    }
    Ok(out)
}

/// A linked profile as one run read it: its signals, and the location and reviews the
/// edits are decided from.
pub struct Reading {
    pub signals: ProfileSignals,
    location: Location,
    reviews: Reviews,
}

/// A review as the weekly reading saw it.
pub struct SeenReview {
    pub review_id: String,
    pub stars: Option<i64>,
    pub created_at: i64,
    pub replied_at: Option<i64>,
}

impl Reading {
    /// The reviews this reading listed, with their stars and dates (a review without a
    /// creation time is left out: it cannot be placed in a period).
    pub fn reviews(&self) -> Vec<SeenReview> {
        let at = |t: Option<&str>| {
            t.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis())
        };
        self.reviews
            .reviews
            .iter()
            .filter_map(|r| {
                Some(SeenReview {
                    review_id: r.review_id.clone(),
                    stars: r.star_rating.as_deref().and_then(stars),
                    created_at: at(r.create_time.as_deref())?,
                    replied_at: r.review_reply.as_ref().map(|reply| {
                        at(reply["updateTime"].as_str())
                            .unwrap_or_else(|| at(r.create_time.as_deref()).unwrap_or_default())
                    }),
                })
            })
            .collect()
    }
}

/// Google's star rating as a number.
fn stars(s: &str) -> Option<i64> {
    match s {
        "ONE" => Some(1),
        "TWO" => Some(2),
        "THREE" => Some(3),
        "FOUR" => Some(4),
        "FIVE" => Some(5),
        _ => None,
    }
}

/// What a linked profile shows now, read through the APIs (the location's fields, its
/// media count, its reviews with the owner's replies, its recent posts): every signal
/// known. `None` without an access token: nothing can be read.
pub async fn observe(ctx: &Ctx, location: &str) -> Result<Option<Reading>, JobError> {
    if token(ctx).is_none() {
        return Ok(None);
    }
    let g = &ctx.settings.providers.gbp;
    let (account, loc) = parse_location(location).map_err(JobError::Invalid)?;
    let v1 = g.business_information_url.trim_end_matches('/');
    let v4 = format!(
        "{}/v4/accounts/{account}/locations/{loc}",
        g.v4_url.trim_end_matches('/')
    );
    let l: Location = read(
        ctx,
        &format!("{v1}/v1/locations/{loc}?readMask={READ_MASK}"),
    )
    .await?;
    let media: Media = read(ctx, &format!("{v4}/media?pageSize=100")).await?;
    let reviews: Reviews = read(ctx, &format!("{v4}/reviews?pageSize=50")).await?;
    let posts: Posts = read(ctx, &format!("{v4}/localPosts?pageSize=10")).await?;
    let month_ago = ctx.now() - 30 * cep_shared::clock::DAY;
    let recent = posts.local_posts.iter().any(|p| {
        p.create_time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t.timestamp_millis() >= month_ago)
    });
    let listed = reviews.reviews.len();
    let replied = reviews
        .reviews
        .iter()
        .filter(|r| r.review_reply.is_some())
        .count();
    let count = reviews.total_review_count.unwrap_or(listed as u32);
    let filled = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.trim().is_empty());
    let signals = ProfileSignals {
        has_profile: true,
        // Managed through the owner's account: the profile is claimed.
        claimed: true,
        photos: media
            .total_media_item_count
            .unwrap_or(media.media_items.len() as u32),
        reviews: count,
        rating: if count > 0 {
            reviews.average_rating.unwrap_or(0.0)
        } else {
            0.0
        },
        posted_last_30_days: recent,
        services_listed: !l.service_items.is_empty(),
        hours_listed: l
            .regular_hours
            .as_ref()
            .is_some_and(|h| !h.periods.is_empty()),
        website_linked: filled(&l.website_uri),
        description: l.profile.as_ref().is_some_and(|p| filled(&p.description)),
        owner_reply_share: if listed > 0 {
            replied as f64 / listed as f64
        } else {
            0.0
        },
        website: None,
        known: None,
    };
    Ok(Some(Reading {
        signals,
        location: l,
        reviews,
    }))
}

/// Links a client to its Business Profile location.
pub async fn link(ctx: &Ctx, client_id: &str, location: &str) -> Result<(), JobError> {
    parse_location(location).map_err(JobError::Invalid)?;
    let linked = sqlx::query("UPDATE clients SET gbp_location = $2 WHERE id = $1")
        .bind(client_id)
        .bind(location)
        .execute(ctx.store.pool())
        .await?;
    if linked.rows_affected() == 0 {
        return Err(JobError::Invalid(format!("no client `{client_id}`")));
    }
    Ok(())
}

/// A read of Google's Business Profile APIs, under the `gbp` budget.
pub(super) async fn read<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    url: &str,
) -> Result<T, JobError> {
    let req = ctx
        .http
        .get(url)
        .bearer_auth(token(ctx).unwrap_or_default());
    provider::call(ctx, Provider::Gbp, "", req).await?.json()
}

/// One edit, made once: recorded before it is made, so a retry after it was made
/// skips it. Returns whether it was made (or recorded, in dry run) now.
async fn edit(
    ctx: &Ctx,
    c: &Client<'_>,
    kind: &str,
    target: &str,
    verb: &str,
    url: &str,
    body: &serde_json::Value,
) -> Result<bool, JobError> {
    let id = stable_id("gbpedit", &[c.id, kind, target]);
    let now = ctx.now();
    let pool = ctx.store.pool();
    let dry_run = ctx.settings.providers.gbp.dry_run;
    let request = serde_json::to_string(body)?;
    // A row in dry run (or one that failed) is made once dry run is off; one applying,
    // applied or unknown is never made again.
    let claimed: Option<(String,)> = sqlx::query_as(
        "INSERT INTO gbp_edits (id, client_id, location, kind, target, request, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, request = excluded.request, updated_at = excluded.updated_at
         WHERE gbp_edits.status IN ($9, $10) AND excluded.status = $11
         RETURNING id",
    )
    .bind(&id)
    .bind(c.id)
    .bind(c.location)
    .bind(kind)
    .bind(target)
    .bind(&request)
    .bind(if dry_run {
        EditStatus::DryRun
    } else {
        EditStatus::Applying
    }
    .as_str())
    .bind(now)
    .bind(EditStatus::DryRun.as_str())
    .bind(EditStatus::Failed.as_str())
    .bind(EditStatus::Applying.as_str())
    .fetch_optional(pool)
    .await?;
    if claimed.is_none() || dry_run {
        return Ok(claimed.is_some());
    }
    let outcome = async {
        provider::take_budget(ctx, Provider::GbpEdits, c.location).await?;
        let req = match verb {
            "PATCH" => ctx.http.patch(url),
            "PUT" => ctx.http.put(url),
            _ => ctx.http.post(url),
        }
        .bearer_auth(token(ctx).unwrap_or_default())
        .json(body);
        provider::call(ctx, Provider::Gbp, "", req).await
    }
    .await;
    match outcome {
        Ok(reply) => {
            let created: Option<Created> = serde_json::from_slice(&reply.body).ok();
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE gbp_edits SET status = $4, response = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(&id)
            .bind(provider::snippet(&reply.body))
            .bind(ctx.now())
            .bind(EditStatus::Applied.as_str())
            .execute(&mut *tx)
            .await?;
            if kind == "post" {
                sqlx::query("UPDATE posts SET published_at = $2, gbp_post = $3 WHERE id = $1")
                    .bind(target)
                    .bind(ctx.now())
                    .bind(created.and_then(|c| c.name))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        }
        Err(e) => {
            // Not made (a refusal, our budget, a 5xx): `failed`, free for the retry. A
            // post whose answer never came may exist: `unknown`, never posted again.
            let maybe_made = kind == "post" && e.may_have_run();
            let status = if maybe_made {
                EditStatus::Unknown
            } else {
                EditStatus::Failed
            };
            sqlx::query(
                "UPDATE gbp_edits SET status = $2, response = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(&id)
            .bind(status.as_str())
            .bind(e.to_string())
            .bind(ctx.now())
            .execute(pool)
            .await?;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_must_name_an_account_and_a_location() {
        assert_eq!(
            parse_location("accounts/123/locations/456"),
            Ok(("123", "456"))
        );
        for bad in [
            "locations/456",
            "accounts/1/locations/",
            "accounts/1/locations/4/x",
            "accounts/../locations/4",
        ] {
            assert!(parse_location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn review_replies_follow_the_stars() {
        assert!(
            review_reply("Bright Smiles", Some("Ana Diaz"), Some("FIVE"))
                .starts_with("Thank you, Ana!")
        );
        assert!(review_reply("Bright Smiles", None, Some("ONE")).contains("sorry"));
    }
}
