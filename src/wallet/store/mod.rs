//! The wallet's store port: creating wallets, moving money in batches, and
//! reading balances and history. The money path has one adapter per engine,
//! each on its own typed pool: `postgres.rs` (one call of the server-side
//! `walletctl_apply_group`) and `sqlite.rs` (the same steps from Rust).
//! Everything else is one statement both engines accept, run through
//! [`in_tx!`] so each driver checks it.

mod postgres;
mod reads;
mod sqlite;

use super::events::{BalanceUpdated, insert_balance_updated};
use super::model::{
    EntryKind, HistoryPage, LedgerEntry, MoneyCommand, Outcome, Wallet, WalletRead,
};
use crate::domain::{Region, UserId};
use crate::now_ms;
use crate::platform::audit::audit_record;
use crate::platform::sql::lanes::Lanes;
use crate::platform::sql::{Db, Pools, ReadConsistency, StoreError, in_tx};
use std::collections::HashMap;
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

    /// Moves money: see [`WalletStore::apply_batch`]; this is a batch of one.
    pub async fn apply(&self, cmd: &MoneyCommand) -> Result<Outcome, StoreError> {
        self.apply_batch(std::slice::from_ref(cmd))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Failed("empty batch answer".into())))
    }

    /// [`WalletStore::apply_batch`], and if the whole batch fails on a database
    /// error, each command again on its own: no command's answer may depend
    /// on another's bad input. The idempotency keys make the retry safe even
    /// if the failed batch did commit. One answer per command, in order.
    pub async fn apply_batch_or_each(
        &self,
        cmds: &[MoneyCommand],
    ) -> Vec<Result<Outcome, StoreError>> {
        match self.apply_batch(cmds).await {
            Ok(results) => results,
            // Nothing was sent: every command gets the same answer at once.
            Err(e) if e.is_unavailable() => cmds.iter().map(|_| Err(e.duplicate())).collect(),
            Err(e) if cmds.len() > 1 => {
                tracing::warn!(error = %e, commands = cmds.len(), "a wallet batch failed; retrying its commands one at a time");
                metrics::counter!("wallet_batch_retried_total").increment(1);
                let mut each = Vec::with_capacity(cmds.len());
                for cmd in cmds {
                    each.push(self.apply(cmd).await);
                }
                each
            }
            Err(e) => vec![Err(e)],
        }
    }

    /// Applies commands for **one user** in one transaction, in order, each
    /// accepted or refused on its own:
    ///
    /// 1. the wallet row is locked (`FOR UPDATE` on PostgreSQL; SQLite's one
    ///    writer is the lock);
    /// 2. the batch's distinct keys are claimed in (caller, key) order, so two
    ///    batches never wait on each other in a cycle; a key already stored
    ///    answers with the stored result (or a mismatch error). Keys belong
    ///    to the caller: another caller's equal key is another key;
    /// 3. each new command is decided in arrival order against the running
    ///    balance ([`rules::apply`]), writing its ledger entry, outbox event
    ///    and stored answer ([`StoredAnswer`]);
    /// 4. the wallet row is written once, guarded by the version read in 1,
    ///    and the `CHECK (balance >= 0)` constraint stands behind it all.
    ///
    /// One commit (one fsync) then covers the whole batch: that is what lets
    /// a hot wallet go beyond one deduction per commit.
    ///
    /// On PostgreSQL the same steps run inside the server, in
    /// `walletctl_apply_group` (migration 0009), so a batch is one statement.
    pub async fn apply_batch(
        &self,
        cmds: &[MoneyCommand],
    ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let Some(first) = cmds.first() else {
            return Ok(Vec::new());
        };
        if cmds.iter().any(|c| c.user != first.user) {
            return Err(StoreError::Failed(
                "a batch must hold one user's commands".into(),
            ));
        }
        // On PostgreSQL the commit level is set inside the function with
        // set_config(…, true): this transaction only.
        let (mut answers, changed) = self.commit_group(&[cmds]).await?;
        let results = answers.pop().unwrap_or_default();
        if changed {
            self.db.outbox_written();
        }
        Ok(results)
    }

    /// Several users' batches in **one transaction and one commit** (group
    /// commit): each batch holds one user's commands in arrival order, no
    /// user twice. The wallets are locked in user-id order, so two group
    /// transactions never wait on each other in a cycle; each user's batch
    /// follows [`WalletStore::apply_batch`]'s steps and rules exactly. Answers
    /// come back per batch, in the order given.
    pub async fn apply_group(
        &self,
        groups: &[Vec<MoneyCommand>],
    ) -> Result<Vec<Vec<Result<Outcome, StoreError>>>, StoreError> {
        let mut order: Vec<usize> = (0..groups.len())
            .filter(|&i| !groups[i].is_empty())
            .collect();
        for &i in &order {
            let user = &groups[i][0].user;
            if groups[i].iter().any(|c| &c.user != user) {
                return Err(StoreError::Failed(
                    "a batch must hold one user's commands".into(),
                ));
            }
        }
        order.sort_by(|&a, &b| groups[a][0].user.as_str().cmp(groups[b][0].user.as_str()));
        if order
            .windows(2)
            .any(|w| groups[w[0]][0].user == groups[w[1]][0].user)
        {
            return Err(StoreError::Failed(
                "a group must hold each user's batch once".into(),
            ));
        }
        let sorted: Vec<&[MoneyCommand]> = order.iter().map(|&i| groups[i].as_slice()).collect();
        if sorted.is_empty() {
            return Ok(groups.iter().map(|_| Vec::new()).collect());
        }
        // On PostgreSQL the commit level is set inside the function with
        // set_config(…, true): this transaction only.
        let (answers, changed) = self.commit_group(&sorted).await?;
        if changed {
            self.db.outbox_written();
        }
        let mut out: Vec<Vec<Result<Outcome, StoreError>>> =
            groups.iter().map(|_| Vec::new()).collect();
        for (i, a) in order.into_iter().zip(answers) {
            out[i] = a;
        }
        Ok(out)
    }

    /// [`WalletStore::apply_group`], and if the whole group fails on a database
    /// error, each user's batch again on its own (with
    /// [`WalletStore::apply_batch_or_each`]): no command's answer may depend on
    /// another user's bad input. One answer per command, per batch.
    pub async fn apply_group_or_each(
        &self,
        groups: &[Vec<MoneyCommand>],
    ) -> Vec<Vec<Result<Outcome, StoreError>>> {
        if groups.len() == 1 {
            return vec![self.apply_batch_or_each(&groups[0]).await];
        }
        match self.apply_group(groups).await {
            Ok(answers) => answers,
            Err(e) if e.is_unavailable() => groups
                .iter()
                .map(|g| g.iter().map(|_| Err(e.duplicate())).collect())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, users = groups.len(), "a group commit failed; retrying each user's batch on its own");
                metrics::counter!("wallet_batch_retried_total").increment(1);
                let mut each = Vec::with_capacity(groups.len());
                for g in groups {
                    each.push(self.apply_batch_or_each(g).await);
                }
                each
            }
        }
    }

    /// Users' batches (each one user's, the users in id order) in one
    /// transaction: on the commit sessions when `postgres.commit_url` is set
    /// (one round trip), else in an explicit transaction on the primary pool.
    async fn commit_group(&self, groups: &[&[MoneyCommand]]) -> Result<GroupAnswer, StoreError> {
        if let Some(sessions) = self.db.commit_sessions() {
            let mut session = sessions.get().await?;
            let answer = postgres::call_group(self, session.conn(), groups, true).await;
            // Any other error drops (closes) just this session.
            if matches!(&answer, Ok(_) | Err(StoreError::Database(_))) {
                session.finish(true);
            }
            return answer;
        }
        Ok(in_tx!(self.db, primary, |tx| tx
            .apply_group_in(self, groups)
            .await?))
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

/// Each batch's answers, and whether any wallet changed.
pub type GroupAnswer = (Vec<Vec<Result<Outcome, StoreError>>>, bool);

/// A transaction the money path can run in: the caller's own, so that
/// another area (billing) moves money atomically with its own rows. The
/// caller commits, then wakes the relay if the answer says a wallet changed.
/// This is the wallet's whole port for such callers: they lock and read
/// balances and move money through it, never through the wallet's tables.
pub trait MoneyConn {
    /// Locks these users' wallets for the rest of the transaction (call it
    /// with the users in id order, so two transactions never wait on each
    /// other in a cycle) and reads their balances; a user without a wallet
    /// is left out.
    fn lock_balances(
        &mut self,
        users: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, i64>, StoreError>> + Send;

    /// Users' batches (each one user's commands, the users in id order),
    /// each with [`WalletStore::apply_batch`]'s steps, inside this transaction.
    fn apply_group_in(
        &mut self,
        store: &WalletStore,
        groups: &[&[MoneyCommand]],
    ) -> impl Future<Output = Result<GroupAnswer, StoreError>> + Send;

    /// One user's batch inside this transaction.
    fn apply_in(
        &mut self,
        store: &WalletStore,
        cmds: &[MoneyCommand],
    ) -> impl Future<Output = Result<(Vec<Result<Outcome, StoreError>>, bool), StoreError>> + Send
    where
        Self: Send,
    {
        async move {
            let (mut answers, changed) = self.apply_group_in(store, &[cmds]).await?;
            Ok((answers.pop().unwrap_or_default(), changed))
        }
    }
}

/// [`MoneyConn::lock_balances`] on either engine's connection: a no-op
/// update takes the row lock on PostgreSQL; SQLite's one writer is the lock.
macro_rules! lock_balances {
    ($conn:expr, $users:expr) => {{
        let mut balances = HashMap::with_capacity($users.len());
        for user in $users {
            let b: Option<i64> = sqlx::query_scalar(
                "UPDATE wallets SET balance = balance WHERE user_id = $1 RETURNING balance",
            )
            .persistent(false)
            .bind(*user)
            .fetch_optional(&mut *$conn)
            .await?;
            if let Some(b) = b {
                balances.insert((*user).to_owned(), b);
            }
        }
        Ok(balances)
    }};
}

impl MoneyConn for sqlx::PgConnection {
    async fn lock_balances(&mut self, users: &[&str]) -> Result<HashMap<String, i64>, StoreError> {
        lock_balances!(self, users)
    }

    fn apply_group_in(
        &mut self,
        store: &WalletStore,
        groups: &[&[MoneyCommand]],
    ) -> impl Future<Output = Result<GroupAnswer, StoreError>> + Send {
        postgres::apply_group_in(store, self, groups)
    }
}

impl MoneyConn for sqlx::SqliteConnection {
    async fn lock_balances(&mut self, users: &[&str]) -> Result<HashMap<String, i64>, StoreError> {
        lock_balances!(self, users)
    }

    async fn apply_group_in(
        &mut self,
        store: &WalletStore,
        groups: &[&[MoneyCommand]],
    ) -> Result<GroupAnswer, StoreError> {
        let mut answers = Vec::with_capacity(groups.len());
        let mut changed = false;
        for g in groups {
            let (a, c) = sqlite::apply_in(store, self, g).await?;
            answers.push(a);
            changed |= c;
        }
        Ok((answers, changed))
    }
}

/// Answers the commands that repeated a key used earlier in the same batch,
/// as a retry arriving after the first would have been answered.
fn fill_repeats(
    cmds: &[MoneyCommand],
    hashes: &[String],
    mut results: Vec<Option<Result<Outcome, StoreError>>>,
) -> Vec<Result<Outcome, StoreError>> {
    for i in 0..cmds.len() {
        if results[i].is_some() {
            continue;
        }
        let first = cmds
            .iter()
            .position(|c| c.key == cmds[i].key && c.actor == cmds[i].actor)
            .unwrap_or(i);
        results[i] = Some(match &results[first] {
            _ if hashes[first] != hashes[i] => Err(StoreError::IdempotencyKeyReused),
            Some(Ok(o)) => Ok(Outcome {
                result: o.result.clone(),
                replayed: true,
            }),
            Some(Err(e)) => Err(e.duplicate()),
            None => Err(StoreError::Failed("unanswered command".into())),
        });
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(StoreError::Failed("unanswered command".into()))))
        .collect()
}
