//! The audit trail: who did what to which wallet, token or region, and why.
//! Rows are appended inside the transaction of the change they describe and
//! never updated or deleted.

use sqlx::Row;

use crate::platform::sql::{Store, StoreError};

/// One row of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// Who: a token's name, or the operator running the CLI.
    pub actor: String,
    /// What: `wallet.create`, `wallet.adjust`, `shards.assign`.
    pub action: String,
    /// On what: a user id or a region.
    pub target: String,
    /// The details, as JSON text (amount, reason, replicas…).
    pub details: String,
    /// When, ms since the epoch.
    pub created_at_ms: i64,
}

impl Store {
    /// The newest audit entries, optionally for one target.
    pub async fn audit_entries(
        &self,
        target: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut tx = self.tx(false).await?;
        let rows = sqlx::query(
            "SELECT id, actor, action, target, details, created_at_ms FROM audit_log \
             WHERE ($1 = '' OR target = $1) ORDER BY id DESC LIMIT $2",
        )
        .persistent(false)
        .bind(target.unwrap_or_default())
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    action: r.try_get(2)?,
                    target: r.try_get(3)?,
                    details: r.try_get(4)?,
                    created_at_ms: r.try_get(5)?,
                })
            })
            .collect()
    }
}

/// Appends to the audit trail inside the caller's transaction.
pub(crate) async fn record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    actor: &str,
    action: &str,
    target: &str,
    details: &serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (actor, action, target, details, created_at_ms) VALUES ($1, $2, $3, $4, $5)")
        .persistent(false)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(details.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
