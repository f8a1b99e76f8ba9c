//! Signing in and out, and who a request is. A session is a random token in a cookie
//! (`Secure`, `HttpOnly`, `SameSite=Strict`, expiring with the session); the store keeps
//! only its SHA-256 digest, the user, the session's CSRF token and when it expires.
//! Every form carries that CSRF token and every action checks it and its role on the
//! server. Failed sign-ins are counted per account and per address in the store, so
//! every replica refuses the same guesses.

use super::users::{self, User};
use super::{audit, layout};
use crate::{Ctx, JobError};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cep_shared::clock::{HOUR, MINUTE};
use cep_shared::vocabulary::Role;
use std::net::SocketAddr;

pub const COOKIE: &str = "cep_session";

/// The signed-in user of a request, with the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub struct Signed {
    pub user: User,
    pub csrf: String,
}

/// Why a request is not served.
pub enum Refusal {
    /// Not signed in (or the session ended): to the sign-in page.
    SignIn,
    /// Signed in without the role the page or action needs.
    Role(Role),
    /// A form without its session's CSRF token.
    Csrf,
    /// The store could not answer.
    Failed(JobError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn => Redirect::to("/sign-in").into_response(),
            Refusal::Role(role) => layout::message(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!("This needs the {role} role."),
            ),
            Refusal::Csrf => layout::message(
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form did not come from this session (its CSRF token does not match). Reload the page and try again.",
            ),
            Refusal::Failed(e) => layout::error(e),
        }
    }
}

impl From<JobError> for Refusal {
    fn from(e: JobError) -> Self {
        Refusal::Failed(e)
    }
}

impl From<cep_shared::queue::QueueError> for Refusal {
    fn from(e: cep_shared::queue::QueueError) -> Self {
        Refusal::Failed(e.into())
    }
}

impl Signed {
    /// Who the page is for, as the page shell shows them.
    pub fn shown(&self) -> (&User, &str) {
        (&self.user, &self.csrf)
    }

    /// Refused unless the user's role is `role` or above.
    pub fn require(&self, role: Role) -> Result<(), Refusal> {
        if self.user.role >= role {
            Ok(())
        } else {
            Err(Refusal::Role(role))
        }
    }

    /// Refused unless `token` is this session's CSRF token and the role suffices.
    pub fn may(&self, role: Role, token: &str) -> Result<(), Refusal> {
        if !same(token.as_bytes(), self.csrf.as_bytes()) {
            return Err(Refusal::Csrf);
        }
        self.require(role)
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

use crate::clients::signature::{random_token, token_digest as digest};

/// The session token in a request's cookies.
fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<Ctx> for Signed {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Refusal> {
        let token = token(&parts.headers).ok_or(Refusal::SignIn)?;
        // A session token is 64 hex digits; anything else is not looked up.
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::SignIn);
        }
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT u.id, u.email, u.role, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id
              WHERE s.token_digest = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(digest(&token))
        .bind(ctx.now())
        .fetch_optional(ctx.store.pool())
        .await
        .map_err(JobError::from)?;
        let (id, email, role, csrf) = row.ok_or(Refusal::SignIn)?;
        let role = role
            .parse()
            .map_err(|e| JobError::Invalid(format!("user {email}: {e}")))?;
        Ok(Signed {
            user: User { id, email, role },
            csrf,
        })
    }
}

#[derive(serde::Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
}

/// The peer address, or `unknown` (a router called without a connection).
pub struct Peer(String);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".into(), |c| c.0.ip().to_string()),
        ))
    }
}

/// `POST /sign-in`: a session for the right address and password; a failure counted;
/// too many failures for the account or the address in the window refused with 429.
pub async fn sign_in(
    State(ctx): State<Ctx>,
    Peer(peer): Peer,
    axum::Form(form): axum::Form<SignInForm>,
) -> Response {
    match try_sign_in(&ctx, &peer, form).await {
        Ok(r) => r,
        Err(e) => layout::error(e),
    }
}

