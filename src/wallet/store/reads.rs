//! Balance reads on PostgreSQL, coalesced: the reads bound for the same
//! replicas that arrive while one query is in flight are answered by the
//! next, one `SELECT … WHERE user_id = ANY($1)` (see
//! `platform::sql::lanes`). Each read is still answered by the database
//! after its request arrived, from the replica its user's region names.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;

use futures::FutureExt;
use tokio::sync::oneshot;

use super::WALLET_COLUMNS;
use super::{WalletRow, WalletStore};
use crate::platform::sql::lanes::{LaneKey, Waiter};
use crate::platform::sql::{ReadConsistency, StoreError, Target};

/// How many times a lane's leader yields to the runtime before each query.
const GATHER_YIELDS: usize = 4;

// One key asks with `=`: its prepared statement keeps a generic plan, where
// `= ANY($1)` with one element is planned again each time. Built once, not
// on every lane a read starts.
static ONE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE user_id = $1"));
static MANY: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE user_id = ANY($1)"));

/// Reads `user`'s wallet row from the first of `targets` that answers.
pub(super) async fn read(
    store: &WalletStore,
    targets: Vec<Target>,
    consistency: ReadConsistency,
    user: String,
) -> Result<(Option<WalletRow>, String), StoreError> {
    let lane: LaneKey = match consistency {
        // Any replica may stand in for another: reads share a lane by the
        // replica they try first, and fall back the way its leader does.
        // (A user whose region is not known yet tries the replicas in a
        // hashed order; keyed by the whole order, those reads made lanes of
        // their own and smaller queries.)
        ReadConsistency::Replica => targets.iter().take(1).map(Target::replica).collect(),
        // Only the synchronous standby or the primary will do.
        ReadConsistency::Strong => targets.iter().map(Target::replica).collect(),
    };
    let (reply, answer) = oneshot::channel();
    if store.reads.join(&lane, Waiter { key: user, reply }) {
        // A task of its own, so that a caller going away cannot strand the
        // reads queued behind it.
        let store = store.clone();
        tokio::spawn(async move { lead(&store, lane, targets).await });
    }
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "the query answering this read was lost".into(),
        ))
    })
}

/// Answers the lane's waiting reads, a query at a time, until none wait.
async fn lead(store: &WalletStore, lane: LaneKey, targets: Vec<Target>) {
    loop {
        // Before each query, let the tasks already woken run: the requests
        // that arrived meanwhile join this lane and ride along (measured
        // between queries: 1.7 reads per query without, 3.3 with; more
        // yields gathered no more). The first query of a lane gathers too:
        // without it, a lane that went idle restarted with a query for one
        // read, over a quarter of all queries (4.9 reads per query on
        // average, 6.0 with; PostgreSQL 14.4 → 13.1 µs of CPU per read).
        // No timer: a read nobody else joins waits only for the tasks
        // already runnable, microseconds.
        for _ in 0..GATHER_YIELDS {
            tokio::task::yield_now().await;
        }
        let batch = store.reads.take(&lane);
        if batch.is_empty() {
            return;
        }
        metrics::histogram!("wallet_read_batch_size").record(batch.len() as f64);
        let mut users: Vec<String> = batch.iter().map(|w| w.key.clone()).collect();
        users.sort_unstable();
        users.dedup();
        let live = store.db.replicas().live(&targets);
        let query = store.db.replicas().read(live, |conn, prepare| {
            let users = users.clone();
            Box::pin(async move {
                if let [user] = users.as_slice() {
                    sqlx::query_as::<_, WalletRow>(ONE.as_str())
                        .persistent(prepare)
                        .bind(user)
                        .fetch_all(conn)
                        .await
                } else {
                    sqlx::query_as::<_, WalletRow>(MANY.as_str())
                        .persistent(prepare)
                        .bind(users)
                        .fetch_all(conn)
                        .await
                }
            })
        });
        // A panic answers this batch with an error (dropped replies) and
        // leaves the lane to the next batch.
        match AssertUnwindSafe(query).catch_unwind().await {
            Ok(Ok((rows, source))) => {
                let by_user: HashMap<&str, &WalletRow> =
                    rows.iter().map(|r| (r.0.as_str(), r)).collect();
                for w in batch {
                    let row = by_user.get(w.key.as_str()).map(|r| (*r).clone());
                    let _ = w.reply.send(Ok((row, source.clone())));
                }
            }
            Ok(Err(e)) => {
                for w in batch {
                    let _ = w.reply.send(Err(e.duplicate()));
                }
            }
            Err(_) => tracing::error!("a coalesced balance read panicked; its reads failed"),
        }
    }
}
