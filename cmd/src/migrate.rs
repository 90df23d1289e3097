//! `walletctl migrate`.

use clap::{Args, Subcommand};
use serde::Serialize;
use tabled::Tabled;
use walletctl_core::platform::sql::Store;

use crate::GlobalOpts;
use crate::output::{OutputOpts, print};

/// Run pending migrations (the default), or show which have run.
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

/// Runs `migrate`.
pub async fn run(g: &GlobalOpts, opts: Opts) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let store = Store::open(&config)?;
    let status = |store: &Store| {
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
    match opts.action.unwrap_or(Action::Run { dry_run: false }) {
        Action::Status(out) => {
            let rows = status(&store).await?;
            print(out.format, &rows, &rows)?;
        }
        Action::Run { dry_run: true } => {
            let pending: Vec<Row> = status(&store)
                .await?
                .into_iter()
                .filter(|r| !r.applied)
                .collect();
            if pending.is_empty() {
                println!("nothing to apply");
            }
            for r in pending {
                println!("would apply {} {}", r.version, r.description);
            }
        }
        Action::Run { dry_run: false } => {
            let n = store.migrate().await?;
            println!("applied {n} migration(s)");
        }
    }
    store.close().await;
    Ok(())
}
