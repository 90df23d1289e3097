//! The wallet service: per-user batching and the per-user lock around the
//! store's transaction.
//!
//! Money commands for one user that arrive while an earlier one is being
//! applied wait in that user's queue. The task applying a batch (the
//! leader) then takes the whole queue, in arrival order, and applies it in
//! one transaction, under one lock acquisition, with one commit. Each command
//! is still accepted or refused on its own. A single request waits for
//! nobody: a batch of one goes straight through.
//!
//! Each user's queue is bounded: past `max_queue` waiting commands a new one
//! is refused with [`StoreError::Overloaded`] before anything is written. If a
//! whole batch fails on a database error, its commands are retried one at a
//! time, so no command's answer depends on another's: idempotency keys make
//! that safe even when the failed batch may have committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio::sync::oneshot;

use super::model::{MoneyCommand, Outcome, WalletRead};
use crate::domain::UserId;
use crate::lock::{Lease, LockError, UserLocks};
use crate::platform::sql::{ReadConsistency, Store, StoreError};

/// The most commands one transaction applies; the rest wait for the next.
pub const MAX_BATCH: usize = 256;

struct Pending {
    cmd: MoneyCommand,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// Moves money and reads balances. Cheap to clone.
#[derive(Clone)]
pub struct WalletService {
    store: Store,
    locks: Arc<dyn UserLocks>,
    /// Users with a batch in flight, and the commands waiting for the next one.
    queues: Arc<Mutex<HashMap<UserId, Vec<Pending>>>>,
    /// The most commands one user may have waiting.
    max_queue: usize,
}

impl WalletService {
    /// Ties a store to a lock; at most `max_queue` commands wait per user.
    pub fn new(store: Store, locks: Arc<dyn UserLocks>, max_queue: usize) -> Self {
        WalletService {
            store,
            locks,
            queues: Arc::default(),
            max_queue: max_queue.max(1),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies a money command, batched with the same user's concurrent ones.
    pub async fn apply(&self, cmd: MoneyCommand) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let user = cmd.user.clone();
        let pending = Pending { cmd, reply };
        let lead = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            match queues.get_mut(&user) {
                Some(waiting) if waiting.len() >= self.max_queue => {
                    metrics::counter!("wallet_queue_full_total").increment(1);
                    return Err(StoreError::Overloaded);
                }
                Some(waiting) => {
                    waiting.push(pending);
                    None
                }
                None => {
                    queues.insert(user.clone(), Vec::new());
                    Some(pending)
                }
            }
        };
        if let Some(first) = lead {
            // A task of its own: if this request's client goes away, the
            // commands queued behind it are still applied and answered.
            let this = self.clone();
            tokio::spawn(async move { this.lead(user, first).await });
        }
        // A dropped reply means the batch task died (a panic) at a point
        // where the command may or may not have been committed.
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::OutcomeUnknown(
                "the batch applying this command was lost".into(),
            ))
        })
    }

    async fn lead(&self, user: UserId, first: Pending) {
        let mut batch = vec![first];
        loop {
            // A panic in one batch drops its replies (its callers get an
            // error) but must not leave this user's queue wedged.
            if AssertUnwindSafe(self.run_batch(&user, batch))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!(user = %user, "a wallet batch panicked; its requests failed");
            }
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let Some(waiting) = queues.get_mut(&user) else {
                return;
            };
            if waiting.is_empty() {
                queues.remove(&user);
                return;
            }
            let take = waiting.len().min(MAX_BATCH);
            batch = waiting.drain(..take).collect();
        }
    }

    async fn run_batch(&self, user: &UserId, batch: Vec<Pending>) {
        metrics::histogram!("wallet_batch_size").record(batch.len() as f64);
        // Debits take the user's lock so instances do not pile onto one row.
        // Without it (Redis down, or the wait ran out) the batch goes on: the
        // transaction alone keeps the balance from going below zero.
        let lease = if batch.iter().any(|p| p.cmd.delta < 0) {
            self.lock(user).await
        } else {
            None
        };
        let (mut cmds, replies): (Vec<MoneyCommand>, Vec<_>) =
            batch.into_iter().map(|p| (p.cmd, p.reply)).unzip();
        for c in &mut cmds {
            c.fence = lease.as_ref().map(|l| l.fence);
        }
        let results = self.store.apply_batch_or_each(&cmds).await;
        if let Some(lease) = lease {
            self.locks.release(lease).await;
        }
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }

    async fn lock(&self, user: &UserId) -> Option<Lease> {
        match self.locks.acquire(user).await {
            Ok(lease) => Some(lease),
            Err(e) => {
                let reason = match e {
                    LockError::Timeout => "timeout",
                    LockError::Unavailable(_) => "unavailable",
                };
                metrics::counter!("wallet_lock_bypassed_total", "reason" => reason).increment(1);
                tracing::warn!(user = %user, error = %e, "going on without the per-user lock; the transaction still guards the balance");
                None
            }
        }
    }

    /// Reads a balance.
    pub async fn balance(
        &self,
        user: &UserId,
        consistency: ReadConsistency,
    ) -> Result<WalletRead, StoreError> {
        self.store.wallet(user, consistency).await
    }
}
