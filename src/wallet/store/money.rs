//! The money path: commands applied in batches (one user's) and groups
//! (several users', one commit), each command decided on its own; and the
//! [`MoneyConn`] port through which another area (billing) moves money
//! inside its own transaction. The engines' adapters are `postgres.rs` and
//! `sqlite.rs`.

use std::collections::HashMap;

use super::{WalletStore, postgres, sqlite};
use crate::platform::sql::{StoreError, in_tx};
use crate::wallet::model::{MoneyCommand, Outcome};

impl WalletStore {
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
    ///    balance ([`crate::wallet::rules::apply`]), writing its ledger entry, outbox event
    ///    and stored answer ([`crate::wallet::StoredAnswer`]);
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
pub(super) fn fill_repeats(
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
