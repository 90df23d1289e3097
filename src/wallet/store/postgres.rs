//! The PostgreSQL adapter of the money path: a batch is one call of the
//! server-side function `walletctl_apply_batch` (migrations 0002 and 0003),
//! which applies the same rules as the SQLite adapter (`sqlite.rs`) inside
//! the server, so that a batch crosses PgBouncer once. The differential test
//! (`tests/conformance/differential.rs`) holds the two to the same results.

use sqlx::PgConnection;

use super::fill_repeats;
use crate::domain::MAX_BALANCE;
use crate::now_ms;
use crate::platform::sql::{Store, StoreError};
use crate::wallet::model::{MoneyCommand, Outcome, StoredAnswer};

/// The batch inside a transaction the caller commits; also answers whether
/// any wallet changed (the caller then wakes the outbox relay).
pub(super) async fn apply_in(
    store: &Store,
    conn: &mut PgConnection,
    cmds: &[MoneyCommand],
) -> Result<(Vec<Result<Outcome, StoreError>>, bool), StoreError> {
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
    let rows = sqlx::query_as::<_, (i32, String, Option<String>)>("SELECT o_idx, o_outcome, o_response FROM walletctl_apply_batch($1, CAST($2 AS JSONB), $3, $4, $5)")
        .persistent(false)
        .bind(cmds[0].user.as_str())
        .bind(payload)
        .bind(now_ms())
        .bind(MAX_BALANCE)
        .bind(store.inner.synchronous_commit.clone())
        .fetch_all(&mut *conn)
        .await?;
    let mut results: Vec<Option<Result<Outcome, StoreError>>> = cmds.iter().map(|_| None).collect();
    let mut changed = false;
    for (idx, outcome, response) in rows {
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
    Ok((fill_repeats(cmds, &hashes, results), changed))
}
