//! The SQLite adapter of the money path (the embedded default): the batch's
//! steps run from Rust, with the rules of `wallet/rules.rs`, in one
//! transaction on the single writer connection. The PostgreSQL adapter
//! (`postgres.rs`) applies the same rules inside the server; the
//! differential test (`tests/conformance/differential.rs`) holds the two to
//! the same results.

use sqlx::sqlite::SqliteConnection;

use super::WalletStore;
use super::fill_repeats;
use crate::domain::now_ms;
use crate::platform::audit::audit_record;
use crate::platform::sql::StoreError;
use crate::wallet::events::{BalanceUpdated, insert_balance_updated};
use crate::wallet::model::{EntryKind, LedgerEntry, MoneyCommand, Outcome, StoredAnswer, Wallet};
use crate::wallet::rules;

/// The batch inside a transaction the caller commits; also answers whether
/// any wallet changed (the caller then wakes the outbox relay).
pub(super) async fn apply_in(
    store: &WalletStore,
    tx: &mut SqliteConnection,
    cmds: &[MoneyCommand],
) -> Result<(Vec<Result<Outcome, StoreError>>, bool), StoreError> {
    let first = &cmds[0];
    let now = now_ms();
    let hashes: Vec<String> = cmds.iter().map(MoneyCommand::request_hash).collect();
    let mut results: Vec<Option<Result<Outcome, StoreError>>> = cmds.iter().map(|_| None).collect();
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
    // 1. The wallet (SQLite has one writer: the transaction is the lock).
    let row = sqlx::query_as::<_, (i64, i64, String)>(
        "SELECT balance, version, region FROM wallets WHERE user_id = $1",
    )
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
        let stored = sqlx::query_as::<_, (String, String)>(
            "SELECT request_hash, response FROM idempotency_keys WHERE owner = $1 AND key = $2",
        )
        .persistent(false)
        .bind(cmd.actor.as_str())
        .bind(cmd.key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        results[i] = Some(match stored {
            None => Err(StoreError::NotFound("wallet")),
            Some((stored_hash, response)) => {
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
        let (mut balance, mut version, region) = row;
        let read_version = version;
        for &i in &fresh {
            let cmd = &cmds[i];
            let result = match rules::apply(balance, cmd.delta) {
                Ok(next) => {
                    balance = next;
                    version += 1;
                    changed = true;
                    Ok(record_entry(tx, cmd, balance, version, &region, now).await?)
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
        store
            .db
            .replicas()
            .remember_region(first.user.as_str(), &region);
    }
    Ok((fill_repeats(cmds, &hashes, results), changed))
}

/// Appends the ledger entry, the outbox event and (for adjustments) the audit row of an accepted command.
async fn record_entry(
    tx: &mut SqliteConnection,
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
    .fetch_one(&mut *tx)
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
    insert_balance_updated!(
        tx,
        BalanceUpdated::new(&wallet, cmd.delta, Some(&entry), Some(cmd.kind), now),
        now
    );
    if cmd.kind == EntryKind::Adjust {
        let details =
            serde_json::json!({"amount": cmd.delta, "reason": cmd.reason, "entry_id": id});
        audit_record!(
            tx,
            &cmd.actor,
            "wallet.adjust",
            cmd.user.as_str(),
            &details,
            now
        );
    }
    Ok(entry)
}
