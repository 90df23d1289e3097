//! The region → replica map, stored in the primary so every instance sees it.

use std::collections::BTreeMap;

use super::{Pools, ReplicaStatus, Store, StoreError, in_tx};
use crate::domain::Region;
use crate::now_ms;
use crate::platform::audit::audit_record;

/// One row of the map.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShardAssignment {
    /// The region.
    pub region: String,
    /// The replicas that serve its reads.
    pub replicas: Vec<String>,
}

impl Store {
    /// The map as stored.
    pub async fn shard_assignments(&self) -> Result<Vec<ShardAssignment>, StoreError> {
        let rows = self.assignment_rows().await?;
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (region, replica) in rows {
            map.entry(region).or_default().push(replica);
        }
        Ok(map
            .into_iter()
            .map(|(region, replicas)| ShardAssignment { region, replicas })
            .collect())
    }

    async fn assignment_rows(&self) -> Result<Vec<(String, String)>, StoreError> {
        const SQL: &str = "SELECT region, replica FROM shard_assignments ORDER BY region, replica";
        Ok(in_tx!(self, primary, |tx| {
            sqlx::query_as::<_, (String, String)>(SQL)
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?
        }))
    }

    /// Writes the configured map when the table is empty (first start).
    pub async fn seed_shards(
        &self,
        regions: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), StoreError> {
        if regions.is_empty() || !self.assignment_rows().await?.is_empty() {
            return Ok(());
        }
        in_tx!(self, admin, |tx| {
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
        self.refresh_assignments().await
    }

    /// Replaces a region's replicas. Every instance picks it up within seconds.
    pub async fn assign_region(
        &self,
        region: &Region,
        replicas: &[String],
        actor: &str,
    ) -> Result<(), StoreError> {
        let known = self.inner.replicas.names();
        if let Some(unknown) = replicas.iter().find(|r| !known.contains(r)) {
            return Err(StoreError::UnknownReplica(unknown.clone()));
        }
        let details = serde_json::json!({ "replicas": replicas });
        in_tx!(self, admin, |tx| {
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
        self.refresh_assignments().await
    }

    /// Reloads the map from the primary now.
    pub async fn refresh_assignments(&self) -> Result<(), StoreError> {
        if !self.inner.replicas.begin_refresh() {
            return Ok(());
        }
        match self.assignment_rows().await {
            Ok(rows) => {
                self.inner.replicas.set_assignments(&rows);
                Ok(())
            }
            Err(e) => {
                self.inner.replicas.end_refresh_failed();
                Err(e)
            }
        }
    }

    /// Reloads a stale region map: inline the first time (there is nothing
    /// to route by yet), in the background afterwards, so that a slow or
    /// unreachable primary never holds up a replica read.
    pub(crate) async fn refresh_assignments_if_stale(&self) {
        if !self.inner.replicas.assignments_stale() {
            return;
        }
        let store = self.clone();
        let refresh = async move {
            if let Err(e) = store.refresh_assignments().await {
                tracing::warn!(error = %e, "could not reload the region map; keeping the last one");
            }
        };
        if self.inner.replicas.assignments_loaded() {
            tokio::spawn(refresh);
        } else {
            refresh.await;
        }
    }

    /// Each replica's reachability and lag, as the primary reports it.
    pub async fn replica_status(&self) -> Result<Vec<ReplicaStatus>, StoreError> {
        self.refresh_assignments().await?;
        let lags: BTreeMap<String, (i64, i64)> = match &self.inner.pools {
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
        let pings = self.inner.replicas.ping_all().await;
        Ok(pings
            .into_iter()
            .map(|(name, res)| {
                let lag = lags.get(&name);
                ReplicaStatus {
                    synchronous: self.inner.replicas.is_sync(&name),
                    reachable: res.is_ok(),
                    lag_bytes: lag.map(|l| l.0),
                    lag_ms: lag.map(|l| l.1),
                    regions: self.inner.replicas.regions_of(&name),
                    name,
                }
            })
            .collect())
    }
}
