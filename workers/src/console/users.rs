//! Console users: an email, a role and an argon2id password hash, kept in the store.
//! `cep user add | passwd | disable` manage them; the console signs them in.

use crate::{Ctx, JobError};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use cep_shared::ids::stable_id;
use cep_shared::vocabulary::Role;

/// The shortest password taken.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: hashing cost grows with it, and no one types more.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A user as the console knows it once signed in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
}

/// `text` as a stored email: trimmed, lowercase, and shaped like an address.
pub fn email(text: &str) -> Result<String, JobError> {
    let e = text.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.contains('@'))
        && !e.chars().any(char::is_whitespace);
    if ok {
        Ok(e)
    } else {
        Err(JobError::Invalid(format!(
            "{text:?} is not an email address"
        )))
    }
}

fn check_password(password: &str) -> Result<(), JobError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(JobError::Invalid(format!(
            "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The argon2id hash of `password` with a fresh salt, as a PHC string.
pub fn hash(password: &str) -> Result<String, JobError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| JobError::Transient(format!("no randomness for a salt: {e}")))?;
    let salt = SaltString::encode_b64(&bytes)
        .map_err(|e| JobError::Transient(format!("cannot encode a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| JobError::Transient(format!("cannot hash the password: {e}")))
}

/// Whether `password` is the one `phc` was made from.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A random password of 20 letters and digits, for a user added without one.
pub fn generate_password() -> Result<String, JobError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|e| JobError::Transient(format!("no randomness for a password: {e}")))?;
    // 256 is not a multiple of 57: the first letters are a little likelier, which costs
    // a fraction of a bit of the ~117.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// Adds a user; refused when the address has one already.
pub async fn add(
    ctx: &Ctx,
    email_text: &str,
    role: Role,
    password: &str,
) -> Result<User, JobError> {
    let email = email(email_text)?;
    check_password(password)?;
    let phc = hash(password)?;
    let id = stable_id("usr", &[&email]);
    let added = sqlx::query(
        "INSERT INTO users (id, email, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(&id)
    .bind(&email)
    .bind(role.as_str())
    .bind(&phc)
    .bind(ctx.now())
    .execute(ctx.store.pool())
    .await?;
    if added.rows_affected() == 0 {
        return Err(JobError::Invalid(format!(
            "{email} is a user already (`cep user passwd` sets a new password)"
        )));
    }
    Ok(User { id, email, role })
}

/// Sets a user's password and signs them out everywhere.
pub async fn set_password(ctx: &Ctx, email_text: &str, password: &str) -> Result<(), JobError> {
    let email = email(email_text)?;
    check_password(password)?;
    let phc = hash(password)?;
    let user = find(ctx, &email).await?;
    let mut tx = ctx.store.pool().begin().await?;
    sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(&user.0.id)
        .bind(&phc)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(&user.0.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Disables a user: their sessions end and they cannot sign in. `false` when they were
/// disabled already.
pub async fn disable(ctx: &Ctx, email_text: &str) -> Result<bool, JobError> {
    let email = email(email_text)?;
    let user = find(ctx, &email).await?;
    let mut tx = ctx.store.pool().begin().await?;
    let changed =
        sqlx::query("UPDATE users SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL")
            .bind(&user.0.id)
            .bind(ctx.now())
            .execute(&mut *tx)
            .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(&user.0.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(changed.rows_affected() == 1)
}

/// A user by address, with their hash and whether they are disabled.
pub async fn find(ctx: &Ctx, email: &str) -> Result<(User, String, bool), JobError> {
    find_optional(ctx, email)
        .await?
        .ok_or_else(|| JobError::Invalid(format!("no user {email}")))
}

pub async fn find_optional(
    ctx: &Ctx,
    email: &str,
) -> Result<Option<(User, String, bool)>, JobError> {
    let row: Option<(String, String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, email, role, password_hash, disabled_at FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(ctx.store.pool())
    .await?;
    row.map(|(id, email, role, phc, disabled)| {
        let role = role
            .parse()
            .map_err(|e| JobError::Invalid(format!("user {email}: {e}")))?;
        Ok((User { id, email, role }, phc, disabled.is_some()))
    })
    .transpose()
}

/// Every user, for `cep user list`: address, role, disabled.
pub async fn list(ctx: &Ctx) -> Result<Vec<(String, String, bool)>, JobError> {
    let rows: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT email, role, disabled_at FROM users ORDER BY email")
            .fetch_all(ctx.store.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(e, r, d)| (e, r, d.is_some()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(
            h,
            hash("correct horse battery").unwrap(),
            "each hash has its salt"
        );
    }

    #[test]
    fn emails_are_kept_lowercase_and_must_look_like_addresses() {
        assert_eq!(
            email(" Owner@Agency.Example ").unwrap(),
            "owner@agency.example"
        );
        for bad in [
            "owner",
            "@agency.example",
            "owner@agency",
            "a b@c.example",
            "a@b@c.example",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_passwords_are_long_enough_and_differ() {
        let (a, b) = (generate_password().unwrap(), generate_password().unwrap());
        assert_eq!(a.chars().count(), 20);
        assert!(check_password(&a).is_ok());
        assert_ne!(a, b);
    }
}
