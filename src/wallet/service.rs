//! The wallet service: group commit of money commands, and the per-user
//! lock around it.
//!
//! While a commit is in flight, the commands that arrive (for any user)
//! wait. The task applying them (the leader) then takes what is waiting, up
//! to [`MAX_BATCH`] commands in arrival order, groups them by user, and
//! applies every user's batch in one transaction with one commit: one fsync
//! and one synchronous-replication round trip for many users
//! ([`Store::apply_group`]). Each command is still accepted or refused on
//! its own, in arrival order per user; wallets are locked in user-id order.
//! A lone request waits for nobody: with nothing in flight it is applied at
//! once.
//!
//! Each user's commands waiting at once are bounded: past `max_queue` a new
//! one is refused with [`StoreError::Overloaded`] before anything is
//! written. If a group fails on a database error, each user's batch is
//! retried on its own, then one command at a time, so no command's answer
//! depends on another's: idempotency keys make that safe even when the
//! failed transaction may have committed.

use std::collections::{HashMap, VecDeque};
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

/// The commands waiting for the next commit.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Pending>,
    /// Commands waiting, per user (the bound).
    per_user: HashMap<UserId, usize>,
    /// Whether a leader is applying a group.
    running: bool,
}

/// Moves money and reads balances. Cheap to clone.
#[derive(Clone)]
pub struct WalletService {
    store: Store,
    locks: Arc<dyn UserLocks>,
    queue: Arc<Mutex<Queue>>,
    /// The most commands one user may have waiting.
    max_queue: usize,
}

impl WalletService {
    /// Ties a store to a lock; at most `max_queue` commands wait per user.
    pub fn new(store: Store, locks: Arc<dyn UserLocks>, max_queue: usize) -> Self {
        WalletService {
            store,
            locks,
            queue: Arc::default(),
            max_queue: max_queue.max(1),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies a money command, committed together with the commands of any
    /// user that arrive while another commit is in flight.
    pub async fn apply(&self, cmd: MoneyCommand) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            let waiting = q.per_user.entry(cmd.user.clone()).or_default();
            if *waiting >= self.max_queue {
                metrics::counter!("wallet_queue_full_total").increment(1);
                return Err(StoreError::Overloaded);
            }
            *waiting += 1;
            q.waiting.push_back(Pending { cmd, reply });
            !std::mem::replace(&mut q.running, true)
        };
        if lead {
            // A task of its own: if this request's client goes away, the
            // commands queued behind it are still applied and answered.
            let this = self.clone();
            tokio::spawn(async move { this.lead().await });
        }
        // A dropped reply means the group task died (a panic) at a point
        // where the command may or may not have been committed.
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::OutcomeUnknown(
                "the batch applying this command was lost".into(),
            ))
        })
    }

    /// Applies what waits, a group at a time, until nothing does.
    async fn lead(&self) {
        loop {
            let group: Vec<Pending> = {
                let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                if q.waiting.is_empty() {
                    q.running = false;
                    return;
                }
                let take = q.waiting.len().min(MAX_BATCH);
                let group: Vec<Pending> = q.waiting.drain(..take).collect();
                for p in &group {
                    if let Some(n) = q.per_user.get_mut(&p.cmd.user) {
                        *n -= 1;
                        if *n == 0 {
                            q.per_user.remove(&p.cmd.user);
                        }
                    }
                }
                group
            };
            // A panic in one group drops its replies (its callers get an
            // error) but must not leave the queue wedged.
            if AssertUnwindSafe(self.run_group(group))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!("a wallet group commit panicked; its requests failed");
            }
        }
    }

    async fn run_group(&self, group: Vec<Pending>) {
        metrics::histogram!("wallet_batch_size").record(group.len() as f64);
        // Each user's commands in arrival order; users in id order.
        let mut by_user: Vec<(UserId, Vec<Pending>)> = Vec::new();
        for p in group {
            match by_user.iter_mut().find(|(u, _)| *u == p.cmd.user) {
                Some((_, list)) => list.push(p),
                None => by_user.push((p.cmd.user.clone(), vec![p])),
            }
        }
        by_user.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        metrics::histogram!("wallet_group_users").record(by_user.len() as f64);
        // Debits take their users' locks so instances do not pile onto one
        // row. Without one (Redis down, or the wait ran out) the group goes
        // on: the transaction alone keeps balances from going below zero.
        let leases = futures::future::join_all(by_user.iter().map(|(user, list)| async move {
            if list.iter().any(|p| p.cmd.delta < 0) {
                self.lock(user).await
            } else {
                None
            }
        }))
        .await;
        let mut batches: Vec<Vec<MoneyCommand>> = Vec::with_capacity(by_user.len());
        let mut replies = Vec::with_capacity(by_user.len());
        for ((_, list), lease) in by_user.into_iter().zip(&leases) {
            let (mut cmds, rs): (Vec<MoneyCommand>, Vec<_>) =
                list.into_iter().map(|p| (p.cmd, p.reply)).unzip();
            for c in &mut cmds {
                c.fence = lease.as_ref().map(|l| l.fence);
            }
            batches.push(cmds);
            replies.push(rs);
        }
        let results = self.store.apply_group_or_each(&batches).await;
        futures::future::join_all(
            leases
                .into_iter()
                .flatten()
                .map(|lease| self.locks.release(lease)),
        )
        .await;
        for (rs, answers) in replies.into_iter().zip(results) {
            for (reply, result) in rs.into_iter().zip(answers) {
                let _ = reply.send(result);
            }
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
