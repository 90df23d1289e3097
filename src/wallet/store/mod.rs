//! The wallet's store port: creating wallets, moving money in batches, and
//! reading balances and history. The money path has one adapter per engine,
//! each on its own typed pool: `postgres.rs` (one call of the server-side
//! `walletctl_apply_group`) and `sqlite.rs` (the same steps from Rust).
//! Everything else is one statement both engines accept, run through
//! [`in_tx!`] so each driver checks it.

mod money;
mod postgres;
mod reads;
mod sqlite;

use money::fill_repeats;
pub use money::{GroupAnswer, MoneyConn};

use super::events::{BalanceUpdated, insert_balance_updated};
use super::model::{EntryKind, HistoryPage, LedgerEntry, Wallet, WalletRead};
use crate::domain::now_ms;
use crate::domain::{Region, UserId};
use crate::platform::audit::audit_record;
use crate::platform::sql::lanes::Lanes;
use crate::platform::sql::{Db, Pools, ReadConsistency, StoreError, in_tx};
use std::sync::Arc;

/// A wallet row as the wallet store reads it: user, region, balance,
/// version, created and updated (ms).
pub(crate) type WalletRow = (String, String, i64, i64, i64, i64);

const WALLET_COLUMNS: &str = "user_id, region, balance, version, created_at_ms, updated_at_ms";
const ENTRY_COLUMNS: &str =
    "id, user_id, kind, amount, balance_after, version, reason, reference, actor, created_at_ms";

/// A row of [`ENTRY_COLUMNS`].
type EntryRow = (
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    String,
    i64,
);

fn wallet_from(r: WalletRow) -> Wallet {
    Wallet {
        user_id: r.0,
        region: r.1,
        balance: r.2,
        version: r.3,
        created_at_ms: r.4,
        updated_at_ms: r.5,
    }
}

fn entry_from(r: EntryRow) -> Result<LedgerEntry, sqlx::Error> {
    Ok(LedgerEntry {
        id: r.0,
        user_id: r.1,
        kind: EntryKind::parse(&r.2)?,
        amount: r.3,
        balance_after: r.4,
        version: r.5,
        reason: r.6,
        reference: r.7,
        actor: r.8,
        created_at_ms: r.9,
    })
}

/// The wallet area's SQL: wallets, the ledger, idempotency keys and the
/// `balance_updated` outbox rows. Cheap to clone; one per process, since
/// it holds the balance reads waiting to be coalesced.
#[derive(Clone)]
pub struct WalletStore {
    db: Db,
    /// Balance reads waiting to be coalesced, by lane (`reads.rs`).
    reads: Arc<Lanes<WalletRow>>,
}

impl WalletStore {
    /// The wallet store over `db`.
    pub fn new(db: Db) -> WalletStore {
        WalletStore {
            db,
            reads: Arc::default(),
        }
    }

