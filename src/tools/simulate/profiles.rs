//! The simulated world's Business Profiles: a local service answering the Business
//! Profile APIs the optimization layer reads and edits, in the shapes Google answers.
//! A won client's profile starts as its prospect's signals; an edit the layer makes
//! changes it, so the weekly reading measures what the work did.

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use cep_shared::Clock;
use cep_shared::signals::ProfileSignals;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::performance::{self, Review, Shape};
use cep_shared::clock::DAY;

/// One simulated profile.
#[derive(Debug, Clone, Default)]
pub(super) struct Profile {
    pub(super) website: Option<String>,
    pub(super) description: Option<String>,
    pub(super) hours: bool,
    pub(super) services: bool,
    pub(super) photos: u32,
    pub(super) reviews: Vec<Review>,
    /// Reviews have been left up to here.
    pub(super) reviewed_to: i64,
    /// When each post was published.
    pub(super) posts: Vec<i64>,
    /// The business's line of work, for the searches that find it.
    pub(super) category: String,
}

impl Profile {
    /// How complete the profile is, 0 to 1: what a customer comparing listings sees.
    fn completeness(&self, now: i64) -> f64 {
        let checks = [
            self.website.is_some(),
            self.description.is_some(),
            self.hours,
            self.services,
            self.photos >= 10,
            self.reviews.len() >= 10,
            self.posts.iter().any(|at| *at >= now - 30 * DAY),
        ];
        checks.iter().filter(|c| **c).count() as f64 / checks.len() as f64
    }

    /// What its figures grow with, now.
    fn shape(&self, now: i64) -> Shape<'_> {
        Shape {
            completeness: self.completeness(now),
            website: self.website.is_some(),
            category: &self.category,
        }
    }

    /// A profile showing what `s` says (an unknown signal is taken as absent: the
    /// world's profile has to be something).
    pub(super) fn from_signals(
        s: &ProfileSignals,
        website: Option<&str>,
        category: &str,
        now: i64,
    ) -> Self {
        let count = s.reviews as usize;
        let replied = (s.owner_reply_share * count as f64).round() as usize;
        // Stars around the rating: a mix of fours and fives, or of twos and threes.
        let stars = |i: usize| -> u8 {
            let high = if s.rating >= 4.5 {
                5
            } else if s.rating >= 3.5 {
                4
            } else {
                3
            };
            if i % 3 == 2 { high - 1 } else { high }
        };
        Profile {
            website: s
                .website_linked
                .then(|| website.unwrap_or("https://example.com/").to_owned()),
            description: s.description.then(|| "A local business.".to_owned()),
            hours: s.hours_listed,
            services: s.services_listed,
            photos: s.photos,
            // The reviews it has were left over the year before, oldest first.
            reviews: (0..count)
                .map(|i| {
                    let created = now - ((count - i) as i64 * 365 * DAY) / (count as i64 + 1);
                    Review {
                        stars: stars(i),
                        created,
                        replied: (i < replied).then_some(created + DAY),
                    }
                })
                .collect(),
            reviewed_to: now,
            category: category.to_owned(),
            posts: if s.posted_last_30_days {
                vec![now - 10 * DAY]
            } else {
                Vec::new()
            },
        }
    }
}

#[derive(Clone)]
pub(super) struct Profiles {
    by_location: Arc<Mutex<BTreeMap<String, Profile>>>,
    clock: Clock,
}

impl Profiles {
    pub(super) fn new(clock: Clock) -> Self {
        Self {
            by_location: Arc::default(),
            clock,
        }
    }