async fn try_sign_in(ctx: &Ctx, client: &str, form: SignInForm) -> Result<Response, JobError> {
    let c = &ctx.settings.server.console;
    let now = ctx.now();
    let since = now - i64::from(c.sign_in_window_minutes) * MINUTE;
    let email = form.email.trim().to_lowercase();
    let (failures,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sign_in_failures WHERE at > $3 AND (email = $1 OR client = $2)",
    )
    .bind(&email)
    .bind(client)
    .bind(since)
    .fetch_one(ctx.store.pool())
    .await?;
    if failures >= i64::from(c.sign_in_failures) {
        let mut r = layout::sign_in_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed sign-ins for this account or address: wait and try again."),
        );
        let wait = u64::from(c.sign_in_window_minutes) * 60;
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(r);
    }
    let found = if form.password.chars().count() <= users::MAX_PASSWORD_CHARS {
        users::find_optional(ctx, &email).await?
    } else {
        None
    };
    // Hashing happens for an unknown address too, so the answer's time does not tell
    // which addresses have accounts.
    let phc = found.as_ref().map(|(_, h, _)| h.clone());
    let password = form.password;
    let ok = tokio::task::spawn_blocking(move || {
        users::verify(&password, phc.as_deref().unwrap_or(DECOY_HASH))
    })
    .await
    .unwrap_or(false);
    let user = match found {
        Some((user, _, false)) if ok => user,
        _ => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes)
                .map_err(|e| JobError::Transient(format!("no randomness: {e}")))?;
            sqlx::query(
                "INSERT INTO sign_in_failures (id, email, client, at) VALUES ($1, $2, $3, $4)",
            )
            .bind(hex::encode(bytes))
            .bind(&email)
            .bind(client)
            .bind(now)
            .execute(ctx.store.pool())
            .await?;
            return Ok(layout::sign_in_page(
                StatusCode::UNAUTHORIZED,
                Some("The email or the password is wrong."),
            ));
        }
    };
    let token = random_token()?;
    let csrf = random_token()?;
    let hours = i64::from(c.session_hours);
    sqlx::query(
        "INSERT INTO sessions (token_digest, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(digest(&token))
    .bind(&user.id)
    .bind(&csrf)
    .bind(now)
    .bind(now + hours * HOUR)
    .execute(ctx.store.pool())
    .await?;
    // Old failures and ended sessions go as someone signs in: the tables stay small.
    sqlx::query("DELETE FROM sign_in_failures WHERE at <= $1")
        .bind(since)
        .execute(ctx.store.pool())
        .await?;
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(ctx.store.pool())
        .await?;
    audit::record(ctx, &user.email, "user.sign_in", &user.id, None, None).await?;
    let cookie = format!(
        "{COOKIE}={token}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Strict",
        hours * 3600
    );
    let mut r = Redirect::to("/inbox").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| JobError::Transient(e.to_string()))?,
    );
    Ok(r)
}

/// The argon2id hash of a password nobody has: verified against when the address has
/// no account, so both answers take as long.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2lnbi1pbi1kZWNveQ$dNDx4w8f1GQyE3rWfA9hJkq0o5vGEzOVgG7yJ0v6k0Y";

/// A form that carries only its session's token (a button).
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// `POST /sign-out`: the session ends.
pub async fn sign_out(
    State(ctx): State<Ctx>,
    signed: Signed,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, Refusal> {
    signed.may(Role::Viewer, &form.csrf)?;
    if let Some(token) = token(&headers) {
        sqlx::query("DELETE FROM sessions WHERE token_digest = $1")
            .bind(digest(&token))
            .execute(ctx.store.pool())
            .await
            .map_err(JobError::from)?;
    }
    audit::record(
        &ctx,
        &signed.user.email,
        "user.sign_out",
        &signed.user.id,
        None,
        None,
    )
    .await?;
    let mut r = Redirect::to("/sign-in").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "cep_session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
        ),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoy_hash_is_a_real_argon2id_hash_so_it_costs_the_same() {
        assert!(argon2::password_hash::PasswordHash::new(DECOY_HASH).is_ok());
        assert!(!users::verify("anything at all", DECOY_HASH));
    }

    #[test]
    fn the_session_token_is_read_from_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cep_session=abc; b=2"),
        );
        assert_eq!(token(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("cep_sessionx=abc"));
        assert_eq!(token(&h), None);
    }
}
