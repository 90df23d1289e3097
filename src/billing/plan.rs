//! Deciding a billing batch, with no I/O: given the events, their
//! campaigns' locked counters, the records of events seen before and the
//! advertisers' locked balances, what each event comes to and which
//! charges the wallet's money path must apply. `store.rs` reads the inputs
//! and writes the outcome in one transaction.

use std::collections::{BTreeMap, HashMap};

use super::ACTOR;
use super::model::{BillStatus, Billed, EventRecord};
use super::rules::{self, Counters, Decision, Terms, UnbilledReason};
use crate::display::AdEvent;
use crate::domain::{IdempotencyKey, UserId};
use crate::platform::sql::StoreError;
use crate::wallet::rules as wallet_rules;
use crate::wallet::{EntryKind, MoneyCommand};

/// One event to bill: the event, its campaign's terms (`None`: the
/// campaign does not exist) and its parsed advertiser and charge key.
pub(super) struct Priced<'a> {
    /// The event.
    pub event: &'a AdEvent,
    /// Its campaign's terms.
    pub terms: Option<&'a Terms>,
    /// The advertiser who pays.
    pub user: UserId,
    /// The charge's idempotency key, `ad:{event_id}`.
    pub key: IdempotencyKey,
}

/// What a batch comes to.
#[derive(Default)]
pub(super) struct Plan<'a> {
    /// One answer per event, in order; a charged event's `entry_id` is
    /// filled once the money path has applied its charge.
    pub out: Vec<Billed>,
    /// The events seen for the first time: their records are written.
    pub fresh: Vec<usize>,
    /// `(repeat, first)`: an event repeated within the batch, answered from
    /// its first occurrence once that is final.
    pub repeats: Vec<(usize, usize)>,
    /// The charges, per advertiser (in user-id order), each with the index
    /// of its event.
    pub charges: BTreeMap<&'a str, Vec<(usize, MoneyCommand)>>,
}

/// Decides each event in order against its campaign's running `counters`
/// and its wallet's running `balances` (advanced as the batch is decided):
/// an event recorded before (`earlier`) or earlier in the batch is answered
/// from its record and changes nothing; a new one is priced with
/// [`rules::decide`], and a charge is kept only if the wallet's own rule
/// ([`wallet_rules::apply`]) accepts it against the locked balance, which
/// is the same rule, on the same balance, that the money path then applies.
pub(super) fn plan<'a>(
    events: &'a [Priced<'a>],
    counters: &mut HashMap<&str, Counters>,
    earlier: &HashMap<String, EventRecord>,
    balances: &mut HashMap<String, i64>,
    now: i64,
) -> Result<Plan<'a>, StoreError> {
    let today = rules::day_of(now);
    let mut plan = Plan::default();
    let mut first_in_batch: HashMap<&str, usize> = HashMap::new();
    for (i, p) in events.iter().enumerate() {
        let event = p.event;
        let c = counters
            .get_mut(event.campaign_id.as_str())
            .ok_or_else(|| StoreError::Failed("a campaign's counters were not locked".into()))?;
        let spent = |c: &Counters, reason: Option<UnbilledReason>| {
            p.terms.is_some_and(|t| rules::exhausted(t, c, today))
                || reason.is_some_and(UnbilledReason::is_budget)
        };
        if let Some(&first) = first_in_batch.get(event.event_id.as_str()) {
            plan.repeats.push((i, first));
            let mut again = plan.out[first].clone();
            again.duplicate = true;
            plan.out.push(again);
            continue;
        }
        if let Some(record) = earlier.get(&event.event_id) {
            plan.out.push(Billed {
                budget_spent: spent(c, record.reason),
                record: record.clone(),
                duplicate: true,
                counters: *c,
            });
            continue;
        }
        let decision = match p.terms {
            None => Decision::Refuse(UnbilledReason::CampaignUnknown),
            Some(t) => match rules::not_servable(t, event.occurred_at_ms) {
                Some(reason) => Decision::Refuse(reason),
                None => rules::decide(event.kind, t, c, today),
            },
        };
        let outcome: Result<i64, UnbilledReason> = match decision {
            Decision::Refuse(reason) => Err(reason),
            Decision::Charge { amount: 0, next } => {
                *c = next;
                Ok(0)
            }
            Decision::Charge { amount, next } => match balances.get_mut(event.user_id.as_str()) {
                None => Err(UnbilledReason::WalletNotFound),
                Some(balance) => match wallet_rules::apply(*balance, -amount) {
                    Ok(after) => {
                        *balance = after;
                        *c = next;
                        plan.charges
                            .entry(event.user_id.as_str())
                            .or_default()
                            .push((i, charge(p, amount)));
                        Ok(amount)
                    }
                    Err(_) => Err(UnbilledReason::InsufficientFunds),
                },
            },
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
        plan.out.push(Billed {
            budget_spent: spent(c, record.reason),
            record,
            duplicate: false,
            counters: *c,
        });
        plan.fresh.push(i);
    }
    Ok(plan)
}

/// The wallet command that charges one event: an `ad_charge` entry under
/// billing's key `ad:{event_id}`.
fn charge(p: &Priced<'_>, amount: i64) -> MoneyCommand {
    MoneyCommand {
        user: p.user.clone(),
        kind: EntryKind::AdCharge,
        delta: -amount,
        reason: Some(format!("{} {}", p.event.kind.as_str(), p.event.campaign_id)),
        reference: Some(p.event.event_id.clone()),
        key: p.key.clone(),
        actor: ACTOR.to_owned(),
        fence: None,
    }
}
