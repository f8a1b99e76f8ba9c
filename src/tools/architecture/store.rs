//! The record into `architectures`, each finding a `test_results` row linked to it.

use super::record::Record;

/// Stores the record in `architectures` and each finding as a `test_results` row
/// linked to it.
pub async fn store(
    store: &cep_shared::store::Store,
    r: &Record,
    now_ms: i64,
) -> anyhow::Result<()> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("INSERT INTO architectures (id, created_at, document) VALUES ($1, $2, $3)")
        .bind(&r.id)
        .bind(now_ms)
        .bind(serde_json::to_string(r)?)
        .execute(&mut *tx)
        .await?;
    for (i, f) in r.findings.iter().enumerate() {
        sqlx::query(
            "INSERT INTO test_results (id, architecture_id, subject, outcome, details, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(cep_shared::ids::stable_id(
            "test",
            &[&r.id, &i.to_string(), &f.check, &f.key],
        ))
        .bind(&r.id)
        .bind(format!("architecture:{}", f.check))
        .bind(f.status.as_str())
        .bind(serde_json::to_string(f)?)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
