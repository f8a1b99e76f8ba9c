//! The store: SQLite in the embedded default, Postgres in the fleet, one code path.
//!
//! Queries use portable SQL through sqlx's `Any` driver; numbered `$n` parameters work
//! on both. Times are unix milliseconds, money integer cents, documents JSON text.

mod events;

use crate::config::Settings;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored document is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    kind: StoreKind,
}

/// Through the `Any` driver a NULL is bound without its column's type, and Postgres
/// keeps the type a cached statement was first prepared with: a statement first run
/// with a NULL then fails on a real value ("incorrect binary data format"). Unnamed
/// statements are typed per execution and cost no extra round trip.
fn without_statement_cache(url: &str) -> String {
    if url.contains("statement-cache-capacity=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}statement-cache-capacity=0")
}

impl Store {
    /// Opens the store the settings choose: Postgres at `backends.database_url`, else
    /// SQLite in `data_dir/cep.db`.
    pub async fn open(settings: &Settings) -> Result<Self, StoreError> {
        match &settings.backends.database_url {
            Some(url) => Self::connect(url).await,
            None => {
                let dir = &settings.data_dir;
                std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                    path: dir.display().to_string(),
                    source,
                })?;
                let path = dir.join("cep.db");
                Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
            }
        }
    }

    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            StoreKind::Sqlite
        } else {
            StoreKind::Postgres
        };
        let target = redact_url(url);
        let options = match kind {
            // One writer at a time is what SQLite does anyway; one connection avoids
            // "database is locked" on lock upgrades. WAL lets readers of other
            // processes (`cep layer`, tests) in.
            StoreKind::Sqlite => AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(60))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        Ok(())
                    })
                }),
            StoreKind::Postgres => AnyPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10)),
        };
        let url = match kind {
            StoreKind::Sqlite => url.to_owned(),
            StoreKind::Postgres => without_statement_cache(url),
        };
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect { target, source })?;
        Ok(Self { pool, kind })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Applies every pending migration (forward only).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        self.register_layers().await
    }

    /// Whether every migration this binary knows has been applied.
    pub async fn migrations_applied(&self) -> Result<bool, StoreError> {
        // A database nothing was ever migrated into has no migration table at all.
        let table_sql = match self.kind {
            StoreKind::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            StoreKind::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let (tables,): (i64,) = sqlx::query_as(table_sql).fetch_one(&self.pool).await?;
        if tables == 0 {
            return Ok(false);
        }
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_all(&self.pool)
                .await?;
        Ok(MIGRATOR
            .iter()
            .all(|m| applied.iter().any(|(v,)| *v == m.version)))
    }

    async fn register_layers(&self) -> Result<(), StoreError> {
        let now = crate::clock::wall_millis();
        for layer in crate::layer::Layer::ALL {
            sqlx::query(
                "INSERT INTO layers (name, number, container, queue, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET number = $2, container = $3, queue = $4, updated_at = $5",
            )
            .bind(layer.as_str())
            .bind(i64::from(layer.number()))
            .bind(layer.container().map(|c| c.as_str()))
            .bind(layer.as_str())
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}

/// Query parameters that carry a secret in a connection URL (Postgres' `password` and
/// `sslpassword`, and the names other clients use).
const SECRET_PARAMS: [&str; 8] = [
    "password",
    "sslpassword",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "auth",
];

/// A URL fit for logs and output: the password in its user info and the value of every
/// query parameter that carries a secret replaced with `***`. A URL that does not parse
/// keeps only its scheme.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return match text.split_once("://") {
            Some((scheme, _)) if !scheme.is_empty() && !scheme.contains(['@', ':']) => {
                format!("{scheme}://***")
            }
            _ => "***".into(),
        };
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                (
                    k.into_owned(),
                    if secret { "***".into() } else { v.into_owned() },
                )
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("postgres://cep:s3cret@db:5432/cep"),
            "postgres://cep:***@db:5432/cep"
        );
        assert_eq!(redact_url("sqlite://data/cep.db"), "sqlite://data/cep.db");
        assert_eq!(
            redact_url("postgres://db/cep?user=cep&Password=s3cret&sslmode=require"),
            "postgres://db/cep?user=cep&Password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url("postgres://cep:s3cret@db:bad-port/cep"),
            "postgres://***"
        );
        assert!(!redact_url("not a url with s3cret").contains("s3cret"));
    }
}
