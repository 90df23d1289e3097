//! The per-user lock port: `lock:user:{userId}` in Redis across instances, or
//! an in-process mutex in the embedded default.
//!
//! The lock only keeps instances from racing on one wallet (fewer aborted or
//! conflicting transactions). It never decides whether money moves: the
//! database's conditional update does. If Redis is down or the wait runs out,
//! callers go on without the lock.

mod memory;
mod redis;

use async_trait::async_trait;

pub use memory::MemoryLocks;
pub use redis::RedisLocks;

use crate::domain::UserId;

/// A held lock.
pub struct Lease {
    /// A number that grows with every acquisition of this user's lock: the
    /// fencing token, recorded with the ledger entry.
    pub fence: i64,
    pub(crate) guard: LeaseGuard,
}

pub(crate) enum LeaseGuard {
    Memory(
        #[allow(dead_code, reason = "held for its Drop, which unlocks")]
        tokio::sync::OwnedMutexGuard<()>,
    ),
    Redis {
        key: String,
        token: String,
    },
}

/// Why no lease was given.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else held it for the whole wait.
    #[error("timed out waiting for the lock")]
    Timeout,
    /// The lock service could not be reached.
    #[error("lock service unavailable: {0}")]
    Unavailable(String),
}

/// Per-user mutual exclusion.
#[async_trait]
pub trait UserLocks: Send + Sync {
    /// Waits up to the configured time for `user`'s lock.
    async fn acquire(&self, user: &UserId) -> Result<Lease, LockError>;
    /// Releases a lease; a lease that already expired is left alone.
    async fn release(&self, lease: Lease);
    /// `redis` or `memory`.
    fn kind(&self) -> &'static str;
}

/// Exponential backoff with full jitter, capped: the sleep before attempt `n`.
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let cap_us = (500u64 << attempt.min(7)).min(50_000);
    std::time::Duration::from_micros(rand::rng().random_range(cap_us / 2..=cap_us))
}
