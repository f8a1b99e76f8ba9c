//! The Calendly API v2 side of bookings: make sure the organization's webhook
//! subscription points at our `/webhooks/calendly` with our signing key, and notice
//! when Calendly has disabled it (after 24 h of failed deliveries it stops sending and
//! the subscription must be created again).

use crate::clients::provider;
use crate::{Ctx, JobError};
use cep_shared::config::Provider;
use serde::{Deserialize, Serialize};

/// The events bookings and their no-shows are built from.
pub const EVENTS: [&str; 4] = [
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
    "invitee_no_show.deleted",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub uri: String,
    pub callback_url: String,
    /// `active` or `disabled`.
    pub state: String,
}

/// What [`ensure_subscription`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ensured {
    pub subscription: Subscription,
    /// `kept`, `created`, or `recreated` (the old one was disabled).
    pub action: &'static str,
}

fn base(ctx: &Ctx) -> String {
    ctx.settings
        .providers
        .calendly
        .api_url
        .trim_end_matches('/')
        .to_owned()
}

fn token(ctx: &Ctx) -> Result<&str, JobError> {
    ctx.secrets.calendly_api_token.as_deref().ok_or_else(|| {
        JobError::Invalid("CALENDLY_API_TOKEN is not set; the Calendly API needs it".into())
    })
}

/// Our webhook's public address.
pub fn callback_url(ctx: &Ctx) -> String {
    format!(
        "{}/webhooks/calendly",
        ctx.settings.server.public_url.trim_end_matches('/')
    )
}

async fn organization(ctx: &Ctx) -> Result<String, JobError> {
    #[derive(Deserialize)]
    struct Me {
        resource: User,
    }
    #[derive(Deserialize)]
    struct User {
        current_organization: String,
    }
    let req = ctx
        .http
        .get(format!("{}/users/me", base(ctx)))
        .bearer_auth(token(ctx)?);
    let me: Me = provider::call(ctx, Provider::Calendly, "", req)
        .await?
        .json()?;
    Ok(me.resource.current_organization)
}

/// Our subscription in the organization, if there is one.
pub async fn find(ctx: &Ctx, org: &str) -> Result<Option<Subscription>, JobError> {
    #[derive(Deserialize)]
    struct List {
        collection: Vec<Subscription>,
    }
    let url = reqwest::Url::parse_with_params(
        &format!("{}/webhook_subscriptions", base(ctx)),
        &[
            ("organization", org),
            ("scope", "organization"),
            ("count", "100"),
        ],
    )
    .map_err(|e| JobError::Invalid(format!("providers.calendly.api_url: {e}")))?;
    let req = ctx.http.get(url).bearer_auth(token(ctx)?);
    let list: List = provider::call(ctx, Provider::Calendly, "", req)
        .await?
        .json()?;
    let ours = callback_url(ctx);
    Ok(list.collection.into_iter().find(|s| s.callback_url == ours))
}

async fn create(ctx: &Ctx, org: &str) -> Result<Subscription, JobError> {
    #[derive(Deserialize)]
    struct Created {
        resource: Subscription,
    }
    let key = ctx.secrets.calendly_signing_key.as_deref().ok_or_else(|| {
        JobError::Invalid(
            "CALENDLY_WEBHOOK_SIGNING_KEY is not set; webhooks could not be verified".into(),
        )
    })?;
    let body = serde_json::json!({
        "url": callback_url(ctx),
        "events": EVENTS,
        "organization": org,
        "scope": "organization",
        "signing_key": key,
    });
    let req = ctx
        .http
        .post(format!("{}/webhook_subscriptions", base(ctx)))
        .bearer_auth(token(ctx)?)
        .json(&body);
    let c: Created = provider::call(ctx, Provider::Calendly, "", req)
        .await?
        .json()?;
    Ok(c.resource)
}

/// Our subscription as Calendly sees it now (for `cep health`), without changing it.
pub async fn status(ctx: &Ctx) -> Result<Option<Subscription>, JobError> {
    let org = organization(ctx).await?;
    find(ctx, &org).await
}

/// Keeps an active subscription, creates a missing one, and replaces a disabled one.
pub async fn ensure_subscription(ctx: &Ctx) -> Result<Ensured, JobError> {
    let org = organization(ctx).await?;
    match find(ctx, &org).await? {
        Some(s) if s.state == "active" => Ok(Ensured {
            subscription: s,
            action: "kept",
        }),
        Some(disabled) => {
            tracing::warn!(uri = %disabled.uri, "calendly disabled our webhook subscription; recreating it");
            let req = ctx.http.delete(&disabled.uri).bearer_auth(token(ctx)?);
            provider::call(ctx, Provider::Calendly, "", req).await?;
            Ok(Ensured {
                subscription: create(ctx, &org).await?,
                action: "recreated",
            })
        }
        None => Ok(Ensured {
            subscription: create(ctx, &org).await?,
            action: "created",
        }),
    }
}
