//! A report's no-login link: `<public_url>/r/<token>`, 256 random bits the client gets
//! by email or from the operator. The store keeps only the token's digest; a link works
//! until it expires (`reports.link_days`) or an operator revokes it.

use crate::clients::signature::{random_token, token_digest};
use crate::{Ctx, JobError};
use cep_shared::clock::DAY;
use cep_shared::ids::stable_id;

/// A link just made: the only time its token is known.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub id: String,
    pub url: String,
    pub expires_at: i64,
}

/// What a token opens.
#[derive(Debug)]
pub enum Opened {
    /// The report's page, and its id.
    Report {
        report_id: String,
        html: String,
    },
    Expired,
    Revoked,
    Unknown,
}

/// The longest a token in a link is: 64 hex digits.
const TOKEN_LEN: usize = 64;

/// Makes a link to `report_id`, recorded as made by `by`.
pub async fn create(ctx: &Ctx, report_id: &str, by: &str) -> Result<NewLink, JobError> {
    let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM reports WHERE id = $1")
        .bind(report_id)
        .fetch_optional(ctx.store.pool())
        .await?;
    if exists.is_none() {
        return Err(JobError::Invalid(format!("no report `{report_id}`")));
    }
    let token = random_token()?;
    let digest = token_digest(&token);
    let now = ctx.now();
    let expires_at = now + i64::from(ctx.settings.reports.link_days) * DAY;
    let id = stable_id("rln", &[report_id, &digest]);
    sqlx::query(
        "INSERT INTO report_links (id, report_id, token_digest, created_at, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(report_id)
    .bind(&digest)
    .bind(now)
    .bind(by)
    .bind(expires_at)
    .execute(ctx.store.pool())
    .await?;
    Ok(NewLink {
        id,
        url: format!(
            "{}/r/{token}",
            ctx.settings.server.public_url.trim_end_matches('/')
        ),
        expires_at,
    })
}

/// Revokes a link; whether it was open.
pub async fn revoke(ctx: &Ctx, link_id: &str, by: &str) -> Result<bool, JobError> {
    let done = sqlx::query(
        "UPDATE report_links SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(link_id)
    .bind(ctx.now())
    .bind(by)
    .execute(ctx.store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What `token` opens now. A token of the wrong shape is unknown without a lookup.
pub async fn open(ctx: &Ctx, token: &str) -> Result<Opened, JobError> {
    if token.len() != TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Opened::Unknown);
    }
    type Row = (String, i64, Option<i64>, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT l.report_id, l.expires_at, l.revoked_at, r.html FROM report_links l
           LEFT JOIN reports r ON r.id = l.report_id WHERE l.token_digest = $1",
    )
    .bind(token_digest(&token.to_ascii_lowercase()))
    .fetch_optional(ctx.store.pool())
    .await?;
    Ok(match row {
        None | Some((_, _, _, None)) => Opened::Unknown,
        Some((_, _, Some(_), _)) => Opened::Revoked,
        Some((_, expires, _, _)) if expires <= ctx.now() => Opened::Expired,
        Some((report_id, _, None, Some(html))) => Opened::Report { report_id, html },
    })
}

/// A report's links, newest first: (id, made, by, expires, revoked).
pub type LinkRow = (String, i64, String, i64, Option<i64>);

pub async fn of_report(ctx: &Ctx, report_id: &str) -> Result<Vec<LinkRow>, JobError> {
    Ok(sqlx::query_as(
        "SELECT id, created_at, created_by, expires_at, revoked_at FROM report_links
          WHERE report_id = $1 ORDER BY created_at DESC, id LIMIT 50",
    )
    .bind(report_id)
    .fetch_all(ctx.store.pool())
    .await?)
}