    /// The pool handle it runs on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Creates an empty wallet. Refuses if the user already has one.
    pub async fn create_wallet(
        &self,
        user: &UserId,
        region: &Region,
        actor: &str,
    ) -> Result<Wallet, StoreError> {
        let now = now_ms();
        let sql = format!(
            "INSERT INTO wallets (user_id, region, balance, version, created_at_ms, updated_at_ms) VALUES ($1, $2, 0, 0, $3, $3) \
             ON CONFLICT (user_id) DO NOTHING RETURNING {WALLET_COLUMNS}"
        );
        let details = serde_json::json!({ "region": region });
        let wallet = in_tx!(self.db, money, |tx| {
            let row = sqlx::query_as::<_, WalletRow>(&sql)
                .persistent(false)
                .bind(user.as_str())
                .bind(region.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::Exists("wallet"));
            };
            let wallet = wallet_from(row);
            insert_balance_updated!(tx, BalanceUpdated::new(&wallet, 0, None, None, now), now);
            audit_record!(tx, actor, "wallet.create", user.as_str(), &details, now);
            wallet
        });
        self.db
            .replicas()
            .remember_region(&wallet.user_id, &wallet.region);
        self.db.outbox_written();
        Ok(wallet)
    }

    /// Reads a wallet with the asked-for consistency.
    pub async fn wallet(
        &self,
        user: &UserId,
        consistency: ReadConsistency,
    ) -> Result<WalletRead, StoreError> {
        let (row, source) = match self.db.pools() {
            Pools::Sqlite { readers, .. } => {
                let sql = format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE user_id = $1");
                let row = sqlx::query_as::<_, WalletRow>(&sql)
                    .bind(user.as_str())
                    .fetch_optional(readers)
                    .await?;
                (row, "embedded".to_owned())
            }
            Pools::Postgres { .. } => {
                self.db.refresh_assignments_if_stale().await;
                let targets = self.db.replicas().targets(user, consistency);
                reads::read(self, targets, consistency, user.to_string()).await?
            }
        };
        let wallet = wallet_from(row.ok_or(StoreError::NotFound("wallet"))?);
        self.db
            .replicas()
            .remember_region(&wallet.user_id, &wallet.region);
        Ok(WalletRead { wallet, source })
    }

    /// A page of a wallet's ledger, newest first, read like a balance.
    pub async fn history(
        &self,
        user: &UserId,
        before: Option<i64>,
        limit: u32,
        consistency: ReadConsistency,
    ) -> Result<HistoryPage, StoreError> {
        // Existence first, so an unknown user is a 404 rather than an empty page.
        self.wallet(user, consistency).await?;
        let limit = limit.clamp(1, 500);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        let (before, fetch) = (before.unwrap_or(i64::MAX), i64::from(limit) + 1);
        let rows = match self.db.pools() {
            Pools::Sqlite { readers, .. } => {
                sqlx::query_as::<_, EntryRow>(&sql)
                    .bind(user.as_str())
                    .bind(before)
                    .bind(fetch)
                    .fetch_all(readers)
                    .await?
            }
            Pools::Postgres { .. } => {
                let targets = self.db.replicas().targets(user, consistency);
                let (rows, _) = self
                    .db
                    .replicas()
                    .read(targets, |conn, prepare| {
                        let sql = sql.clone();
                        let user = user.to_string();
                        Box::pin(async move {
                            sqlx::query_as::<_, EntryRow>(&sql)
                                .persistent(prepare)
                                .bind(user)
                                .bind(before)
                                .bind(fetch)
                                .fetch_all(conn)
                                .await
                        })
                    })
                    .await?;
                rows
            }
        };
        let mut entries = rows
            .into_iter()
            .map(entry_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next_before = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(HistoryPage {
            entries,
            next_before,
        })
    }

    /// The sum of a wallet's ledger on the primary: equals its balance, always.
    pub async fn ledger_sum(&self, user: &UserId) -> Result<(i64, i64), StoreError> {
        const SQL: &str = "SELECT CAST(COALESCE(SUM(l.amount), 0) AS BIGINT), w.balance FROM wallets w \
             LEFT JOIN ledger_entries l ON l.user_id = w.user_id WHERE w.user_id = $1 GROUP BY w.balance";
        let row = in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (i64, i64)>(SQL)
                .persistent(false)
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await?
        });
        row.ok_or(StoreError::NotFound("wallet"))
    }

    /// Up to 1,000 wallets with ids after `after`, in id order, each with
    /// its balance and the sum of its ledger on the primary: `(user,
    /// balance, sum)`. The two are equal, always; reconcile checks it.
    pub async fn ledger_sums_after(
        &self,
        after: &str,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        const SQL: &str = "SELECT w.user_id, w.balance, CAST(COALESCE(SUM(l.amount), 0) AS BIGINT) \
             FROM (SELECT user_id, balance FROM wallets WHERE user_id > $1 ORDER BY user_id LIMIT 1000) w \
             LEFT JOIN ledger_entries l ON l.user_id = w.user_id GROUP BY w.user_id, w.balance ORDER BY w.user_id";
        Ok(in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (String, i64, i64)>(SQL)
                .persistent(false)
                .bind(after)
                .fetch_all(&mut *tx)
                .await?
        }))
    }

    /// Wallets per region, on the primary.
    pub async fn users_per_region(&self) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str =
            "SELECT region, CAST(COUNT(*) AS BIGINT) FROM wallets GROUP BY region ORDER BY region";
        Ok(in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, (String, i64)>(SQL)
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?
        }))
    }
}
