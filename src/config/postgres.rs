//! The `[postgres]` section: the primary, PgBouncer and the replicas.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConfigError, SecretUrl, invalid};

/// PostgreSQL: the primary (normally through PgBouncer) and replicas per region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The primary, normally PgBouncer in transaction mode in front of it.
    pub url: SecretUrl,
    /// The primary itself, bypassing PgBouncer, for migrations (which take
    /// session-level advisory locks) and replication status. Defaults to `url`.
    #[serde(default)]
    pub direct_url: Option<SecretUrl>,
    /// Where group commits go, when set: the primary itself as the app
    /// role, bypassing PgBouncer. A group is then one round trip (the call
    /// commits as it returns) with a prepared statement, on one of at most
    /// `wallet.max_groups_in_flight + 1` sessions per instance. Unset: group
    /// commits go through `url` in an explicit transaction (three round
    /// trips: BEGIN, the call, COMMIT).
    #[serde(default)]
    pub commit_url: Option<SecretUrl>,
    /// Connections in the primary pool.
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    /// `synchronous_commit` for money-moving transactions, e.g. `remote_apply`.
    /// Unset leaves the server's setting.
    #[serde(default)]
    pub synchronous_commit: Option<String>,
    /// The role `url` connects as. When set, `walletctl migrate` (run as the
    /// owner through `direct_url`) grants it only what serving needs: the
    /// ledger and audit log are read and append only. Unset: no grants.
    #[serde(default)]
    pub app_role: Option<String>,
    /// Allows `synchronous_commit = "off"` or `"local"` for money transactions.
    /// Both can lose an acknowledged write when the primary fails, so they
    /// are refused unless this says so explicitly.
    #[serde(default)]
    pub allow_unsafe_commit: bool,
    /// The replica that is a synchronous standby; strong reads go there.
    #[serde(default)]
    pub sync_replica: Option<String>,
    /// Streaming replicas by name.
    #[serde(default)]
    pub replicas: BTreeMap<String, ReplicaConfig>,
    /// The initial region → replica map, written to the shard table when that is empty.
    /// After that, `walletctl shards assign` changes it for every instance.
    #[serde(default)]
    pub regions: BTreeMap<String, Vec<String>>,
}

/// One streaming replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// How to reach it (directly, not through PgBouncer).
    pub url: SecretUrl,
    /// Connections in its pool.
    #[serde(default = "default_replica_pool")]
    pub pool_size: u32,
}

fn default_pool() -> u32 {
    16
}

fn default_replica_pool() -> u32 {
    8
}

impl PostgresConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.pool_size == 0 {
            return invalid("postgres.pool_size", "must be at least 1");
        }
        if let Some(sync) = &self.sync_replica
            && !self.replicas.contains_key(sync)
        {
            return invalid(
                "postgres.sync_replica",
                format!("names {sync:?}, which is not in postgres.replicas"),
            );
        }
        if let Some(level) = &self.synchronous_commit
            && !["on", "off", "local", "remote_write", "remote_apply"].contains(&level.as_str())
        {
            return invalid(
                "postgres.synchronous_commit",
                format!("{level:?} is not one of on, off, local, remote_write, remote_apply"),
            );
        }
        if let Some(level) = &self.synchronous_commit
            && ["off", "local"].contains(&level.as_str())
            && !self.allow_unsafe_commit
        {
            return invalid(
                "postgres.synchronous_commit",
                format!(
                    "{level:?} can lose an acknowledged payment if the primary fails; set postgres.allow_unsafe_commit = true to accept that"
                ),
            );
        }
        if let Some(role) = &self.app_role {
            let ok = role.len() <= 63
                && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && role
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return invalid(
                    "postgres.app_role",
                    format!("{role:?} must be 1-63 characters of a-z 0-9 _"),
                );
            }
        }
        for (region, replicas) in &self.regions {
            if let Err(e) = crate::domain::Region::parse(&region.to_ascii_uppercase()) {
                return invalid(&format!("postgres.regions.{region}"), e.to_string());
            }
            for name in replicas {
                if !self.replicas.contains_key(name) {
                    return invalid(
                        &format!("postgres.regions.{region}"),
                        format!("names replica {name:?}, which is not in postgres.replicas"),
                    );
                }
            }
        }
        Ok(())
    }
}
