//! A TTL cache for research results, shared by every worker replica: on Redis in the
//! fleet (keys expire by themselves), on SQLite embedded (expired rows are ignored and
//! pruned when overwritten).

use super::{Queue, QueueError};

impl Queue {
    /// The cached value under `key`, if any has not expired.
    pub async fn cache_get(&self, key: &str) -> Result<Option<String>, QueueError> {
        match self {
            Queue::Redis(q) => {
                let mut conn = q.conn.clone();
                Ok(::redis::cmd("GET")
                    .arg(format!("{}:cache:{key}", q.prefix))
                    .query_async(&mut conn)
                    .await?)
            }
            Queue::Sqlite(q) => {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT value FROM cache_entries WHERE key = $1 AND expires_at > $2",
                )
                .bind(key)
                .bind(self.clock().now_millis())
                .fetch_optional(&q.pool)
                .await?;
                Ok(row.map(|(v,)| v))
            }
        }
    }

    /// Stores `value` under `key` for `ttl_seconds` (0: not at all).
    pub async fn cache_put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: u64,
    ) -> Result<(), QueueError> {
        if ttl_seconds == 0 {
            return Ok(());
        }
        match self {
            Queue::Redis(q) => {
                let mut conn = q.conn.clone();
                let _: () = ::redis::cmd("SET")
                    .arg(format!("{}:cache:{key}", q.prefix))
                    .arg(value)
                    .arg("EX")
                    .arg(ttl_seconds)
                    .query_async(&mut conn)
                    .await?;
            }
            Queue::Sqlite(q) => {
                let now = self.clock().now_millis();
                let mut tx = q.pool.begin().await?;
                sqlx::query("DELETE FROM cache_entries WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO cache_entries (key, value, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                )
                .bind(key)
                .bind(value)
                .bind(now + ttl_seconds as i64 * 1000)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}
