//! The events the wallet publishes: `balance_updated`, keyed by user id.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use super::model::{EntryKind, LedgerEntry, Wallet};
use crate::events::topic::BALANCE_UPDATED;
use crate::platform::sql::StoreError;

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
    crate::events::outbox::insert(
        tx,
        &event.event_id,
        BALANCE_UPDATED,
        &event.user_id,
        &payload,
        now,
    )
    .await
}
