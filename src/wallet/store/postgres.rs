//! The PostgreSQL adapter of the money path: a group of users' batches is
//! one call of the server-side `walletctl_apply_group` (migration 0009: a
//! fixed number of statements per group, whatever its size), in the order
//! given (by user id), inside the caller's transaction; a single batch is a
//! group of one. The rules are the SQLite
//! adapter's (`sqlite.rs`), applied inside the server so that a whole group
//! crosses PgBouncer once. The differential test
//! (`tests/conformance/differential.rs`) holds the two to the same results.

use sqlx::PgConnection;

use super::WalletStore;
use super::{GroupAnswer, fill_repeats};
use crate::domain::MAX_BALANCE;
use crate::domain::now_ms;
use crate::platform::sql::StoreError;
use crate::wallet::model::{MoneyCommand, Outcome, StoredAnswer};

/// Users' batches (each one user's, the users in id order) inside a
/// transaction the caller commits; also answers whether any wallet changed
/// (the caller then wakes the outbox relay).
pub(super) async fn apply_group_in(
    store: &WalletStore,
    conn: &mut PgConnection,
    groups: &[&[MoneyCommand]],
) -> Result<GroupAnswer, StoreError> {
    call_group(store, conn, groups, false).await
}

/// Calls `walletctl_apply_group`; `prepare` for a session of the primary
/// itself (`postgres.commit_url`), where the call, outside a transaction,
/// commits as it returns (the function sets its `synchronous_commit` for
/// that implicit transaction): one round trip with a prepared statement.
/// Through PgBouncer it must not be: sqlx's extended protocol ends its Parse
/// and its Execute with a Sync each, and outside a transaction PgBouncer may
/// send the second to another server connection.
pub(super) async fn call_group(
    store: &WalletStore,
    conn: &mut PgConnection,
    groups: &[&[MoneyCommand]],
    prepare: bool,
) -> Result<GroupAnswer, StoreError> {
    let hashes: Vec<Vec<String>> = groups
        .iter()
        .map(|g| g.iter().map(MoneyCommand::request_hash).collect())
        .collect();
    let users: Vec<&str> = groups.iter().map(|g| g[0].user.as_str()).collect();
    let payload: Vec<serde_json::Value> = groups
        .iter()
        .zip(&hashes)
        .map(|(g, hs)| {
            g.iter()
                .zip(hs)
                .map(|(c, h)| {
                    serde_json::json!({
                        "key": c.key.as_str(), "hash": h, "kind": c.kind.as_str(), "delta": c.delta,
                        "reason": c.reason, "reference": c.reference, "actor": c.actor, "fence": c.fence,
                        "event_id": uuid::Uuid::now_v7().to_string(),
                    })
                })
                .collect()
        })
        .collect();
    let payload = serde_json::Value::Array(payload).to_string();
    let rows = sqlx::query_as::<_, (i32, i32, String, Option<String>)>(
        "SELECT o_user, o_idx, o_outcome, o_response FROM walletctl_apply_group($1, CAST($2 AS JSONB), $3, $4, $5)",
    )
    .persistent(prepare)
    .bind(&users)
    .bind(payload)
    .bind(now_ms())
    .bind(MAX_BALANCE)
    .bind(store.db.synchronous_commit())
    .fetch_all(&mut *conn)
    .await?;
    let mut results: Vec<Vec<Option<Result<Outcome, StoreError>>>> = groups
        .iter()
        .map(|g| g.iter().map(|_| None).collect())
        .collect();
    let mut changed = false;
    for (user, idx, outcome, response) in rows {
        let parse = |replayed: bool| {
            StoredAnswer::decode(response.as_deref().unwrap_or_default())
                .map(|result| Outcome { result, replayed })
                .map_err(|e| StoreError::Failed(format!("walletctl_apply_group answered: {e}")))
        };
        let slot = usize::try_from(user)
            .ok()
            .and_then(|u| results.get_mut(u))
            .and_then(|r| usize::try_from(idx).ok().and_then(|i| r.get_mut(i)))
            .ok_or_else(|| {
                StoreError::Failed(format!(
                    "walletctl_apply_group answered for user {user}, command {idx}"
                ))
            })?;
        *slot = match outcome.as_str() {
            "fresh" => {
                let r = parse(false);
                changed |= matches!(r, Ok(Outcome { result: Ok(_), .. }));
                Some(r)
            }
            "stored" => Some(parse(true)),
            "mismatch" => Some(Err(StoreError::IdempotencyKeyReused)),
            "missing" => Some(Err(StoreError::NotFound("wallet"))),
            _ => None, // "repeat": answered from the first occurrence below
        };
    }
    let answers = groups
        .iter()
        .zip(hashes)
        .zip(results)
        .map(|((g, hs), r)| fill_repeats(g, &hs, r))
        .collect();
    Ok((answers, changed))
}
