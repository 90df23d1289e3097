//! The wallet service: the per-user lock around the store's transaction.

use std::sync::Arc;

use crate::domain::UserId;
use crate::lock::{LockError, UserLocks};
use crate::store::{MoneyCommand, Outcome, ReadConsistency, Store, StoreError, WalletRead};

/// Moves money and reads balances. Cheap to clone.
#[derive(Clone)]
pub struct WalletService {
    store: Store,
    locks: Arc<dyn UserLocks>,
}

impl WalletService {
    /// Ties a store to a lock.
    pub fn new(store: Store, locks: Arc<dyn UserLocks>) -> Self {
        WalletService { store, locks }
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies a money command. Debits take the user's lock first so that
    /// instances do not pile onto one row; if the lock cannot be had the
    /// debit goes on without it, because the transaction alone keeps the
    /// balance from going below zero.
    pub async fn apply(&self, mut cmd: MoneyCommand) -> Result<Outcome, StoreError> {
        let lease = if cmd.delta < 0 { self.lock(&cmd.user).await } else { None };
        cmd.fence = lease.as_ref().map(|l| l.fence);
        let result = self.store.apply(&cmd).await;
        if let Some(lease) = lease {
            self.locks.release(lease).await;
        }
        result
    }

    async fn lock(&self, user: &UserId) -> Option<crate::lock::Lease> {
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
    pub async fn balance(&self, user: &UserId, consistency: ReadConsistency) -> Result<WalletRead, StoreError> {
        self.store.wallet(user, consistency).await
    }
}
