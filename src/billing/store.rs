//! Billing's SQL: charging ad events exactly once, a batch of events in
//! one SQL transaction and one commit (see [`BillingStore::bill_batch`]
//! for the steps; what each event comes to is decided in `plan.rs`, with no
//! I/O). The campaigns' counters rows are locked first, so one campaign's
//! events are billed one at a time whatever the number of billing workers;
//! an event seen before is answered from its record; the charges go through
//! the wallet's own money path ([`MoneyConn`]) on the same connection, as
//! `ad_charge` entries with idempotency keys `ad:{event_id}` of the
//! `billing` caller.
//!
//! One commit covers the wallets, the ledger, the outbox and the billing
//! rows: no crash can charge without recording or record without charging.

use std::collections::HashMap;

use super::model::{BillStatus, Billed, CampaignBilling, EventRecord};
use super::plan::{self, Priced};
use super::rules::{Counters, Terms, UnbilledReason};
use crate::display::AdEvent;
use crate::domain::now_ms;
use crate::domain::{IdempotencyKey, UserId};
use crate::platform::sql::{Db, StoreError, in_tx};
use crate::wallet::{MoneyCommand, MoneyConn, Outcome, WalletStore};

const COUNTER_COLUMNS: &str = "impressions, clicks, spent, remainder_milli, day, day_spent";
const EVENT_COLUMNS: &str = "event_id, campaign_id, user_id, kind, status, amount, reason, entry_id, occurred_at_ms, billed_at_ms";

type CounterRow = (i64, i64, i64, i64, i64, i64);
type EventRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

fn counters_from(r: CounterRow) -> Counters {
    Counters {
        impressions: r.0,
        clicks: r.1,
        spent: r.2,
        remainder_milli: r.3,
        day: r.4,
        day_spent: r.5,
    }
}

fn record_from(r: EventRow) -> EventRecord {
    EventRecord {
        event_id: r.0,
        campaign_id: r.1,
        user_id: r.2,
        kind: r.3,
        status: if r.4 == "billed" {
            BillStatus::Billed
        } else {
            BillStatus::Unbilled
        },
        amount: r.5,
        reason: r.6.as_deref().and_then(UnbilledReason::parse),
        entry_id: r.7,
        occurred_at_ms: r.8,
        billed_at_ms: r.9,
    }
}

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Billing's records held against the ledger ([`BillingStore::ledger_check`]);
/// each list holds at most 100.
#[derive(Debug, Default)]
pub struct LedgerCheck {
    /// Billed events with an amount.
    pub events: i64,
    /// `(event, amount)`: billed without a matching `ad_charge` entry.
    pub without_entry: Vec<(String, i64)>,
    /// `(entry, user)`: an `ad_charge` entry no billed event names.
    pub entries_without_event: Vec<(i64, String)>,
    /// `(event, entries)`: an event charged more than once.
    pub doubled: Vec<(String, i64)>,
}

/// Event rows inserted per statement.
const INSERT_CHUNK: usize = 100;

