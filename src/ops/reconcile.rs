//! Reconciliation: checks that what several stores say agrees, and repairs
//! what can be repaired safely. Built to run from cron (`walletctl
//! reconcile`) or on a schedule in `serve` (`[reconcile]`).
//!
//! | check | compares | `--fix` |
//! |---|---|---|
//! | `ledger` | each wallet's balance with the sum of its ledger | never: a person decides (`walletctl wallet adjust`) |
//! | `outbox` | events unpublished for longer than a threshold | relays them, if no relay holds the lease |
//! | `cache` | the Redis campaign cache with the campaign store | rebuilds it (`campaigns sync`) |
//! | `campaign_status` | campaign statuses with wallet balances and budgets; `spent` with billing's counters | pauses or resumes (`wallet_empty`, `budget_exhausted`), copies spend |
//! | `billing` | billed ad events with `ad_charge` ledger entries, both ways | never: money |
//! | `replicas` | each standby's reachability and replication lag | never |

use serde::Serialize;

use crate::Backends;
use crate::ads::{AdsService, Campaign, Status, StatusReason};
use crate::billing::LedgerCheck;
use crate::domain::{CampaignId, UserId};
use crate::platform::sql::{ReadConsistency, StoreError};

/// The thresholds of a run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// An event unpublished for longer than this (ms) is a difference.
    pub outbox_age_ms: i64,
    /// A standby further behind than this (ms) is a difference.
    pub replica_lag_ms: i64,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing found.
    Ok,
    /// Differences found (some may have been fixed).
    Differences,
    /// Does not apply here (embedded mode).
    Skipped,
    /// The check could not run.
    Error,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The check's name.
    pub check: &'static str,
    /// How it came out.
    pub outcome: Outcome,
    /// Items looked at.
    pub checked: u64,
    /// Differences found.
    pub found: u64,
    /// Of those, repaired now.
    pub fixed: u64,
    /// The differences (at most 100), or why skipped or failed.
    pub details: Vec<String>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Each check.
    pub checks: Vec<CheckReport>,
    /// Whether `--fix` was given.
    pub fix: bool,
}

impl Report {
    /// Whether every check ran and found nothing.
    pub fn clean(&self) -> bool {
        self.checks
            .iter()
            .all(|c| c.found == 0 && c.outcome != Outcome::Error)
    }

    /// Whether some check could not run.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome == Outcome::Error)
    }
}

struct Check {
    report: CheckReport,
}

impl Check {
    fn new(check: &'static str) -> Check {
        Check {
            report: CheckReport {
                check,
                outcome: Outcome::Ok,
                checked: 0,
                found: 0,
                fixed: 0,
                details: Vec::new(),
            },
        }
    }

    fn found(&mut self, detail: String, fixed: bool) {
        self.report.found += 1;
        self.report.outcome = Outcome::Differences;
        if fixed {
            self.report.fixed += 1;
        }
        if self.report.details.len() < 100 {
            let mark = if fixed { " (fixed)" } else { "" };
            self.report.details.push(format!("{detail}{mark}"));
        }
    }

    fn skipped(mut self, why: &str) -> CheckReport {
        self.report.outcome = Outcome::Skipped;
        self.report.details.push(why.to_owned());
        self.report
    }

    fn finish(self, result: anyhow::Result<()>) -> CheckReport {
        let mut r = self.report;
        if let Err(e) = result {
            r.outcome = Outcome::Error;
            r.details.push(format!("{e:#}"));
        }
        r
    }
}

/// Progress: `(check, items so far)`.
pub type Progress<'a> = &'a (dyn Fn(&str, u64) + Sync);

/// Runs every check; with `fix`, repairs what each check can repair safely.
pub async fn reconcile(
    backends: &Backends,
    limits: Limits,
    fix: bool,
    progress: Progress<'_>,
) -> Report {
    let ads = super::ads_service(backends);
    let checks = vec![
        ledger(backends, progress).await,
        outbox(backends, limits, fix).await,
        cache(backends, &ads, fix, progress).await,
        campaign_status(backends, &ads, fix, progress).await,
        billing(backends).await,
        replicas(backends, limits).await,
    ];
    Report { checks, fix }
}

