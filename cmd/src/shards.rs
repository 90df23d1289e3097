//! `walletctl shards`: the region → replica map, stored in the primary.

use clap::Subcommand;
use serde::Serialize;
use tabled::Tabled;
use walletctl_core::domain::Region;
use walletctl_core::platform::sql::Db;
use walletctl_core::shards::ShardStore;
use walletctl_core::wallet::WalletStore;

use crate::output::{OutputOpts, print};
use crate::{GlobalOpts, UsageError};

/// Shard commands (distributed mode; the embedded store has no replicas).
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// The region → replica map.
    List(OutputOpts),
    /// Each replica's reachability and replication lag, and wallets per region.
    Status(OutputOpts),
    /// Replace the replicas that serve a region's reads. Every instance follows within seconds.
    Assign {
        /// The region, e.g. SOUTH_EAST.
        region: String,
        /// Replica names from postgres.replicas, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        replicas: Vec<String>,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
        /// Who is doing this, for the audit trail.
        #[arg(long, env = "USER", default_value = "operator")]
        actor: String,
        #[command(flatten)]
        out: OutputOpts,
    },
}

#[derive(Serialize, Tabled)]
struct ChangeRow {
    region: String,
    before: String,
    after: String,
    result: &'static str,
}

#[derive(Serialize, Tabled)]
struct AssignmentRow {
    region: String,
    replicas: String,
}

#[derive(Serialize, Tabled)]
struct StatusRow {
    replica: String,
    synchronous: bool,
    reachable: bool,
    #[tabled(display = "opt")]
    lag_bytes: Option<i64>,
    #[tabled(display = "opt")]
    lag_ms: Option<i64>,
    regions: String,
}

#[derive(Serialize, Tabled)]
struct RegionRow {
    region: String,
    wallets: i64,
}

fn opt(v: &Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

/// Runs a shards command.
pub async fn run(g: &GlobalOpts, cmd: Cmd) -> anyhow::Result<()> {
    let config = g.load_config()?;
    if config.postgres.is_none() {
        return Err(UsageError("shards need the distributed store: configure [postgres] (the embedded store has no replicas)".into()).into());
    }
    let db = Db::open(&config)?;
    let store = ShardStore::new(db.clone());
    let result = async {
        match cmd {
            Cmd::List(out) => {
                let rows: Vec<AssignmentRow> = store
                    .shard_assignments()
                    .await?
                    .into_iter()
                    .map(|a| AssignmentRow {
                        region: a.region,
                        replicas: a.replicas.join(","),
                    })
                    .collect();
                print(out.format, &rows, &rows)
            }
            Cmd::Status(out) => {
                let replicas: Vec<StatusRow> = store
                    .replica_status()
                    .await?
                    .into_iter()
                    .map(|r| StatusRow {
                        replica: r.name,
                        synchronous: r.synchronous,
                        reachable: r.reachable,
                        lag_bytes: r.lag_bytes,
                        lag_ms: r.lag_ms,
                        regions: r.regions.join(","),
                    })
                    .collect();
                let regions: Vec<RegionRow> = WalletStore::new(db.clone())
                    .users_per_region()
                    .await?
                    .into_iter()
                    .map(|(region, wallets)| RegionRow { region, wallets })
                    .collect();
                match out.format {
                    crate::output::Format::Json => {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(
                                &serde_json::json!({ "replicas": replicas, "regions": regions })
                            )?
                        );
                        Ok(())
                    }
                    crate::output::Format::Table => {
                        print(out.format, &replicas, &replicas)?;
                        print(out.format, &regions, &regions)
                    }
                }
            }
            Cmd::Assign {
                region,
                replicas,
                dry_run,
                actor,
                out,
            } => {
                let region = Region::parse(&region).map_err(|e| UsageError(e.to_string()))?;
                let before = store
                    .shard_assignments()
                    .await?
                    .into_iter()
                    .find(|a| a.region == region.as_str())
                    .map(|a| a.replicas.join(","))
                    .unwrap_or_else(|| "(none)".into());
                if !dry_run {
                    store.assign_region(&region, &replicas, &actor).await?;
                }
                let row = ChangeRow {
                    region: region.to_string(),
                    before,
                    after: replicas.join(","),
                    result: if dry_run {
                        "dry run: nothing changed"
                    } else {
                        "assigned (instances follow within 5 s)"
                    },
                };
                print(out.format, &row, [&row])
            }
        }
    }
    .await;
    db.close().await;
    result
}
