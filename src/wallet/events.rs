//! The events the wallet publishes: `balance_updated`, keyed by user id.

use serde::{Deserialize, Serialize};

use super::model::{EntryKind, LedgerEntry, Wallet};
use crate::events::topic::BALANCE_UPDATED;

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

impl BalanceUpdated {
    /// The event for a wallet just changed (or created), with a fresh event id.
    pub(crate) fn new(
        wallet: &Wallet,
        delta: i64,
        entry: Option<&LedgerEntry>,
        kind: Option<EntryKind>,
        now: i64,
    ) -> BalanceUpdated {
        BalanceUpdated {
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
        }
    }

    /// The JSON payload published.
    pub(crate) fn payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Writes `$event` (a [`BalanceUpdated`]) to the outbox inside the caller's
/// transaction `$tx`, keyed by user id so one user's events stay in order.
macro_rules! insert_balance_updated {
    ($tx:ident, $event:expr, $now:expr) => {{
        let event = $event;
        $crate::events::outbox::outbox_insert!(
            $tx,
            &event.event_id,
            $crate::events::topic::BALANCE_UPDATED,
            &event.user_id,
            event.payload(),
            $now
        )
    }};
}
pub(crate) use insert_balance_updated;
