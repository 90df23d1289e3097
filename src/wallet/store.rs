//! Wallets and money movements: one transaction each, on the primary.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::events::insert_balance_updated;
use super::model::{
    EntryKind, HistoryPage, LedgerEntry, MoneyCommand, Outcome, StoredAnswer, Wallet, WalletRead,
};
use super::rules;
use crate::domain::{MAX_BALANCE, Region, UserId};
use crate::now_ms;
use crate::platform::sql::{Dialect, ReadConsistency, Store, StoreError};

const WALLET_COLUMNS: &str = "user_id, region, balance, version, created_at_ms, updated_at_ms";
const ENTRY_COLUMNS: &str =
    "id, user_id, kind, amount, balance_after, version, reason, reference, actor, created_at_ms";

fn wallet_from(row: &AnyRow) -> Result<Wallet, sqlx::Error> {
    Ok(Wallet {
        user_id: row.try_get("user_id")?,
        region: row.try_get("region")?,
        balance: row.try_get("balance")?,
        version: row.try_get("version")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

fn entry_from(row: &AnyRow) -> Result<LedgerEntry, sqlx::Error> {
    Ok(LedgerEntry {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: EntryKind::parse(&row.try_get::<String, _>("kind")?)?,
        amount: row.try_get("amount")?,
        balance_after: row.try_get("balance_after")?,
        version: row.try_get("version")?,
        reason: row.try_get("reason")?,
        reference: row.try_get("reference")?,
        actor: row.try_get("actor")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

impl Store {
    /// Creates an empty wallet. Refuses if the user already has one.
    pub async fn create_wallet(
        &self,
        user: &UserId,
        region: &Region,
        actor: &str,
    ) -> Result<Wallet, StoreError> {
        let now = now_ms();
        let mut tx = self.tx(true).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO wallets (user_id, region, balance, version, created_at_ms, updated_at_ms) VALUES ($1, $2, 0, 0, $3, $3) \
             ON CONFLICT (user_id) DO NOTHING RETURNING {WALLET_COLUMNS}"
        ))
        .persistent(false)
        .bind(user.as_str())
        .bind(region.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::WalletExists);
        };
        let wallet = wallet_from(&row)?;
        insert_balance_updated(&mut tx, &wallet, 0, None, None, now).await?;
        crate::platform::audit::record(
            &mut tx,
            actor,
            "wallet.create",
            user.as_str(),
            &serde_json::json!({"region": region}),
            now,
        )
        .await?;
        tx.commit().await?;
        self.inner
            .replicas
            .remember_region(&wallet.user_id, &wallet.region);
        self.inner.outbox_notify.notify_one();
        Ok(wallet)
    }

    /// Moves money: see [`Store::apply_batch`]; this is a batch of one.
    pub async fn apply(&self, cmd: &MoneyCommand) -> Result<Outcome, StoreError> {
        self.apply_batch(std::slice::from_ref(cmd))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Failed("empty batch answer".into())))
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
    /// `walletctl_apply_batch` (migration 0003), so a batch is one statement.
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
        if self.dialect() == Dialect::Postgres {
            return self.apply_batch_in_server(cmds).await;
        }
        let now = now_ms();
        let hashes: Vec<String> = cmds.iter().map(MoneyCommand::request_hash).collect();
        let mut results: Vec<Option<Result<Outcome, StoreError>>> =
            cmds.iter().map(|_| None).collect();
        // The first occurrence of each (caller, key): later ones are repeats,
        // answered from it once the batch is decided.
        let mut firsts: Vec<usize> = Vec::new();
        for (i, cmd) in cmds.iter().enumerate() {
            if !firsts
                .iter()
                .any(|&j| cmds[j].key == cmd.key && cmds[j].actor == cmd.actor)
            {
                firsts.push(i);
            }
        }
        let mut tx = self.tx(true).await?;

        // 1. The wallet (SQLite has one writer: the transaction is the lock).
        let row = sqlx::query("SELECT balance, version, region FROM wallets WHERE user_id = $1")
            .persistent(false)
            .bind(first.user.as_str())
            .fetch_optional(&mut *tx)
            .await?;

        // 2. Claim the distinct keys in (caller, key) order; without a wallet, claim nothing.
        let mut claim_order = firsts.clone();
        claim_order.sort_by(|&a, &b| {
            (cmds[a].actor.as_str(), cmds[a].key.as_str())
                .cmp(&(cmds[b].actor.as_str(), cmds[b].key.as_str()))
        });
        let mut fresh = Vec::new();
        let mut unclaimed = Vec::new();
        for &i in &claim_order {
            let cmd = &cmds[i];
            let claimed = row.is_some()
                && sqlx::query(
                    "INSERT INTO idempotency_keys (owner, key, request_hash, status, response, created_at_ms) \
                     VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (owner, key) DO NOTHING",
                )
                .persistent(false)
                .bind(cmd.actor.as_str())
                .bind(cmd.key.as_str())
                .bind(&hashes[i])
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            if claimed {
                fresh.push(i);
            } else {
                unclaimed.push((cmd.actor.as_str(), cmd.key.as_str()));
            }
        }
        // A key this batch did not claim (stored earlier, or no wallet) is
        // looked up by every occurrence, each with its own request hash.
        for (i, cmd) in cmds.iter().enumerate() {
            if !unclaimed.contains(&(cmd.actor.as_str(), cmd.key.as_str())) {
                continue;
            }
            let stored = sqlx::query(
                "SELECT request_hash, response FROM idempotency_keys WHERE owner = $1 AND key = $2",
            )
            .persistent(false)
            .bind(cmd.actor.as_str())
            .bind(cmd.key.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            results[i] = Some(match stored {
                None => Err(StoreError::WalletNotFound),
                Some(r) => {
                    let (stored_hash, response): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    if stored_hash != hashes[i] {
                        Err(StoreError::IdempotencyKeyReused)
                    } else {
                        StoredAnswer::decode(&response)
                            .map(|result| Outcome {
                                result,
                                replayed: true,
                            })
                            .map_err(StoreError::Failed)
                    }
                }
            });
        }
        fresh.sort_unstable(); // 3. decide in arrival order

        let mut changed = false;
        if let Some(row) = row.filter(|_| !fresh.is_empty()) {
            let (mut balance, mut version, region): (i64, i64, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let read_version = version;
            for &i in &fresh {
                let cmd = &cmds[i];
                let result = match rules::apply(balance, cmd.delta) {
                    Ok(next) => {
                        balance = next;
                        version += 1;
                        changed = true;
                        Ok(self
                            .record_entry(&mut tx, cmd, balance, version, &region, now)
                            .await?)
                    }
                    Err(refusal) => Err(refusal),
                };
                let status: i64 = if result.is_ok() { 200 } else { 409 };
                sqlx::query(
                    "UPDATE idempotency_keys SET status = $1, response = $2 WHERE owner = $3 AND key = $4",
                )
                .persistent(false)
                .bind(status)
                .bind(StoredAnswer::new(&result).encode())
                .bind(cmd.actor.as_str())
                .bind(cmd.key.as_str())
                .execute(&mut *tx)
                .await?;
                results[i] = Some(Ok(Outcome {
                    result,
                    replayed: false,
                }));
            }
            if changed {
                let n = sqlx::query("UPDATE wallets SET balance = $1, version = $2, updated_at_ms = $3 WHERE user_id = $4 AND version = $5")
                    .persistent(false)
                    .bind(balance)
                    .bind(version)
                    .bind(now)
                    .bind(first.user.as_str())
                    .bind(read_version)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    return Err(StoreError::Failed(
                        "the wallet changed under its row lock".into(),
                    ));
                }
            }
            self.inner
                .replicas
                .remember_region(first.user.as_str(), &region);
        }
        tx.commit().await?;
        if changed {
            self.inner.outbox_notify.notify_one();
        }
        Ok(fill_repeats(cmds, &hashes, results))
    }

    /// [`Store::apply_batch`] as one call of `walletctl_apply_batch`.
    async fn apply_batch_in_server(
        &self,
        cmds: &[MoneyCommand],
    ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let hashes: Vec<String> = cmds.iter().map(MoneyCommand::request_hash).collect();
        let payload: Vec<serde_json::Value> = cmds
            .iter()
            .zip(&hashes)
            .map(|(c, h)| {
                serde_json::json!({
                    "key": c.key.as_str(), "hash": h, "kind": c.kind.as_str(), "delta": c.delta,
                    "reason": c.reason, "reference": c.reference, "actor": c.actor, "fence": c.fence,
                    "event_id": uuid::Uuid::now_v7().to_string(),
                })
            })
            .collect();
        let payload = serde_json::Value::Array(payload).to_string();
        // The commit level is set inside the function with set_config(…, true): this transaction only.
        let mut tx = self.tx(false).await?;
        let rows = sqlx::query("SELECT o_idx, o_outcome, o_response FROM walletctl_apply_batch($1, CAST($2 AS JSONB), $3, $4, $5)")
            .persistent(false)
            .bind(cmds[0].user.as_str())
            .bind(payload)
            .bind(now_ms())
            .bind(MAX_BALANCE)
            .bind(self.inner.synchronous_commit.clone())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut results: Vec<Option<Result<Outcome, StoreError>>> =
            cmds.iter().map(|_| None).collect();
        let mut changed = false;
        for row in &rows {
            let idx: i32 = row.try_get(0)?;
            let outcome: String = row.try_get(1)?;
            let response: Option<String> = row.try_get(2)?;
            let parse = |replayed: bool| {
                StoredAnswer::decode(response.as_deref().unwrap_or_default())
                    .map(|result| Outcome { result, replayed })
                    .map_err(|e| StoreError::Failed(format!("walletctl_apply_batch answered: {e}")))
            };
            let slot = usize::try_from(idx)
                .ok()
                .and_then(|i| results.get_mut(i))
                .ok_or_else(|| {
                    StoreError::Failed(format!("walletctl_apply_batch answered for command {idx}"))
                })?;
            *slot = match outcome.as_str() {
                "fresh" => {
                    let r = parse(false);
                    changed |= matches!(r, Ok(Outcome { result: Ok(_), .. }));
                    Some(r)
                }
                "stored" => Some(parse(true)),
                "mismatch" => Some(Err(StoreError::IdempotencyKeyReused)),
                "missing" => Some(Err(StoreError::WalletNotFound)),
                _ => None, // "repeat": answered from the first occurrence below
            };
        }
        if changed {
            self.inner.outbox_notify.notify_one();
        }
        Ok(fill_repeats(cmds, &hashes, results))
    }

    /// Appends the ledger entry, the outbox event and (for adjustments) the audit row of an accepted command.
    async fn record_entry(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        cmd: &MoneyCommand,
        balance: i64,
        version: i64,
        region: &str,
        now: i64,
    ) -> Result<LedgerEntry, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, version, reason, reference, idempotency_key, actor, lock_fence, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .persistent(false)
        .bind(cmd.user.as_str())
        .bind(cmd.kind.as_str())
        .bind(cmd.delta)
        .bind(balance)
        .bind(version)
        .bind(cmd.reason.clone())
        .bind(cmd.reference.clone())
        .bind(cmd.key.as_str())
        .bind(cmd.actor.as_str())
        .bind(cmd.fence)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        let entry = LedgerEntry {
            id,
            user_id: cmd.user.to_string(),
            kind: cmd.kind,
            amount: cmd.delta,
            balance_after: balance,
            version,
            reason: cmd.reason.clone(),
            reference: cmd.reference.clone(),
            actor: cmd.actor.clone(),
            created_at_ms: now,
        };
        let wallet = Wallet {
            user_id: entry.user_id.clone(),
            region: region.to_owned(),
            balance,
            version,
            created_at_ms: 0,
            updated_at_ms: now,
        };
        insert_balance_updated(tx, &wallet, cmd.delta, Some(&entry), Some(cmd.kind), now).await?;
        if cmd.kind == EntryKind::Adjust {
            let details =
                serde_json::json!({"amount": cmd.delta, "reason": cmd.reason, "entry_id": id});
            crate::platform::audit::record(
                tx,
                &cmd.actor,
                "wallet.adjust",
                cmd.user.as_str(),
                &details,
                now,
            )
            .await?;
        }
        Ok(entry)
    }

    /// Reads a wallet with the asked-for consistency.
    pub async fn wallet(
        &self,
        user: &UserId,
        consistency: ReadConsistency,
    ) -> Result<WalletRead, StoreError> {
        self.refresh_assignments_if_stale().await;
        let targets = self.inner.replicas.targets(user, consistency);
        let sql = format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE user_id = $1");
        let (row, source) = self
            .inner
            .replicas
            .read(targets, |conn, prepare| {
                let sql = sql.clone();
                let user = user.to_string();
                Box::pin(async move {
                    sqlx::query(&sql)
                        .persistent(prepare)
                        .bind(user)
                        .fetch_optional(conn)
                        .await
                })
            })
            .await?;
        let wallet = wallet_from(&row.ok_or(StoreError::WalletNotFound)?)?;
        self.inner
            .replicas
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
        let targets = self.inner.replicas.targets(user, consistency);
        let limit = limit.clamp(1, 500);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        let (rows, _) = self
            .inner
            .replicas
            .read(targets, |conn, prepare| {
                let sql = sql.clone();
                let user = user.to_string();
                Box::pin(async move {
                    sqlx::query(&sql)
                        .persistent(prepare)
                        .bind(user)
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit) + 1)
                        .fetch_all(conn)
                        .await
                })
            })
            .await?;
        let mut entries = rows.iter().map(entry_from).collect::<Result<Vec<_>, _>>()?;
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
        let mut tx = self.tx(false).await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(l.amount), 0) AS BIGINT), CAST(COUNT(l.id) AS BIGINT), w.balance FROM wallets w \
             LEFT JOIN ledger_entries l ON l.user_id = w.user_id WHERE w.user_id = $1 GROUP BY w.balance",
        )
        .persistent(false)
        .bind(user.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::WalletNotFound)?;
        tx.commit().await?;
        let (sum, _count, balance): (i64, i64, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        Ok((sum, balance))
    }

    /// Wallets per region, on the primary.
    pub async fn users_per_region(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut tx = self.tx(false).await?;
        let rows = sqlx::query(
            "SELECT region, CAST(COUNT(*) AS BIGINT) FROM wallets GROUP BY region ORDER BY region",
        )
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
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
