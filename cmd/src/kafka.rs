//! `walletctl kafka`: the event log as operators see it, on Kafka or the
//! embedded log alike. Reads the backends directly: configure it like `serve`.

use clap::Subcommand;
use serde::Serialize;
use tabled::Tabled;
use walletctl_core::Backends;
use walletctl_core::events::{Position, topic};
use walletctl_core::ops::replay::{REPLAYABLE, Window, replay};

use crate::output::{Format, OutputOpts, print};
use crate::{ExitStatus, GlobalOpts, UsageError};

/// The consumer groups walletctl runs, and the topic each reads.
pub const GROUPS: [(&str, &str); 3] = [
    ("walletctl-ads", topic::BALANCE_UPDATED),
    ("walletctl-ads-ingest", topic::CAMPAIGN_CREATED),
    ("walletctl-billing", topic::AD_EVENTS),
];

/// Event-log commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create the project's topics (partitions and replication factor from
    /// [kafka]) and check each exists as configured. Exit 1 if one does not.
    Topics {
        /// Only check; create nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Each consumer group's committed offset and lag, per partition.
    Lag {
        /// Only this group (walletctl-ads, walletctl-ads-ingest, walletctl-billing).
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Re-process a window of a topic through the services' own idempotent
    /// handlers: billing for ad_events, campaign state for balance_updated,
    /// ingest for campaign_created. A dry run unless --execute: it reports how
    /// many events are already applied, would be applied, or are invalid, and
    /// the first differences. A window already processed changes nothing.
    Replay {
        /// ad_events, balance_updated or campaign_created.
        #[arg(long)]
        topic: String,
        /// Only this partition (default: all).
        #[arg(long)]
        partition: Option<i32>,
        /// Start: an offset, a timestamp (RFC 3339, e.g. 2026-11-25T17:00:00Z), or `beginning`.
        #[arg(long, value_parser = parse_position)]
        from: Position,
        /// Stop before: an offset, a timestamp, or `end` (the default).
        #[arg(long, value_parser = parse_position, default_value = "end")]
        to: Position,
        /// Apply what is missing.
        #[arg(long)]
        execute: bool,
        #[command(flatten)]
        out: OutputOpts,
    },
}

/// `beginning`, `end`, an offset, or an RFC 3339 timestamp.
pub fn parse_position(s: &str) -> Result<Position, String> {
    match s {
        "beginning" => Ok(Position::Beginning),
        "end" => Ok(Position::End),
        _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map(Position::Offset)
            .map_err(|e| format!("{s}: {e}")),
        _ => humantime::parse_rfc3339_weak(s)
            .map_err(|e| {
                format!("{s:?} is not `beginning`, `end`, an offset or an RFC 3339 time: {e}")
            })
            .and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| Position::Timestamp(d.as_millis() as i64))
                    .map_err(|e| e.to_string())
            }),
    }
}

#[derive(Serialize, Tabled)]
struct TopicRow {
    topic: String,
    exists: bool,
    partitions: String,
    replication: String,
    status: &'static str,
}

#[derive(Serialize, Tabled)]
struct LagRow {
    group: String,
    topic: String,
    partition: i32,
    committed: String,
    end: i64,
    lag: i64,
}

#[derive(Tabled)]
struct ReplayRow {
    topic: String,
    read: u64,
    already_applied: u64,
    to_apply: String,
    invalid: u64,
}

/// Runs a kafka command.
pub async fn run(g: &GlobalOpts, cmd: Cmd) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let (partitions, replication) = match &config.kafka {
        Some(k) => (k.partitions, Some(k.replication_factor)),
        None => (1, None),
    };
    let prefix = config
        .kafka
        .as_ref()
        .map(|k| k.topic_prefix.clone())
        .unwrap_or_default();
    let backends = Backends::open(config).await?;
    let events = &backends.events;
    match cmd {
        Cmd::Topics { dry_run, out } => {
            if !dry_run {
                events.ensure_topics().await?;
            }
            let mut rows = Vec::new();
            for t in topic::ALL {
                let info = events.describe(t).await?;
                let n = info.partitions.len() as i32;
                let ok = info.exists
                    && n == partitions
                    && (replication.is_none() || info.replication_factor == replication);
                rows.push(TopicRow {
                    topic: format!("{prefix}{t}"),
                    exists: info.exists,
                    partitions: format!("{n} (want {partitions})"),
                    replication: match (info.replication_factor, replication) {
                        (Some(have), Some(want)) => format!("{have} (want {want})"),
                        _ => "-".into(),
                    },
                    status: if !info.exists {
                        "missing"
                    } else if ok {
                        "ok"
                    } else {
                        "differs from [kafka]"
                    },
                });
            }
            let bad = rows.iter().any(|r| r.status != "ok");
            print(out.format, &rows, &rows)?;
            if bad {
                return Err(ExitStatus(1).into());
            }
            Ok(())
        }
        Cmd::Lag { group, out } => {
            let mut rows = Vec::new();
            for (g, t) in GROUPS {
                if group.as_deref().is_some_and(|want| want != g) {
                    continue;
                }
                for l in events.lag(g, t).await? {
                    rows.push(LagRow {
                        group: g.to_owned(),
                        topic: t.to_owned(),
                        partition: l.partition,
                        committed: l.committed.map_or("-".into(), |c| c.to_string()),
                        end: l.end,
                        lag: l.lag,
                    });
                }
            }
            if let Some(want) = &group
                && rows.is_empty()
                && !GROUPS.iter().any(|(g, _)| g == want)
            {
                return Err(UsageError(format!(
                    "unknown group {want}: one of {}",
                    GROUPS.map(|(g, _)| g).join(", ")
                ))
                .into());
            }
            print(out.format, &rows, &rows)
        }
        Cmd::Replay {
            topic,
            partition,
            from,
            to,
            execute,
            out,
        } => {
            if !REPLAYABLE.contains(&topic.as_str()) {
                return Err(UsageError(format!(
                    "replay handles {}, not {topic}",
                    REPLAYABLE.join(", ")
                ))
                .into());
            }
            let window = Window {
                topic,
                partition,
                from,
                to,
            };
            // Drawn only on a terminal; hidden when the output is piped.
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(0),
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message("replaying");
            let report = replay(&backends, &window, execute, &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await?;
            bar.finish_and_clear();
            print(
                out.format,
                &report,
                [ReplayRow {
                    topic: report.topic.clone(),
                    read: report.read,
                    already_applied: report.already_applied,
                    to_apply: if execute {
                        format!("{} (applied)", report.to_apply)
                    } else {
                        format!("{} (dry run: --execute applies)", report.to_apply)
                    },
                    invalid: report.invalid,
                }],
            )?;
            if out.format == Format::Table {
                for s in &report.spans {
                    println!("  partition {}: offsets {}..{}", s.partition, s.from, s.to);
                }
                for d in &report.differences {
                    println!("  {d}");
                }
            }
            Ok(())
        }
    }
}
