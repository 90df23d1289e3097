//! The audit trail: who did what to which wallet, token or region, and why.
//! Rows are appended inside the transaction of the change they describe and
//! never updated or deleted.

use crate::platform::sql::{Db, StoreError, in_tx};

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

/// The audit trail's reader (rows are written by `audit_record!` inside
/// each area's own transactions). Cheap to clone.
#[derive(Clone)]
pub struct AuditStore {
    db: Db,
}

impl AuditStore {
    /// The audit trail over `db`.
    pub fn new(db: Db) -> AuditStore {
        AuditStore { db }
    }

    /// The newest audit entries, optionally for one target.
    pub async fn audit_entries(
        &self,
        target: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        const SQL: &str = "SELECT id, actor, action, target, details, created_at_ms FROM audit_log \
             WHERE ($1 = '' OR target = $1) ORDER BY id DESC LIMIT $2";
        let rows = in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (i64, String, String, String, String, i64)>(SQL)
                .persistent(false)
                .bind(target.unwrap_or_default())
                .bind(i64::from(limit.clamp(1, 10_000)))
                .fetch_all(&mut *tx)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, actor, action, target, details, created_at_ms)| AuditEntry {
                    id,
                    actor,
                    action,
                    target,
                    details,
                    created_at_ms,
                },
            )
            .collect())
    }
}

/// Appends to the audit trail inside the caller's transaction `$tx` (of
/// either engine); `?` leaves the caller on failure.
macro_rules! audit_record {
    ($tx:ident, $actor:expr, $action:expr, $target:expr, $details:expr, $now:expr) => {
        sqlx::query("INSERT INTO audit_log (actor, action, target, details, created_at_ms) VALUES ($1, $2, $3, $4, $5)")
            .persistent(false)
            .bind($actor)
            .bind($action)
            .bind($target)
            .bind(($details).to_string())
            .bind($now)
            .execute(&mut *$tx)
            .await?
    };
}
pub(crate) use audit_record;