async fn ledger(backends: &Backends, progress: Progress<'_>) -> CheckReport {
    let mut check = Check::new("ledger");
    let result = async {
        let wallets = &backends.wallets;
        let mut after = String::new();
        loop {
            let rows = wallets.ledger_sums_after(&after).await?;
            let Some(last) = rows.last() else { break };
            after = last.0.clone();
            for (user, balance, sum) in &rows {
                check.report.checked += 1;
                if balance != sum {
                    check.found(
                        format!("{user}: balance {balance}, ledger sums to {sum} (a person decides: walletctl wallet adjust)"),
                        false,
                    );
                }
            }
            progress("ledger", check.report.checked);
        }
        anyhow::Ok(())
    }
    .await;
    check.finish(result)
}

async fn outbox(backends: &Backends, limits: Limits, fix: bool) -> CheckReport {
    let mut check = Check::new("outbox");
    let result = async {
        let store = &backends.outbox;
        let now = crate::domain::now_ms();
        let (n, oldest) = store.outbox_stuck(now - limits.outbox_age_ms).await?;
        check.report.checked = store.outbox_backlog().await? as u64;
        if n == 0 {
            return Ok(());
        }
        let age = oldest.map_or(0, |t| (now - t) / 1000);
        let mut fixed = false;
        if fix {
            let holder = format!("reconcile-{}", uuid::Uuid::new_v4());
            if store.take_relay_lease(&holder, 30_000).await? {
                let mut relayed = 0;
                while let Ok(k) = crate::events::outbox::relay_once(store, &*backends.events, 500).await {
                    relayed += k;
                    if k == 0 {
                        break;
                    }
                }
                store.release_relay_lease(&holder).await?;
                fixed = store.outbox_stuck(now - limits.outbox_age_ms).await?.0 == 0;
                tracing::info!(relayed, "reconcile relayed the outbox");
            }
        }
        let detail = if fix && !fixed {
            format!("{n} events unpublished, the oldest for {age} s; not relayed (the event log refused them, or a relay holds the lease)")
        } else {
            format!("{n} events unpublished, the oldest for {age} s")
        };
        for _ in 0..n {
            check.report.found += 1;
            if fixed {
                check.report.fixed += 1;
            }
        }
        check.report.outcome = Outcome::Differences;
        check.report.details.push(if fixed { format!("{detail} (fixed)") } else { detail });
        anyhow::Ok(())
    }
    .await;
    check.finish(result)
}

async fn cache(
    backends: &Backends,
    ads: &AdsService,
    fix: bool,
    progress: Progress<'_>,
) -> CheckReport {
    let mut check = Check::new("cache");
    if backends.campaign_cache.kind() == "memory" {
        return check.skip_memory();
    }
    let result = async {
        let report = ads.sync(!fix, &|n| progress("cache", n)).await?;
        check.report.checked = report.checked;
        for line in report.differences {
            check.found(line, fix);
        }
        let counted = report.missing + report.stale + report.orphaned;
        if counted > check.report.found {
            // Lines are capped; the counts are not.
            let extra = counted - check.report.found;
            check.report.found += extra;
            if fix {
                check.report.fixed += extra;
            }
        }
        anyhow::Ok(())
    }
    .await;
    check.finish(result)
}

impl Check {
    fn skip_memory(self) -> CheckReport {
        self.skipped("the embedded cache lives in the serve process and is rebuilt at every start")
    }
}

async fn campaign_status(
    backends: &Backends,
    ads: &AdsService,
    fix: bool,
    progress: Progress<'_>,
) -> CheckReport {
    let mut check = Check::new("campaign_status");
    let result = async {
        let mut after: Option<String> = None;
        loop {
            let page = backends.campaigns.page(after.as_deref(), 200).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.campaign_id.clone());
            for c in page {
                check.report.checked += 1;
                campaign(backends, ads, &c, fix, &mut check).await?;
            }
            progress("campaign_status", check.report.checked);
        }
        anyhow::Ok(())
    }
    .await;
    check.finish(result)
}

