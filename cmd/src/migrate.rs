//! `walletctl migrate`.

use clap::{Args, Subcommand};
use serde::Serialize;
use std::sync::Arc;
use tabled::Tabled;

use walletctl_core::Config;
use walletctl_core::ads::store::{CampaignStore, EmbeddedCampaigns, MongoCampaigns};
use walletctl_core::platform::mongo::MongoHandle;
use walletctl_core::platform::sql::Db;

use crate::GlobalOpts;
use crate::output::{OutputOpts, print};

/// `walletctl migrate`'s options (its help text is on `Command::Migrate`).
#[derive(Debug, Args)]
pub struct Opts {
    /// What to do.
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// Migration actions.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Apply pending migrations.
    Run {
        /// Only list what would run.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// List migrations and whether each has run.
    Status(OutputOpts),
}

#[derive(Debug, Serialize, Tabled)]
struct Row {
    version: i64,
    description: String,
    applied: bool,
}

async fn open_campaigns(config: &Config) -> anyhow::Result<Arc<dyn CampaignStore>> {
    Ok(match &config.mongodb {
        Some(m) => Arc::new(MongoCampaigns::new(MongoHandle::open(m).await?)),
        None => {
            std::fs::create_dir_all(&config.data_dir)?;
            Arc::new(EmbeddedCampaigns::open(&config.embedded_campaigns_path())?)
        }
    })
}

/// Runs `migrate`.
pub async fn run(g: &GlobalOpts, opts: Opts) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let store = Db::open(&config)?;
    let status = |store: &Db| {
        let store = store.clone();
        async move {
            Ok::<_, anyhow::Error>(
                store
                    .migration_status()
                    .await?
                    .into_iter()
                    .map(|(version, description, applied)| Row {
                        version,
                        description,
                        applied,
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let run = Action::Run {
        dry_run: false,
        out: OutputOpts {
            format: crate::output::Format::Table,
        },
    };
    match opts.action.unwrap_or(run) {
        Action::Status(out) => {
            let rows = status(&store).await?;
            print(out.format, &rows, &rows)?;
        }
        Action::Run { dry_run: true, out } => {
            let pending: Vec<Row> = status(&store)
                .await?
                .into_iter()
                .filter(|r| !r.applied)
                .collect();
            if out.format == crate::output::Format::Json || !pending.is_empty() {
                print(out.format, &pending, &pending)?;
            } else {
                println!("nothing to apply");
            }
        }
        Action::Run {
            dry_run: false,
            out,
        } => {
            let n = store.migrate().await?;
            // The campaign store: MongoDB indexes (and sharding on a mongos),
            // or the embedded campaigns file's own migrations.
            let campaigns = open_campaigns(&config).await?;
            let report = campaigns.migrate().await?;
            match out.format {
                crate::output::Format::Json => println!(
                    "{}",
                    serde_json::json!({ "applied": n, "campaigns": report })
                ),
                crate::output::Format::Table => {
                    println!("applied {n} migration(s)");
                    for step in report.applied {
                        println!("campaigns: {step}");
                    }
                    for step in report.skipped {
                        println!("campaigns: skipped {step}");
                    }
                }
            }
        }
    }
    store.close().await;
    Ok(())
}