/// Writes each campaign's counters inside the caller's transaction `$tx`
/// (of either engine); `?` leaves the caller on failure.
macro_rules! write_counters {
    ($tx:ident, $counters:expr, $now:expr) => {
        for (campaign, c) in $counters {
            sqlx::query(
                "UPDATE ad_billing SET impressions = $1, clicks = $2, spent = $3, remainder_milli = $4, day = $5, day_spent = $6, updated_at_ms = $7 WHERE campaign_id = $8",
            )
            .persistent(false)
            .bind(c.impressions)
            .bind(c.clicks)
            .bind(c.spent)
            .bind(c.remainder_milli)
            .bind(c.day)
            .bind(c.day_spent)
            .bind($now)
            .bind(*campaign)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

/// Inserts the records of the events `$fresh` (indexes into `$out`) inside
/// the caller's transaction `$tx`, [`INSERT_CHUNK`] rows a statement.
macro_rules! write_records {
    ($tx:ident, $out:expr, $fresh:expr) => {
        for chunk in $fresh.chunks(INSERT_CHUNK) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| format!("({})", placeholders(r * 10 + 1, 10)))
                .collect();
            let sql = format!(
                "INSERT INTO ad_events ({EVENT_COLUMNS}) VALUES {}",
                rows.join(", ")
            );
            let mut insert = sqlx::query(&sql).persistent(false);
            for &i in chunk {
                let r: &EventRecord = &$out[i].record;
                insert = insert
                    .bind(r.event_id.clone())
                    .bind(r.campaign_id.clone())
                    .bind(r.user_id.clone())
                    .bind(r.kind.clone())
                    .bind(match r.status {
                        BillStatus::Billed => "billed",
                        BillStatus::Unbilled => "unbilled",
                    })
                    .bind(r.amount)
                    .bind(r.reason.map(UnbilledReason::as_str))
                    .bind(r.entry_id)
                    .bind(r.occurred_at_ms)
                    .bind(r.billed_at_ms);
            }
            insert.execute(&mut *$tx).await?;
        }
    };
}

/// Billing's store: the `ad_billing` counters and `ad_events` records, and
/// the charges through the wallet's money path. Cheap to clone.
#[derive(Clone)]
pub struct BillingStore {
    db: Db,
    wallets: WalletStore,
}

impl BillingStore {
    /// Billing over the wallet store whose money path charges the events.
    pub fn new(wallets: WalletStore) -> BillingStore {
        BillingStore {
            db: wallets.db().clone(),
            wallets,
        }
    }

    /// Bills one ad event; see [`BillingStore::bill_batch`].
    pub async fn bill(&self, event: &AdEvent, terms: Option<&Terms>) -> Result<Billed, StoreError> {
        self.bill_batch(&[(event.clone(), terms.copied())])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Failed("no answer for an ad event".into()))
    }

    /// Bills ad events exactly once, in one transaction and one commit, in
    /// order; each with its campaign's terms (`None`: the campaign does not
    /// exist, recorded unbilled). One answer per event, in order.
    ///
    /// 1. the campaigns' counters rows are created if new and locked, in
    ///    campaign-id order;
    /// 2. events recorded before are read: they are answered from their
    ///    records and change nothing (redelivery, replay, repeats);
    /// 3. the advertisers' wallets are locked, in user-id order, and their
    ///    balances read, through the wallet's port
    ///    ([`MoneyConn::lock_balances`]): counters before wallets, each in
    ///    id order, so two billing transactions never wait on each other in
    ///    a cycle, and a wallet request (which locks one wallet) never waits
    ///    on billing while billing waits on it;
    /// 4. each event is decided in order (`plan.rs`, no I/O) against
    ///    its campaign's running counters and its wallet's running balance;
    /// 5. the charges go through the wallet's money path on this connection
    ///    (`ad_charge` entries, keys `ad:{event_id}` of caller `billing`),
    ///    one call per advertiser; the money path's answer is recorded (the
    ///    ledger entry), and an answer other than the charge decided under
    ///    the same lock aborts the whole batch: nothing is charged;
    /// 6. the counters and the events' records are written.
    pub async fn bill_batch(
        &self,
        events: &[(AdEvent, Option<Terms>)],
    ) -> Result<Vec<Billed>, StoreError> {
        let now = now_ms();
        let priced = events
            .iter()
            .map(|(e, terms)| {
                let bad =
                    |why: String| StoreError::Failed(format!("ad event {}: {why}", e.event_id));
                Ok(Priced {
                    event: e,
                    terms: terms.as_ref(),
                    user: UserId::parse(&e.user_id).map_err(|x| bad(x.to_string()))?,
                    key: IdempotencyKey::parse(&format!("ad:{}", e.event_id))
                        .map_err(|x| bad(x.to_string()))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut campaigns: Vec<(&str, &str)> = events
            .iter()
            .map(|(e, _)| (e.campaign_id.as_str(), e.user_id.as_str()))
            .collect();
        campaigns.sort_unstable();
        campaigns.dedup_by(|a, b| a.0 == b.0);
        let mut users: Vec<&str> = events.iter().map(|(e, _)| e.user_id.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        let mut ids: Vec<&str> = events.iter().map(|(e, _)| e.event_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let lock_sql = format!(
            "UPDATE ad_billing SET updated_at_ms = updated_at_ms WHERE campaign_id = $1 RETURNING {COUNTER_COLUMNS}"
        );
        let find_sql = format!(
            "SELECT {EVENT_COLUMNS} FROM ad_events WHERE event_id IN ({})",
            placeholders(1, ids.len())
        );
        let (billed, changed) = in_tx!(self.db, money, |tx| {
            // 1. Counters, locked in campaign order.
            let mut counters: HashMap<&str, Counters> = HashMap::new();
            for (campaign, user) in &campaigns {
                sqlx::query(
                    "INSERT INTO ad_billing (campaign_id, user_id, updated_at_ms) VALUES ($1, $2, $3) ON CONFLICT (campaign_id) DO NOTHING",
                )
                .persistent(false)
                .bind(*campaign)
                .bind(*user)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query_as::<_, CounterRow>(&lock_sql)
                    .persistent(false)
                    .bind(*campaign)
                    .fetch_one(&mut *tx)
                    .await?;
                counters.insert(campaign, counters_from(row));
            }
            // 2. Events recorded before.
            let mut find = sqlx::query_as::<_, EventRow>(&find_sql).persistent(false);
            for id in &ids {
                find = find.bind(*id);
            }
            let earlier: HashMap<String, EventRecord> = find
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| {
                    let rec = record_from(r);
                    (rec.event_id.clone(), rec)
                })
                .collect();
            // 3. Wallets, locked in user order, through the wallet's port.
            let mut balances = tx.lock_balances(&users).await?;
            // 4. Decide each event in order.
            let mut plan = plan::plan(&priced, &mut counters, &earlier, &mut balances, now)?;
            // 5. The charges, through the wallet's money path, per advertiser.
            let mut changed = false;
            for list in plan.charges.values() {
                let cmds: Vec<MoneyCommand> = list.iter().map(|(_, c)| c.clone()).collect();
                let (results, wallet_changed) = tx.apply_in(&self.wallets, &cmds).await?;
                changed |= wallet_changed;
                for ((i, _), result) in list.iter().zip(results) {
                    match result {
                        Ok(Outcome {
                            result: Ok(entry), ..
                        }) => plan.out[*i].record.entry_id = Some(entry.id),
                        other => {
                            return Err(StoreError::Failed(format!(
                                "an ad charge decided under the wallet's lock was answered {other:?}"
                            )));
                        }
                    }
                }
            }
            for &(repeat, first) in &plan.repeats {
                plan.out[repeat].record = plan.out[first].record.clone();
            }
            // 6. Counters and records.
            write_counters!(tx, &counters, now);
            write_records!(tx, &plan.out, &plan.fresh);
            (plan.out, changed)
        });
        if changed {
            self.db.outbox_written();
        }
        Ok(billed)
    }

    /// Billing's records held against the ledger, read-only, in one
    /// transaction: every billed event has its `ad_charge` entry and every
    /// such entry its event, once (for `reconcile`).
    pub async fn ledger_check(&self) -> Result<LedgerCheck, StoreError> {
        Ok(in_tx!(self.db, primary, |tx| {
            let events: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM ad_events WHERE status = 'billed' AND amount > 0",
            )
            .persistent(false)
            .fetch_one(&mut *tx)
            .await?;
            let without_entry: Vec<(String, i64)> = sqlx::query_as(
                "SELECT e.event_id, e.amount FROM ad_events e LEFT JOIN ledger_entries l ON l.id = e.entry_id \
                 WHERE e.status = 'billed' AND e.amount > 0 AND (l.id IS NULL OR l.kind <> 'ad_charge' OR l.amount <> -e.amount \
                 OR l.reference IS NULL OR l.reference <> e.event_id) ORDER BY e.event_id LIMIT 100",
            )
            .persistent(false)
            .fetch_all(&mut *tx)
            .await?;
            let entries_without_event: Vec<(i64, String)> = sqlx::query_as(
                "SELECT l.id, l.user_id FROM ledger_entries l LEFT JOIN ad_events e ON e.entry_id = l.id \
                 WHERE l.kind = 'ad_charge' AND e.event_id IS NULL ORDER BY l.id LIMIT 100",
            )
            .persistent(false)
            .fetch_all(&mut *tx)
            .await?;
            let doubled: Vec<(String, i64)> = sqlx::query_as(
                "SELECT reference, CAST(COUNT(*) AS BIGINT) FROM ledger_entries WHERE kind = 'ad_charge' \
                 GROUP BY reference HAVING COUNT(*) > 1 ORDER BY reference LIMIT 100",
            )
            .persistent(false)
            .fetch_all(&mut *tx)
            .await?;
            LedgerCheck {
                events,
                without_entry,
                entries_without_event,
                doubled,
            }
        }))
    }

    /// Which of these event ids billing has recorded (billed or not).
    pub async fn ad_events_known(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT event_id FROM ad_events WHERE event_id IN ({})",
            placeholders(1, ids.len())
        );
        Ok(in_tx!(self.db, primary, |tx| {
            let mut q = sqlx::query_scalar::<_, String>(&sql).persistent(false);
            for id in ids {
                q = q.bind(id);
            }
            q.fetch_all(&mut *tx).await?
        }))
    }

    /// The recorded ad events of a campaign, oldest first, at most `limit`
    /// after event id order position `after`.
    pub async fn ad_events(
        &self,
        campaign: &str,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM ad_events WHERE campaign_id = $1 ORDER BY billed_at_ms, event_id LIMIT $2"
        );
        let rows = in_tx!(self.db, primary, |tx| {
            sqlx::query_as::<_, EventRow>(&sql)
                .persistent(false)
                .bind(campaign)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
        });
        Ok(rows.into_iter().map(record_from).collect())
    }

    /// A campaign's billing totals, if it has been billed at all.
    pub async fn campaign_billing(
        &self,
        campaign: &str,
    ) -> Result<Option<CampaignBilling>, StoreError> {
        const SQL: &str = "SELECT b.impressions, b.clicks, b.spent, b.remainder_milli, \
             CAST((SELECT COUNT(*) FROM ad_events e WHERE e.campaign_id = b.campaign_id AND e.status = 'unbilled') AS BIGINT), \
             b.day, b.day_spent FROM ad_billing b WHERE b.campaign_id = $1";
        const BY_REASON: &str = "SELECT COALESCE(reason, ''), CAST(COUNT(*) AS BIGINT) FROM ad_events \
             WHERE campaign_id = $1 AND status = 'unbilled' GROUP BY reason";
        let (row, by_reason) = in_tx!(self.db, primary, |tx| {
            let row = sqlx::query_as::<_, (i64, i64, i64, i64, i64, i64, i64)>(SQL)
                .persistent(false)
                .bind(campaign)
                .fetch_optional(&mut *tx)
                .await?;
            let by_reason = sqlx::query_as::<_, (String, i64)>(BY_REASON)
                .persistent(false)
                .bind(campaign)
                .fetch_all(&mut *tx)
                .await?;
            (row, by_reason)
        });
        Ok(row.map(|r| CampaignBilling {
            unbilled_by_reason: by_reason.into_iter().collect(),
            campaign_id: campaign.to_owned(),
            impressions: r.0,
            clicks: r.1,
            spent: r.2,
            remainder_milli: r.3,
            unbilled: r.4,
            day: r.5,
            day_spent: r.6,
        }))
    }
}