async fn campaign(
    backends: &Backends,
    ads: &AdsService,
    c: &Campaign,
    fix: bool,
    check: &mut Check,
) -> anyhow::Result<()> {
    let id = CampaignId::parse(&c.campaign_id)?;
    let user = UserId::parse(&c.user_id)?;
    let balance = match backends
        .wallets
        .wallet(&user, ReadConsistency::Strong)
        .await
    {
        Ok(w) => Some(w.wallet.balance),
        Err(StoreError::NotFound("wallet")) => None,
        Err(e) => return Err(e.into()),
    };
    let billed = backends.billing.campaign_billing(&c.campaign_id).await?;
    let counters = billed.as_ref().map(|b| b.counters()).unwrap_or_default();
    let billed_spent = counters.spent;
    let follow = c.follow_wallet(balance);
    let budget_paused =
        c.status == Status::Paused && c.status_reason == Some(StatusReason::BudgetExhausted);
    let today = crate::billing::rules::day_of(crate::domain::now_ms());
    let budget_ok = crate::billing::rules::budget_can_pay(
        &crate::billing::Terms::of(c),
        &counters,
        today,
        c.max_charge(),
    );
    if let Some((Status::Paused, _)) = follow {
        let fixed = fix && ads.settle_wallet(&id, balance).await?.is_some();
        check.found(
            format!(
                "{}: active, but the wallet ({}) cannot pay {}",
                c.campaign_id,
                balance.map_or("none".into(), |b| b.to_string()),
                c.min_charge()
            ),
            fixed,
        );
    } else if let Some((Status::Active, _)) = follow {
        let fixed = fix && ads.settle_wallet(&id, balance).await?.is_some();
        check.found(
            format!(
                "{}: paused for wallet_empty, but the wallet ({}) can pay",
                c.campaign_id,
                balance.unwrap_or_default()
            ),
            fixed,
        );
    } else if c.status == Status::Active && !budget_ok {
        let fixed = fix && ads.exhaust_budget(&id).await?.status == Status::Paused;
        check.found(
            format!(
                "{}: active, but its budget cannot pay its next event (billed {billed_spent} of {}; today {})",
                c.campaign_id, c.budget.lifetime, if counters.day == today { counters.day_spent } else { 0 }
            ),
            fixed,
        );
    } else if budget_paused && budget_ok {
        let fixed = fix && ads.resume_budget(&id).await?.is_some();
        check.found(
            format!(
                "{}: paused for its budget, which can pay again (billed {billed_spent} of {})",
                c.campaign_id, c.budget.lifetime
            ),
            fixed,
        );
    }
    if c.spent != billed_spent {
        let fixed = fix
            && billed_spent > c.spent
            && ads.record_spend(&id, billed_spent).await?.spent == billed_spent;
        check.found(
            format!(
                "{}: spent {} in the campaign, {billed_spent} billed",
                c.campaign_id, c.spent
            ),
            fixed,
        );
    }
    Ok(())
}

async fn billing(backends: &Backends) -> CheckReport {
    let mut check = Check::new("billing");
    let result = async {
        let LedgerCheck {
            events,
            without_entry,
            entries_without_event,
            doubled,
        } = backends.billing.ledger_check().await?;
        check.report.checked = events as u64;
        for (event, amount) in without_entry {
            check.found(
                format!("ad event {event} billed {amount} without its ad_charge entry"),
                false,
            );
        }
        for (entry, user) in entries_without_event {
            check.found(
                format!("ad_charge entry {entry} of {user} has no billed ad event"),
                false,
            );
        }
        for (reference, n) in doubled {
            check.found(
                format!("ad event {reference:?} has {n} ad_charge entries"),
                false,
            );
        }
        anyhow::Ok(())
    }
    .await;
    check.finish(result)
}

async fn replicas(backends: &Backends, limits: Limits) -> CheckReport {
    let mut check = Check::new("replicas");
    if backends.config.postgres.is_none() {
        return check.skipped("the embedded store has no replicas");
    }
    let result = async {
        for r in backends.shards.replica_status().await? {
            check.report.checked += 1;
            if !r.reachable {
                check.found(format!("{}: does not answer", r.name), false);
            } else if let Some(ms) = r.lag_ms.filter(|ms| *ms > limits.replica_lag_ms) {
                check.found(
                    format!(
                        "{}: {ms} ms behind the primary (limit {})",
                        r.name, limits.replica_lag_ms
                    ),
                    false,
                );
            } else if r.lag_ms.is_none() {
                check.found(format!("{}: not streaming from the primary", r.name), false);
            }
        }
        anyhow::Ok(())
    }
    .await;
    check.finish(result)
}
