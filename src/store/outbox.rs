//! The transactional outbox: events written in the same transaction as the
//! change they describe, then relayed to the event log and marked sent.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use super::wallets::{EntryKind, LedgerEntry, Wallet};
use super::{Dialect, Store, StoreError, now_ms};

/// The logical topic of wallet balance changes.
pub const BALANCE_UPDATED: &str = "balance_updated";

/// An event waiting in (or relayed from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Outbox row id: the relay's order.
    pub id: i64,
    /// Unique id consumers use to drop duplicates.
    pub event_id: String,
    /// Logical topic, without any configured prefix.
    pub topic: String,
    /// Partition key: the user id.
    pub key: String,
    /// JSON payload.
    pub payload: String,
}

/// The payload of a `balance_updated` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceUpdated {
    /// Unique per event; duplicates share it.
    pub event_id: String,
    /// Always `balance_updated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The wallet's owner.
    pub user_id: String,
    /// The wallet's region.
    pub region: String,
    /// The balance after the change.
    pub balance: i64,
    /// The wallet version after the change: drop events older than one already seen.
    pub version: i64,
    /// The signed change.
    pub delta: i64,
    /// The ledger entry, if the change wrote one.
    pub entry_id: Option<i64>,
    /// What kind of change, if not the wallet's creation.
    pub entry_kind: Option<EntryKind>,
    /// When it was committed, ms since the epoch.
    pub occurred_at_ms: i64,
}

pub(crate) async fn insert_balance_updated(
    tx: &mut Transaction<'static, Any>,
    wallet: &Wallet,
    delta: i64,
    entry: Option<&LedgerEntry>,
    kind: Option<EntryKind>,
    now: i64,
) -> Result<(), StoreError> {
    let event = BalanceUpdated {
        event_id: uuid::Uuid::now_v7().to_string(),
        kind: BALANCE_UPDATED.into(),
        user_id: wallet.user_id.clone(),
        region: wallet.region.clone(),
        balance: wallet.balance,
        version: wallet.version,
        delta,
        entry_id: entry.map(|e| e.id),
        entry_kind: kind,
        occurred_at_ms: now,
    };
    let payload = serde_json::to_string(&event)
        .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
    sqlx::query("INSERT INTO outbox (event_id, topic, key, payload, created_at_ms) VALUES ($1, $2, $3, $4, $5)")
        .persistent(false)
        .bind(&event.event_id)
        .bind(BALANCE_UPDATED)
        .bind(&event.user_id)
        .bind(payload)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Hands up to `limit` unsent events, oldest first, to `publish`, and marks
    /// them sent in the same transaction once `publish` succeeds. On
    /// PostgreSQL the rows are locked with `SKIP LOCKED`, so several relays
    /// share the work; a crash after publishing and before the commit means the
    /// events are published again, and consumers drop them by `event_id`.
    pub async fn relay_outbox<F, Fut, E>(
        &self,
        limit: i64,
        publish: F,
    ) -> Result<usize, RelayError<E>>
    where
        F: FnOnce(Vec<OutboxEvent>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let lock = match self.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let mut tx = self.tx(false).await.map_err(RelayError::Store)?;
        let rows = sqlx::query(&format!(
            "SELECT id, event_id, topic, key, payload FROM outbox WHERE sent_at_ms IS NULL ORDER BY id LIMIT $1{lock}"
        ))
        .persistent(false)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| RelayError::Store(e.into()))?;
        if rows.is_empty() {
            tx.commit().await.map_err(|e| RelayError::Store(e.into()))?;
            return Ok(0);
        }
        let events = rows
            .iter()
            .map(|r| {
                Ok(OutboxEvent {
                    id: r.try_get(0)?,
                    event_id: r.try_get(1)?,
                    topic: r.try_get(2)?,
                    key: r.try_get(3)?,
                    payload: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| RelayError::Store(e.into()))?;
        // Mark exactly the rows this relay locked and published: another
        // relay may hold ids in between (SKIP LOCKED), and if its publish
        // fails those must stay unsent. The ids are integers read just above.
        let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
        let n = events.len();
        publish(events).await.map_err(RelayError::Publish)?;
        sqlx::query(&format!(
            "UPDATE outbox SET sent_at_ms = $1 WHERE id IN ({})",
            ids.join(",")
        ))
        .persistent(false)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| RelayError::Store(e.into()))?;
        tx.commit().await.map_err(|e| RelayError::Store(e.into()))?;
        Ok(n)
    }

    /// How many events wait to be relayed.
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let mut tx = self.tx(false).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE sent_at_ms IS NULL",
        )
        .persistent(false)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Waits until a commit wrote an outbox event (or returns at once if one already did).
    pub async fn outbox_written(&self) {
        self.inner.outbox_notify.notified().await;
    }
}

/// Why a relay round failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError<E> {
    /// Reading or marking the outbox failed.
    #[error("outbox: {0}")]
    Store(StoreError),
    /// The event log refused or timed out.
    #[error("publish: {0}")]
    Publish(E),
}
