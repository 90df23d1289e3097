//! The `[wallet]` section: locking, relaying, queueing.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// Wallet behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// How long a per-user lock lives if its holder dies, in milliseconds.
    pub lock_ttl_ms: u64,
    /// How long a deduction waits for the per-user lock before going on without it.
    pub lock_wait_ms: u64,
    /// How often the outbox relay looks for unsent events when not woken, in milliseconds.
    pub relay_interval_ms: u64,
    /// How long a balance read trusts a replica's health before probing again, in milliseconds.
    pub replica_check_ms: u64,
    /// How long a request may take before it is answered `503 outcome_unknown`
    /// (a money command already queued still completes), in milliseconds.
    pub request_timeout_ms: u64,
    /// The most money commands one user may have waiting; more are answered
    /// `503 overloaded` with `Retry-After`, and nothing changes.
    pub max_queue_per_user: usize,
    /// The most group commits in flight at once per instance, over disjoint
    /// users (1 applies one group at a time).
    pub max_groups_in_flight: usize,
}

impl WalletConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_groups_in_flight == 0 {
            return invalid("wallet.max_groups_in_flight", "must be at least 1");
        }
        if self.max_queue_per_user == 0 {
            return invalid("wallet.max_queue_per_user", "must be at least 1");
        }
        if self.lock_ttl_ms == 0 {
            return invalid("wallet.lock_ttl_ms", "must be at least 1");
        }
        Ok(())
    }
}
