//! `walletctl kafka replay`: re-processes a window of a topic through the
//! same idempotent handlers the services use: billing for `ad_events`,
//! campaign state for `balance_updated` and ingest for `campaign_created`.
//! A dry run (the default) classifies each event as already applied, to be
//! applied, or invalid; `execute` applies what is missing. A window already
//! processed changes nothing, even executed: billing recognises its events,
//! campaign state its wallet versions, ingest its campaigns.

use serde::Serialize;
use std::collections::HashSet;

use crate::Backends;
use crate::ads::{AdsService, CampaignInput, Created, NewCampaign};
use crate::billing::Biller;
use crate::display::AdEvent;
use crate::domain::UserId;
use crate::events::{Message, Position, topic};
use crate::wallet::BalanceUpdated;

/// Events read per page.
const PAGE: usize = 500;
/// Differences listed at most.
const SHOWN: usize = 20;

/// What to replay.
#[derive(Debug, Clone)]
pub struct Window {
    /// The logical topic.
    pub topic: String,
    /// One partition, or all.
    pub partition: Option<i32>,
    /// Where to start (inclusive).
    pub from: Position,
    /// Where to stop (exclusive); `End` for the newest.
    pub to: Position,
}

/// The offsets a partition was replayed over.
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// The partition.
    pub partition: i32,
    /// First offset.
    pub from: i64,
    /// One past the last.
    pub to: i64,
}

/// What a replay found (and, executed, did).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    /// The logical topic.
    pub topic: String,
    /// The offsets read per partition.
    pub spans: Vec<Span>,
    /// Events read.
    pub read: u64,
    /// Events whose effect was already there.
    pub already_applied: u64,
    /// Events whose effect was missing (applied now if executed).
    pub to_apply: u64,
    /// Events no handler can apply (unreadable, invalid, conflicting).
    pub invalid: u64,
    /// Whether the missing effects were applied.
    pub executed: bool,
    /// The first differences, one line each.
    pub differences: Vec<String>,
}

impl ReplayReport {
    fn note(&mut self, line: String) {
        if self.differences.len() < SHOWN {
            self.differences.push(line);
        }
    }
}

/// The topics replay can re-process.
pub const REPLAYABLE: [&str; 3] = [
    topic::AD_EVENTS,
    topic::BALANCE_UPDATED,
    topic::CAMPAIGN_CREATED,
];

