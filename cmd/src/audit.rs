//! `walletctl audit`: who changed what, when and why.

use clap::Args;
use tabled::Tabled;
use walletctl_core::platform::audit::AuditStore;
use walletctl_core::platform::sql::Db;

use crate::GlobalOpts;
use crate::output::{OutputOpts, print};

/// Show the audit trail (adjustments, wallet creations, shard assignments), newest first.
#[derive(Debug, Args)]
pub struct Opts {
    /// Only entries about this user id or region.
    #[arg(long)]
    pub target: Option<String>,
    /// How many entries.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub out: OutputOpts,
}

#[derive(Tabled)]
struct Row {
    id: i64,
    at_ms: i64,
    actor: String,
    action: String,
    target: String,
    details: String,
}

/// Runs `audit`.
pub async fn run(g: &GlobalOpts, opts: Opts) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let db = Db::open(&config)?;
    let entries = AuditStore::new(db.clone())
        .audit_entries(opts.target.as_deref(), opts.limit)
        .await;
    db.close().await;
    let entries = entries?;
    let rows = entries.iter().map(|e| Row {
        id: e.id,
        at_ms: e.created_at_ms,
        actor: e.actor.clone(),
        action: e.action.clone(),
        target: e.target.clone(),
        details: e.details.clone(),
    });
    print(opts.out.format, &entries, rows)
}
