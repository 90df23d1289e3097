//! `walletctl reconcile`: for cron. Exit 0 when clean, 1 when differences
//! were found (fixed or not), 2 when a check could not run.

use clap::Args;
use tabled::Tabled;
use walletctl_core::Backends;
use walletctl_core::ops::reconcile::{Limits, Outcome, Report, reconcile};

use crate::output::{Format, OutputOpts, print};
use crate::{ExitStatus, GlobalOpts};

/// `walletctl reconcile`'s options (its help text is on `Command::Reconcile`).
#[derive(Debug, Args)]
pub struct Opts {
    /// Repair what can be repaired safely.
    #[arg(long)]
    fix: bool,
    /// Unpublished events older than this are a difference. Default: reconcile.outbox_age_secs (60).
    #[arg(long, value_name = "SECS")]
    outbox_age_secs: Option<u64>,
    /// A standby further behind than this is a difference. Default: reconcile.replica_lag_secs (30).
    #[arg(long, value_name = "SECS")]
    replica_lag_secs: Option<u64>,
    #[command(flatten)]
    out: OutputOpts,
}

#[derive(Tabled)]
struct Row {
    check: &'static str,
    result: &'static str,
    checked: u64,
    found: u64,
    fixed: u64,
}

/// Prints the report; the exit status says how it came out.
pub fn report(format: Format, report: &Report) -> anyhow::Result<()> {
    let rows = report.checks.iter().map(|c| Row {
        check: c.check,
        result: match c.outcome {
            Outcome::Ok => "ok",
            Outcome::Differences => "differences",
            Outcome::Skipped => "skipped",
            Outcome::Error => "error",
        },
        checked: c.checked,
        found: c.found,
        fixed: c.fixed,
    });
    print(format, report, rows)?;
    if format == Format::Table {
        for c in &report.checks {
            for d in &c.details {
                println!("  {}: {d}", c.check);
            }
        }
    }
    Ok(())
}

/// Runs `reconcile`.
pub async fn run(g: &GlobalOpts, opts: Opts) -> anyhow::Result<()> {
    let outcome = async {
        let config = g.load_config()?;
        let limits = Limits {
            outbox_age_ms: opts
                .outbox_age_secs
                .unwrap_or(config.reconcile.outbox_age_secs) as i64
                * 1000,
            replica_lag_ms: opts
                .replica_lag_secs
                .unwrap_or(config.reconcile.replica_lag_secs) as i64
                * 1000,
        };
        let backends = Backends::open(config).await?;
        // Drawn only on a terminal; hidden when the output is piped.
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let r = reconcile(&backends, limits, opts.fix, &|check, n| {
            bar.set_message(format!("{check}: {n} checked"));
        })
        .await;
        bar.finish_and_clear();
        anyhow::Ok(r)
    }
    .await;
    match outcome {
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(ExitStatus(2).into())
        }
        Ok(r) => {
            report(opts.out.format, &r)?;
            if r.failed() {
                Err(ExitStatus(2).into())
            } else if !r.clean() {
                Err(ExitStatus(1).into())
            } else {
                Ok(())
            }
        }
    }
}
