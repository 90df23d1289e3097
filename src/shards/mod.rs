//! The shards area: the region → replica map, stored in the primary so
//! every instance sees it, and each replica's status. The operator writes the
//! map here (`walletctl shards assign`); the read routing
//! (`platform::sql`) reloads it.

use std::collections::BTreeMap;

use crate::domain::Region;
use crate::domain::now_ms;
use crate::platform::audit::audit_record;
use crate::platform::sql::{Db, Pools, ReplicaStatus, StoreError, in_tx};

/// One row of the map.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShardAssignment {
    /// The region.
    pub region: String,
    /// The replicas that serve its reads.
    pub replicas: Vec<String>,
}

/// The shard map's store.
#[derive(Clone)]
pub struct ShardStore {
    db: Db,
}

impl ShardStore {
    /// The shard map over `db`.
    pub fn new(db: Db) -> ShardStore {
        ShardStore { db }
    }

    /// The map as stored.
    pub async fn shard_assignments(&self) -> Result<Vec<ShardAssignment>, StoreError> {
        let rows = self.db.assignment_rows().await?;
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (region, replica) in rows {
            map.entry(region).or_default().push(replica);
        }
        Ok(map
            .into_iter()
            .map(|(region, replicas)| ShardAssignment { region, replicas })
            .collect())
    }

    /// Writes the configured map when the table is empty (first start).
    pub async fn seed_shards(
        &self,
        regions: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), StoreError> {
        if regions.is_empty() || !self.db.assignment_rows().await?.is_empty() {
            return Ok(());
        }
        in_tx!(self.db, admin, |tx| {
            for (region, replicas) in regions {
                for replica in replicas {
                    sqlx::query("INSERT INTO shard_assignments (region, replica) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .persistent(false)
                        .bind(region.to_ascii_uppercase())
                        .bind(replica)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        });
        self.db.refresh_assignments().await
    }

    /// Replaces a region's replicas. Every instance picks it up within seconds.
    pub async fn assign_region(
        &self,
        region: &Region,
        replicas: &[String],
        actor: &str,
    ) -> Result<(), StoreError> {
        let known = self.db.replicas().names();
        if let Some(unknown) = replicas.iter().find(|r| !known.contains(r)) {
            return Err(StoreError::Unknown {
                what: "replica",
                name: unknown.clone(),
            });
        }
        let details = serde_json::json!({ "replicas": replicas });
        in_tx!(self.db, admin, |tx| {
            sqlx::query("DELETE FROM shard_assignments WHERE region = $1")
                .persistent(false)
                .bind(region.as_str())
                .execute(&mut *tx)
                .await?;
            for replica in replicas {
                sqlx::query("INSERT INTO shard_assignments (region, replica) VALUES ($1, $2)")
                    .persistent(false)
                    .bind(region.as_str())
                    .bind(replica)
                    .execute(&mut *tx)
                    .await?;
            }
            audit_record!(
                tx,
                actor,
                "shards.assign",
                region.as_str(),
                &details,
                now_ms()
            );
        });
        self.db.refresh_assignments().await
    }

    /// Each replica's reachability and lag, as the primary reports it.
    pub async fn replica_status(&self) -> Result<Vec<ReplicaStatus>, StoreError> {
        self.db.refresh_assignments().await?;
        let lags: BTreeMap<String, (i64, i64)> = match self.db.pools() {
            Pools::Postgres { direct, .. } => sqlx::query_as::<_, (String, i64, i64)>(
                "SELECT application_name, CAST(COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) AS BIGINT), \
                 CAST(COALESCE(EXTRACT(EPOCH FROM replay_lag) * 1000, 0) AS BIGINT) FROM pg_stat_replication",
            )
            .fetch_all(direct)
            .await?
            .into_iter()
            .map(|(name, bytes, ms)| (name, (bytes, ms)))
            .collect(),
            Pools::Sqlite { .. } => BTreeMap::new(),
        };
        let pings = self.db.replicas().ping_all().await;
        Ok(pings
            .into_iter()
            .map(|(name, res)| {
                let lag = lags.get(&name);
                ReplicaStatus {
                    synchronous: self.db.replicas().is_sync(&name),
                    reachable: res.is_ok(),
                    lag_bytes: lag.map(|l| l.0),
                    lag_ms: lag.map(|l| l.1),
                    regions: self.db.replicas().regions_of(&name),
                    name,
                }
            })
            .collect())
    }
}
