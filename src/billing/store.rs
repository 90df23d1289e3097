//! Charging ad events exactly once: a batch of events in one SQL
//! transaction, one commit (see [`Store::bill_batch`] for the steps). The
//! campaigns' counters rows are locked first, so one campaign's events are
//! billed one at a time whatever the number of billing workers; an event
//! seen before is answered from its record; the charges go through the
//! wallet's own money path on the same connection, as `ad_charge` entries
//! with idempotency keys `ad:{event_id}` of the `billing` caller.
//!
//! One commit covers the wallets, the ledger, the outbox and the billing
//! rows: no crash can charge without recording or record without charging.

use serde::Serialize;

use super::ACTOR;
use super::rules::{self, Counters, Decision, Terms, UnbilledReason};
use crate::display::AdEvent;
use crate::domain::{IdempotencyKey, UserId};
use crate::now_ms;
use crate::platform::sql::{Store, StoreError, in_tx};
use crate::wallet::rules as wallet_rules;
use crate::wallet::{EntryKind, MoneyCommand, MoneyConn, Outcome};
use std::collections::{BTreeMap, HashMap};

/// Whether an event was charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillStatus {
    /// Charged (possibly 0, a fraction accrued).
    Billed,
    /// Not charged; see the reason.
    Unbilled,
}

/// One ad event as billing recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// The event.
    pub event_id: String,
    /// The campaign.
    pub campaign_id: String,
    /// The advertiser.
    pub user_id: String,
    /// `impression` or `click`.
    pub kind: String,
    /// Billed or not.
    pub status: BillStatus,
    /// Minor units charged.
    pub amount: i64,
    /// Why not, when unbilled.
    pub reason: Option<UnbilledReason>,
    /// The `ad_charge` ledger entry, when something was charged.
    pub entry_id: Option<i64>,
    /// When the display service received it.
    pub occurred_at_ms: i64,
    /// When it was billed.
    pub billed_at_ms: i64,
}

/// What billing one event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    /// The event's record.
    pub record: EventRecord,
    /// Whether it was billed before (nothing changed now).
    pub duplicate: bool,
    /// The campaign's counters after it.
    pub counters: Counters,
    /// Whether a budget is now spent (or refused this event): the campaign
    /// should pause with `budget_exhausted`.
    pub budget_spent: bool,
}

/// A campaign's billing totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CampaignBilling {
    /// The campaign.
    pub campaign_id: String,
    /// Impressions billed.
    pub impressions: i64,
    /// Clicks billed.
    pub clicks: i64,
    /// Minor units charged.
    pub spent: i64,
    /// Accrued thousandths of a minor unit not yet charged.
    pub remainder_milli: i64,
    /// Events not billed.
    pub unbilled: i64,
    /// The UTC day (days since the epoch) `day_spent` counts.
    pub day: i64,
    /// Minor units charged on `day`.
    pub day_spent: i64,
}

impl CampaignBilling {
    /// Billing's counters, for the budget rules.
    pub fn counters(&self) -> Counters {
        Counters {
            impressions: self.impressions,
            clicks: self.clicks,
            spent: self.spent,
            remainder_milli: self.remainder_milli,
            day: self.day,
            day_spent: self.day_spent,
        }
    }
}

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

/// Event rows inserted per statement.
const INSERT_CHUNK: usize = 100;