/// Replays `window`; `progress` gets (events read, events in the window).
pub async fn replay(
    backends: &Backends,
    window: &Window,
    execute: bool,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<ReplayReport> {
    anyhow::ensure!(
        REPLAYABLE.contains(&window.topic.as_str()),
        "replay handles {}, not {}",
        REPLAYABLE.join(", "),
        window.topic
    );
    let events = &backends.events;
    let info = events.describe(&window.topic).await?;
    anyhow::ensure!(info.exists, "topic {} does not exist", window.topic);
    let mut report = ReplayReport {
        topic: window.topic.clone(),
        executed: execute,
        ..ReplayReport::default()
    };
    for p in &info.partitions {
        if window.partition.is_some_and(|want| want != p.partition) {
            continue;
        }
        let from = events
            .resolve(&window.topic, p.partition, window.from)
            .await?
            .max(p.low);
        let to = events
            .resolve(&window.topic, p.partition, window.to)
            .await?
            .min(p.high);
        report.spans.push(Span {
            partition: p.partition,
            from,
            to: to.max(from),
        });
    }
    if let Some(want) = window.partition {
        anyhow::ensure!(
            !report.spans.is_empty(),
            "topic {} has no partition {want}",
            window.topic
        );
    }
    let total: u64 = report.spans.iter().map(|s| (s.to - s.from) as u64).sum();
    let ads = super::ads_service(backends);
    let biller = Biller::new(backends.billing.clone(), ads.clone());
    for span in report.spans.clone() {
        let mut at = span.from;
        while at < span.to {
            let page = events
                .read(&window.topic, span.partition, at, span.to, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            at = last.offset + 1;
            report.read += page.len() as u64;
            match window.topic.as_str() {
                topic::AD_EVENTS => {
                    ad_events(backends, &biller, &page, execute, &mut report).await?
                }
                topic::BALANCE_UPDATED => {
                    balances(backends, &ads, &page, execute, &mut report).await?
                }
                _ => campaigns(backends, &ads, &page, execute, &mut report).await?,
            }
            progress(report.read, total);
        }
    }
    Ok(report)
}

async fn ad_events(
    backends: &Backends,
    biller: &Biller,
    page: &[Message],
    execute: bool,
    report: &mut ReplayReport,
) -> anyhow::Result<()> {
    let mut valid = Vec::new();
    for m in page {
        match serde_json::from_str::<AdEvent>(&m.payload) {
            Ok(e) if UserId::parse(&e.user_id).is_ok() => valid.push(e),
            _ => {
                report.invalid += 1;
                report.note(format!("offset {}: not an ad event", m.offset));
            }
        }
    }
    let ids: Vec<String> = valid.iter().map(|e| e.event_id.clone()).collect();
    let known: HashSet<String> = backends
        .billing
        .ad_events_known(&ids)
        .await?
        .into_iter()
        .collect();
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for e in valid {
        if known.contains(&e.event_id) || !seen.insert(e.event_id.clone()) {
            report.already_applied += 1;
        } else {
            report.to_apply += 1;
            report.note(format!(
                "{}: {} of {} not billed",
                e.event_id,
                e.kind.as_str(),
                e.campaign_id
            ));
            missing.push(e);
        }
    }
    if execute && !missing.is_empty() {
        biller.bill(&missing).await?;
        biller.copy_spend().await;
    }
    Ok(())
}

async fn balances(
    backends: &Backends,
    ads: &AdsService,
    page: &[Message],
    execute: bool,
    report: &mut ReplayReport,
) -> anyhow::Result<()> {
    for m in page {
        let Some((event, user)) = serde_json::from_str::<BalanceUpdated>(&m.payload)
            .ok()
            .and_then(|e| UserId::parse(&e.user_id).ok().map(|u| (e, u)))
        else {
            report.invalid += 1;
            report.note(format!("offset {}: not a balance_updated event", m.offset));
            continue;
        };
        let followed = backends.campaigns.wallet_version(&user).await?;
        if followed.is_some_and(|v| v >= event.version) {
            report.already_applied += 1;
            continue;
        }
        report.to_apply += 1;
        report.note(format!(
            "{user} version {}: campaigns last followed {}",
            event.version,
            followed.map_or("none".into(), |v| format!("version {v}"))
        ));
        if execute {
            ads.on_balance(&user, event.balance, event.version).await?;
        }
    }
    Ok(())
}

async fn campaigns(
    backends: &Backends,
    ads: &AdsService,
    page: &[Message],
    execute: bool,
    report: &mut ReplayReport,
) -> anyhow::Result<()> {
    for m in page {
        let Some(new) = serde_json::from_str::<CampaignInput>(&m.payload)
            .ok()
            .and_then(|i| NewCampaign::parse(i).ok())
        else {
            report.invalid += 1;
            report.note(format!("offset {}: not a valid campaign", m.offset));
            continue;
        };
        match backends.campaigns.get(new.id()).await? {
            Some(existing) if existing.same_definition(&new) => report.already_applied += 1,
            Some(_) => {
                report.invalid += 1;
                report.note(format!(
                    "{}: the id is taken by another definition",
                    new.id()
                ));
            }
            None => {
                report.to_apply += 1;
                report.note(format!("{}: not stored", new.id()));
                if execute {
                    match ads.create(new).await? {
                        Created::New(_) | Created::Existing(_) => {}
                    }
                }
            }
        }
    }
    Ok(())
}
