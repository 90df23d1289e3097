//! `walletctl gc`: retention, by hand or from cron (`serve` also runs it on
//! a schedule, `retention.gc_interval_secs`).

use clap::Args;
use serde::Serialize;
use tabled::Tabled;
use walletctl_core::Backends;
use walletctl_core::ops::retention::{Cutoffs, GcReport, gc};

use crate::output::{Format, OutputOpts, print};
use crate::{GlobalOpts, UsageError};

/// `walletctl gc`'s options (its help text is on `Command::Gc`).
#[derive(Debug, Args)]
pub struct Opts {
    /// Only count what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    out: OutputOpts,
}

#[derive(Serialize, Tabled)]
struct Row {
    what: &'static str,
    older_than: String,
    rows: String,
}

fn rows(report: &GcReport, config: &walletctl_core::config::RetentionConfig) -> Vec<Row> {
    vec![
        Row {
            what: "idempotency keys",
            older_than: format!("{} days", config.idempotency_key_days),
            rows: report.idempotency_keys.to_string(),
        },
        Row {
            what: "published outbox rows",
            older_than: format!("{} hours", config.outbox_published_hours),
            rows: report.outbox.to_string(),
        },
        Row {
            what: "embedded event log",
            older_than: format!("{} days", config.event_log_days),
            rows: match (report.event_log, report.event_log_kept) {
                (Some(n), Some(kept)) if kept > 0 => {
                    format!("{n} (kept {kept} not yet consumed)")
                }
                (Some(n), _) => n.to_string(),
                (None, _) => "- (Kafka keeps its own retention)".into(),
            },
        },
    ]
}

/// Runs `gc`.
pub async fn run(g: &GlobalOpts, opts: Opts) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let retention = config.retention.clone();
    let backends = Backends::open(config).await?;
    let cutoffs = Cutoffs::at(&retention, walletctl_core::now_ms());
    let none = |_: u64| {};
    let counted = gc(&backends, cutoffs, retention.batch, true, &none).await?;
    if opts.dry_run {
        return print(opts.out.format, &counted, rows(&counted, &retention));
    }
    if !opts.yes {
        if opts.out.format == Format::Table {
            print(Format::Table, &counted, rows(&counted, &retention))?;
        }
        if !crate::prompt::confirm("remove these rows")? {
            return Err(UsageError("not confirmed; nothing removed".into()).into());
        }
    }
    // Drawn only on a terminal; hidden when the output is piped.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(counted.idempotency_keys + counted.outbox),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let removed = gc(&backends, cutoffs, retention.batch, false, &|n| {
        bar.set_position(n)
    })
    .await?;
    bar.finish_and_clear();
    print(opts.out.format, &removed, rows(&removed, &retention))
}