impl Store {
    /// Bills one ad event; see [`Store::bill_batch`].
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
    /// 2. events recorded before (or earlier in the batch) are answered from
    ///    their records: nothing changes (redelivery, replay, repeats);
    /// 3. the advertisers' wallets are locked, in user-id order, and their
    ///    balances read: counters before wallets, each in id order, so two
    ///    billing transactions never wait on each other in a cycle, and a
    ///    wallet request (which locks one wallet) never waits on billing
    ///    while billing waits on it;
    /// 4. each new event is priced in order ([`rules::decide`]) against its
    ///    campaign's running counters and its wallet's running balance;
    /// 5. the charges go through the wallet's money path on this connection
    ///    (`ad_charge` entries, keys `ad:{event_id}` of caller `billing`),
    ///    one call per advertiser; each must be applied as decided in 4;
    /// 6. the counters and the events' records are written.
    pub async fn bill_batch(
        &self,
        events: &[(AdEvent, Option<Terms>)],
    ) -> Result<Vec<Billed>, StoreError> {
        let now = now_ms();
        let today = rules::day_of(now);
        let bad = |e: &AdEvent, why: String| {
            StoreError::Failed(format!("ad event {}: {why}", e.event_id))
        };
        let mut parsed = Vec::with_capacity(events.len());
        for (e, _) in events {
            let user = UserId::parse(&e.user_id).map_err(|x| bad(e, x.to_string()))?;
            let key = IdempotencyKey::parse(&format!("ad:{}", e.event_id))
                .map_err(|x| bad(e, x.to_string()))?;
            parsed.push((user, key));
        }
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
        let (billed, changed) = in_tx!(self, money, |tx| {
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
            // 3. Wallets, locked in user order (a no-op update takes the row
            // lock on PostgreSQL; SQLite's one writer is the lock).
            let mut balances: HashMap<&str, i64> = HashMap::new();
            for user in &users {
                let b: Option<i64> = sqlx::query_scalar(
                    "UPDATE wallets SET balance = balance WHERE user_id = $1 RETURNING balance",
                )
                .persistent(false)
                .bind(*user)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(b) = b {
                    balances.insert(user, b);
                }
            }
            // 4. Price each new event in order.
            let mut out: Vec<Billed> = Vec::with_capacity(events.len());
            let mut fresh: Vec<usize> = Vec::new();
            let mut first_in_batch: HashMap<&str, usize> = HashMap::new();
            let mut repeats: Vec<(usize, usize)> = Vec::new();
            let mut charges: BTreeMap<&str, Vec<(usize, MoneyCommand)>> = BTreeMap::new();
            for (i, ((event, terms), (user, key))) in events.iter().zip(&parsed).enumerate() {
                let c = counters
                    .get_mut(event.campaign_id.as_str())
                    .ok_or_else(|| {
                        StoreError::Failed("a campaign's counters were not locked".into())
                    })?;
                let spent = |c: &Counters, reason: Option<UnbilledReason>| {
                    terms
                        .as_ref()
                        .is_some_and(|t| rules::exhausted(t, c, today))
                        || reason.is_some_and(UnbilledReason::is_budget)
                };
                if let Some(&first) = first_in_batch.get(event.event_id.as_str()) {
                    // Filled from the first once its charge is applied (step 5).
                    repeats.push((i, first));
                    let mut again = out[first].clone();
                    again.duplicate = true;
                    out.push(again);
                    continue;
                }
                if let Some(record) = earlier.get(&event.event_id) {
                    out.push(Billed {
                        budget_spent: spent(c, record.reason),
                        record: record.clone(),
                        duplicate: true,
                        counters: *c,
                    });
                    continue;
                }
                let decision = match terms {
                    None => Decision::Refuse(UnbilledReason::CampaignUnknown),
                    Some(t) => rules::decide(event.kind, t, c, today),
                };
                let outcome: Result<i64, UnbilledReason> = match decision {
                    Decision::Refuse(reason) => Err(reason),
                    Decision::Charge { amount: 0, next } => {
                        *c = next;
                        Ok(0)
                    }
                    Decision::Charge { amount, next } => {
                        match balances.get_mut(event.user_id.as_str()) {
                            None => Err(UnbilledReason::WalletNotFound),
                            Some(balance) => match wallet_rules::apply(*balance, -amount) {
                                Ok(after) => {
                                    *balance = after;
                                    *c = next;
                                    charges.entry(event.user_id.as_str()).or_default().push((
                                        i,
                                        MoneyCommand {
                                            user: user.clone(),
                                            kind: EntryKind::AdCharge,
                                            delta: -amount,
                                            reason: Some(format!(
                                                "{} {}",
                                                event.kind.as_str(),
                                                event.campaign_id
                                            )),
                                            reference: Some(event.event_id.clone()),
                                            key: key.clone(),
                                            actor: ACTOR.to_owned(),
                                            fence: None,
                                        },
                                    ));
                                    Ok(amount)
                                }
                                Err(_) => Err(UnbilledReason::InsufficientFunds),
                            },
                        }
                    }
                };
                let record = EventRecord {
                    event_id: event.event_id.clone(),
                    campaign_id: event.campaign_id.clone(),
                    user_id: event.user_id.clone(),
                    kind: event.kind.as_str().to_owned(),
                    status: if outcome.is_ok() {
                        BillStatus::Billed
                    } else {
                        BillStatus::Unbilled
                    },
                    amount: outcome.unwrap_or(0),
                    reason: outcome.err(),
                    entry_id: None,
                    occurred_at_ms: event.occurred_at_ms,
                    billed_at_ms: now,
                };
                first_in_batch.insert(event.event_id.as_str(), i);
                out.push(Billed {
                    budget_spent: spent(c, record.reason),
                    record,
                    duplicate: false,
                    counters: *c,
                });
                fresh.push(i);
            }
            // 5. The charges, through the wallet's money path, per advertiser.
            let mut changed = false;
            for list in charges.values() {
                let cmds: Vec<MoneyCommand> = list.iter().map(|(_, c)| c.clone()).collect();
                let (results, wallet_changed) = tx.apply_in(self, &cmds).await?;
                changed |= wallet_changed;
                for ((i, _), result) in list.iter().zip(results) {
                    match result {
                        Ok(Outcome {
                            result: Ok(entry), ..
                        }) => {
                            out[*i].record.entry_id = Some(entry.id);
                        }
                        other => {
                            return Err(StoreError::Failed(format!(
                                "an ad charge decided under the wallet's lock was answered {other:?}"
                            )));
                        }
                    }
                }
            }
            for (repeat, first) in repeats {
                out[repeat].record = out[first].record.clone();
            }
            // 6. Counters and records.
            for (campaign, c) in &counters {
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
                .bind(now)
                .bind(*campaign)
                .execute(&mut *tx)
                .await?;
            }
            for chunk in fresh.chunks(INSERT_CHUNK) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|r| format!("({})", placeholders(r * 10 + 1, 10)))
                    .collect();
                let sql = format!(
                    "INSERT INTO ad_events ({EVENT_COLUMNS}) VALUES {}",
                    rows.join(", ")
                );
                let mut insert = sqlx::query(&sql).persistent(false);
                for &i in chunk {
                    let r = &out[i].record;
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
                insert.execute(&mut *tx).await?;
            }
            (out, changed)
        });
        if changed {
            self.inner.outbox_notify.notify_one();
        }
        Ok(billed)
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
        Ok(in_tx!(self, primary, |tx| {
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
        let rows = in_tx!(self, primary, |tx| {
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
        let row = in_tx!(self, primary, |tx| {
            sqlx::query_as::<_, (i64, i64, i64, i64, i64, i64, i64)>(SQL)
                .persistent(false)
                .bind(campaign)
                .fetch_optional(&mut *tx)
                .await?
        });
        Ok(row.map(|r| CampaignBilling {
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
