//! The `walletctl` command line: one module per subcommand, each with its
//! options (whose doc comments are the `--help` text) and its `run`.

pub mod audit;
pub mod bench;
pub mod bench_ads;
pub mod bench_display;
pub mod bench_http;
pub mod campaigns;
pub mod client;
pub mod completions;
pub mod config_cmd;
pub mod gc;
pub mod kafka;
pub mod migrate;
pub mod output;
pub mod prompt;
pub mod reconcile;
pub mod serve;
pub mod shards;
pub mod token;
pub mod wallet;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use walletctl_core::Config;
use walletctl_core::config::{LogFormat, LogOverride, Overrides};

/// walletctl: wallets, ad campaigns and ad serving in one binary.
///
/// With no configuration everything runs embedded in one process (a SQLite
/// store and event log under the data directory). With a configuration file
/// or WALLETCTL_* variables it runs on PostgreSQL (primary, replicas,
/// PgBouncer), Redis, MongoDB and Kafka.
#[derive(Debug, Parser)]
#[command(
    name = "walletctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Configuration file (TOML). Default: ./walletctl.toml if present, else the embedded default.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "WALLETCTL_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    /// Where the embedded store, event log and operator token live.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format: text for people, json for log pipelines.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl GlobalOpts {
    /// Reads the configuration once, with these flags as the top layer.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            log: self.log_format.map(|f| LogOverride {
                format: match f {
                    LogFormatArg::Text => LogFormat::Text,
                    LogFormatArg::Json => LogFormat::Json,
                },
            }),
        };
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the wallet, ads management and ad display services.
    ///
    /// Runs until SIGINT or SIGTERM, then stops gracefully: /readyz answers
    /// 503 "stopping" at once, everything else keeps answering for
    /// listen.drain_ms (default 0; a second signal ends it early), then the
    /// workers stop, then the services finish their in-flight requests.
    ///
    /// Default ports: wallet 8480, ads 8481, display 8482, and the admin
    /// listener 8483 on loopback (set them with [listen] in the configuration
    /// or WALLETCTL_LISTEN__WALLET and friends). Every service answers
    /// /healthz and /readyz; /metrics is served with no token on the admin
    /// listener, and on a service port only to a token with the metrics scope.
    Serve(serve::Opts),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(config_cmd::Cmd),
    /// Run or show database migrations.
    ///
    /// Run pending migrations of the wallet store and prepare the campaign store
    /// (the default), or show which wallet migrations have run. On MongoDB it
    /// creates the campaign indexes, and shards the collection by hashed user_id
    /// when connected to a mongos (it says when it skipped that).
    Migrate(migrate::Opts),
    /// Create wallets, read balances, move money (talks to a running wallet service).
    #[command(subcommand)]
    Wallet(wallet::Cmd),
    /// Ad campaigns: list, show, create, pause, resume, upload an image, show billing (talks to a running ads service); sync the cache.
    #[command(subcommand)]
    Campaigns(campaigns::Cmd),
    /// The region → replica map: list, status with replication lag, assign.
    #[command(subcommand)]
    Shards(shards::Cmd),
    /// Create and revoke API tokens.
    #[command(subcommand)]
    Token(token::Cmd),
    /// Show the audit trail: who changed what, when and why.
    Audit(audit::Opts),
    /// Measure the services under load: deductions, balance reads, pause latency, ingest, ad decisions and billing.
    #[command(subcommand)]
    Bench(bench::Cmd),
    /// The event log (Kafka, or the embedded log): create and check topics, show consumer lag, replay a window.
    #[command(subcommand)]
    Kafka(kafka::Cmd),
    /// Check that the stores agree (ledger, outbox, cache, campaign statuses, billing, replicas); --fix repairs what is safe. Exit 0 clean, 1 differences, 2 error.
    ///
    /// What it checks, and what --fix does: each wallet's balance against its
    /// ledger; events unpublished for longer than --outbox-age-secs (relayed);
    /// the Redis campaign cache against the campaign store (rebuilt); campaign
    /// statuses against balances and budgets, and spend against billing
    /// (paused, resumed, copied); billed ad events against ad_charge ledger
    /// entries; standbys' reachability and lag. Money differences are never
    /// changed: a person decides. Reads the backends directly: configure it
    /// like `serve`.
    Reconcile(reconcile::Opts),
    /// Remove what is past its retention: old idempotency keys, published outbox rows, old embedded events.
    ///
    /// Remove idempotency keys older than retention.idempotency_key_days,
    /// published outbox rows older than retention.outbox_published_hours, and
    /// embedded event-log events older than retention.event_log_days, in
    /// batches of retention.batch rows. The ledger, the audit trail and billed
    /// ad events are never removed. Shows the counts and asks first; --yes
    /// skips the question (cron), --dry-run only counts.
    Gc(gc::Opts),
    /// Print shell completions, e.g. `walletctl completions bash > /etc/bash_completion.d/walletctl`.
    Completions(completions::Opts),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Serve(opts) => serve::run(&g, opts).await,
        Command::Config(cmd) => config_cmd::run(&g, cmd),
        Command::Migrate(opts) => migrate::run(&g, opts).await,
        Command::Wallet(cmd) => wallet::run(&g, cmd).await,
        Command::Campaigns(cmd) => campaigns::run(&g, cmd).await,
        Command::Shards(cmd) => shards::run(&g, cmd).await,
        Command::Token(cmd) => token::run(&g, cmd).await,
        Command::Bench(cmd) => bench::run(&g, cmd).await,
        Command::Audit(opts) => audit::run(&g, opts).await,
        Command::Completions(opts) => completions::run(opts),
        Command::Gc(opts) => gc::run(&g, opts).await,
        Command::Kafka(cmd) => kafka::run(&g, cmd).await,
        Command::Reconcile(opts) => reconcile::run(&g, opts).await,
    }
}

/// A failure a user can fix by changing the request (2), or anything else (1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A command that has said what it had to and ends with this exit code
/// (nothing more is printed).
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub struct ExitStatus(pub u8);

/// The process exit code for an error: a command's own [`ExitStatus`], 2
/// for a refused request, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(ExitStatus(code)) = e.downcast_ref::<ExitStatus>() {
        return *code;
    }
    if e.downcast_ref::<UsageError>().is_some()
        || e.downcast_ref::<client::ApiFailure>()
            .is_some_and(|f| f.status < 500)
    {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