    pub(super) fn insert(&self, location: &str, p: Profile) {
        self.lock().insert(location.to_owned(), p);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Profile>> {
        self.by_location
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on a location's profile; 404 for one the world does not have.
    fn with<T>(
        &self,
        loc: &str,
        f: impl FnOnce(&mut Profile) -> T,
    ) -> Result<T, axum::http::StatusCode> {
        self.lock()
            .get_mut(loc)
            .map(f)
            .ok_or(axum::http::StatusCode::NOT_FOUND)
    }
}

type Answer = Result<Json<Value>, axum::http::StatusCode>;

fn rfc3339(ms: i64) -> String {
    cep_shared::clock::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn location(
    State(p): State<Profiles>,
    Path(loc): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    // `locations/{l}:fetchMultiDailyMetricsTimeSeries` is the Performance API's.
    if let Some(loc) = loc.strip_suffix(":fetchMultiDailyMetricsTimeSeries") {
        let now = p.clock.now_millis();
        return p.with(loc, |x| {
            Json(performance::daily(
                loc,
                &x.shape(now),
                query.as_deref().unwrap_or(""),
            ))
        });
    }
    p.with(&loc, |x| {
        let mut body = json!({ "name": format!("locations/{loc}") });
        if let Some(w) = &x.website {
            body["websiteUri"] = json!(w);
        }
        if let Some(d) = &x.description {
            body["profile"] = json!({ "description": d });
        }
        if x.hours {
            body["regularHours"] =
                json!({ "periods": [{ "openDay": "MONDAY", "closeDay": "MONDAY" }] });
        }
        if x.services {
            body["serviceItems"] =
                json!([{ "freeFormServiceItem": { "label": { "displayName": "Service" } } }]);
        }
        Json(body)
    })
}

async fn patch_location(
    State(p): State<Profiles>,
    Path(loc): Path<String>,
    Json(body): Json<Value>,
) -> Answer {
    p.with(&loc, |x| {
        if let Some(d) = body["profile"]["description"].as_str() {
            x.description = Some(d.to_owned());
        }
        if let Some(w) = body["websiteUri"].as_str() {
            x.website = Some(w.to_owned());
        }
        Json(json!({ "name": format!("locations/{loc}") }))
    })
}

async fn media(State(p): State<Profiles>, Path((_, loc)): Path<(String, String)>) -> Answer {
    p.with(&loc, |x| {
        Json(json!({ "mediaItems": [], "totalMediaItemCount": x.photos }))
    })
}

async fn reviews(State(p): State<Profiles>, Path((_, loc)): Path<(String, String)>) -> Answer {
    let now = p.clock.now_millis();
    p.with(&loc, |x| {
        let completeness = x.completeness(x.reviewed_to);
        performance::leave_reviews(&loc, &mut x.reviews, &mut x.reviewed_to, completeness, now);
        let names = ["ONE", "TWO", "THREE", "FOUR", "FIVE"];
        // Newest first, as Google lists them.
        let list: Vec<Value> = x
            .reviews
            .iter()
            .enumerate()
            .rev()
            .take(50)
            .map(|(i, r)| {
                let mut body = json!({
                    "reviewId": format!("r{i}"),
                    "starRating": names[usize::from(r.stars).clamp(1, 5) - 1],
                    "reviewer": { "displayName": "A neighbour" },
                    "createTime": rfc3339(r.created),
                });
                if let Some(at) = r.replied {
                    body["reviewReply"] =
                        json!({ "comment": "Thank you!", "updateTime": rfc3339(at) });
                }
                body
            })
            .collect();
        let n = x.reviews.len();
        let mean = x.reviews.iter().map(|r| f64::from(r.stars)).sum::<f64>() / n.max(1) as f64;
        Json(json!({ "reviews": list, "averageRating": mean, "totalReviewCount": n }))
    })
}

async fn reply(
    State(p): State<Profiles>,
    Path((_, loc, review)): Path<(String, String, String)>,
) -> Answer {
    let now = p.clock.now_millis();
    p.with(&loc, |x| {
        if let Some(r) = review
            .strip_prefix('r')
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| x.reviews.get_mut(i))
        {
            r.replied.get_or_insert(now);
        }
        Json(json!({ "comment": "ok" }))
    })
}

async fn posts(State(p): State<Profiles>, Path((_, loc)): Path<(String, String)>) -> Answer {
    p.with(&loc, |x| {
        let list: Vec<Value> = x
            .posts
            .iter()
            .map(|at| json!({ "createTime": rfc3339(*at) }))
            .collect();
        Json(json!({ "localPosts": list }))
    })
}

async fn publish(State(p): State<Profiles>, Path((_, loc)): Path<(String, String)>) -> Answer {
    let now = p.clock.now_millis();
    p.with(&loc, |x| {
        x.posts.push(now);
        Json(json!({ "name": format!("locations/{loc}/localPosts/{}", x.posts.len()) }))
    })
}

async fn keywords(State(p): State<Profiles>, Path(loc): Path<String>) -> Answer {
    let now = p.clock.now_millis();
    p.with(&loc, |x| Json(performance::keywords(&loc, &x.shape(now))))
}

/// The simulated APIs, served on a loopback port; returns its base URL.
pub(super) async fn serve(profiles: Profiles) -> anyhow::Result<String> {
    let v4 = "/v4/accounts/{account}/locations/{location}";
    let app = Router::new()
        .route(
            "/v1/locations/{location}",
            get(location).patch(patch_location),
        )
        .route(&format!("{v4}/media"), get(media))
        .route(&format!("{v4}/reviews"), get(reviews))
        .route(&format!("{v4}/reviews/{{review}}/reply"), put(reply))
        .route(&format!("{v4}/localPosts"), get(posts).post(publish))
        .route(
            "/v1/locations/{location}/searchkeywords/impressions/monthly",
            get(keywords),
        )
        .with_state(profiles);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}
