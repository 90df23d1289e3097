use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{Lease, LeaseGuard, LockError, UserLocks};
use crate::domain::UserId;

/// In-process per-user locks for the embedded default (one process).
pub struct MemoryLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fence: AtomicI64,
    wait: Duration,
}

impl MemoryLocks {
    /// Locks that wait at most `wait`.
    pub fn new(wait: Duration) -> Self {
        MemoryLocks {
            locks: Mutex::new(HashMap::new()),
            fence: AtomicI64::new(0),
            wait,
        }
    }
}

#[async_trait]
impl UserLocks for MemoryLocks {
    async fn acquire(&self, user: &UserId) -> Result<Lease, LockError> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(user.to_string()).or_default().clone()
        };
        let guard = tokio::time::timeout(self.wait, lock.lock_owned())
            .await
            .map_err(|_| LockError::Timeout)?;
        Ok(Lease {
            fence: self.fence.fetch_add(1, Ordering::Relaxed) + 1,
            guard: LeaseGuard::Memory(guard),
        })
    }

    async fn release(&self, lease: Lease) {
        drop(lease);
        // Forget locks nobody holds or waits for, so the map does not grow forever.
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, l| Arc::strong_count(l) > 1);
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
