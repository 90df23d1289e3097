//! Billing: consumes `ad_events` in its consumer group and charges each
//! event exactly once (`Store::bill`: one transaction with the wallet's
//! money path inside). A campaign whose budget is spent is paused with
//! `budget_exhausted`; a wallet that cannot pay leaves the event unbilled
//! with its reason, and the campaign pauses through the wallet's
//! `balance_updated` flow. What billing has charged is copied to the
//! campaign's `spent` at most every half second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use walletctl_core::ads::AdsError;
use walletctl_core::billing::{BillStatus, Billed, Terms};
use walletctl_core::display::AdEvent;
use walletctl_core::domain::{CampaignId, UserId};
use walletctl_core::events::{Message, topic};

use crate::state::AppState;

/// The consumer group every billing worker joins.
pub const GROUP: &str = "walletctl-billing";

/// How often charged spend is copied to the campaigns.
const SPEND_EVERY: Duration = Duration::from_millis(500);

/// The most events billed in one transaction.
const BATCH: usize = 256;

/// How long a campaign's terms are reused between events.
const TERMS_TTL: Duration = Duration::from_secs(1);

/// Billing's own state: campaign terms read recently and spend to copy.
#[derive(Clone)]
pub struct Biller {
    state: AppState,
    terms: moka::future::Cache<String, Option<(String, Terms)>>,
    spend: Arc<Mutex<HashMap<String, i64>>>,
}

impl Biller {
    /// A biller over the services' state.
    pub fn new(state: AppState) -> Biller {
        Biller {
            state,
            terms: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TERMS_TTL)
                .build(),
            spend: Arc::default(),
        }
    }

    /// The campaign's advertiser and terms, `None` if it does not exist.
    async fn terms(&self, id: &CampaignId) -> anyhow::Result<Option<(String, Terms)>> {
        if let Some(t) = self.terms.get(id.as_str()).await {
            return Ok(t);
        }
        let t = match self.state.ads.get(id).await {
            Ok(c) => Some((c.user_id.clone(), Terms::of(&c))),
            Err(AdsError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        self.terms.insert(id.to_string(), t.clone()).await;
        Ok(t)
    }

    /// Bills events in order (each exactly once, however often it comes)
    /// in one transaction, and pauses the campaigns whose budget is spent.
    /// If the batch fails on a database error, each event is billed on its
    /// own, so no event's outcome depends on another's.
    pub async fn bill(&self, events: &[AdEvent]) -> anyhow::Result<Vec<Billed>> {
        let mut priced = Vec::with_capacity(events.len());
        for event in events {
            let id = CampaignId::parse(&event.campaign_id)?;
            // An event naming another advertiser than the campaign's is billed to neither.
            let terms = self
                .terms(&id)
                .await?
                .filter(|(user, _)| *user == event.user_id)
                .map(|(_, t)| t);
            priced.push((event.clone(), terms));
        }
        let store = &self.state.backends.store;
        let billed = match store.bill_batch(&priced).await {
            Ok(b) => b,
            Err(e) if priced.len() > 1 && !e.is_unavailable() => {
                tracing::warn!(error = %e, events = priced.len(), "a billing batch failed; billing its events one at a time");
                let mut each = Vec::with_capacity(priced.len());
                for (event, terms) in &priced {
                    each.push(store.bill(event, terms.as_ref()).await?);
                }
                each
            }
            Err(e) => return Err(e.into()),
        };
        let mut exhausted: Vec<&str> = Vec::new();
        for (event, b) in events.iter().zip(&billed) {
            if b.budget_spent && !exhausted.contains(&event.campaign_id.as_str()) {
                exhausted.push(&event.campaign_id);
            }
            if b.record.amount > 0 || b.budget_spent {
                let mut spend = self.spend.lock().unwrap_or_else(|p| p.into_inner());
                let v = spend.entry(event.campaign_id.clone()).or_default();
                *v = (*v).max(b.counters.spent);
            }
            let result = match (b.duplicate, b.record.status) {
                (true, _) => "duplicate",
                (false, BillStatus::Billed) => "billed",
                (false, BillStatus::Unbilled) => "unbilled",
            };
            metrics::counter!("billing_events_total", "kind" => event.kind.as_str(), "result" => result)
                .increment(1);
            if !b.duplicate {
                metrics::counter!("billing_charged_minor_units_total")
                    .increment(b.record.amount as u64);
                let lag = (walletctl_core::now_ms() - event.occurred_at_ms).max(0) as f64 / 1000.0;
                metrics::histogram!("billing_lag_seconds").record(lag);
            }
        }
        for id in exhausted {
            self.state
                .ads
                .exhaust_budget(&CampaignId::parse(id)?)
                .await?;
        }
        Ok(billed)
    }

    /// Copies charged spend to the campaigns; what fails is kept for next time.
    pub async fn copy_spend(&self) {
        let pending: Vec<(String, i64)> = self
            .spend
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (id, spent) in pending {
            let Ok(cid) = CampaignId::parse(&id) else {
                continue;
            };
            if let Err(e) = self.state.ads.record_spend(&cid, spent).await {
                tracing::debug!(error = %e, campaign = %id, "spend not copied yet");
                let mut spend = self.spend.lock().unwrap_or_else(|p| p.into_inner());
                let v = spend.entry(id).or_default();
                *v = (*v).max(spent);
            }
        }
    }
}

/// Consumes until `stop` is cancelled.
pub async fn run(state: AppState, stop: CancellationToken) {
    let biller = Biller::new(state.clone());
    let copier = {
        let (b, stop) = (biller.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stopped = tokio::select! {
                    _ = stop.cancelled() => true,
                    _ = tokio::time::sleep(SPEND_EVERY) => false,
                };
                b.copy_spend().await;
                if stopped {
                    return;
                }
            }
        })
    };
    let events = state.backends.events.clone();
    super::consumer::consume_batches(&*events, &stop, GROUP, topic::AD_EVENTS, BATCH, |batch| {
        let biller = biller.clone();
        async move { handle(&biller, &batch).await }
    })
    .await;
    let _ = copier.await;
}

async fn handle(biller: &Biller, batch: &[Message]) -> anyhow::Result<()> {
    let mut events = Vec::with_capacity(batch.len());
    for message in batch {
        let event: AdEvent = match serde_json::from_str(&message.payload) {
            Ok(e) => e,
            Err(e) => {
                metrics::counter!("billing_events_total", "kind" => "unknown", "result" => "invalid")
                    .increment(1);
                tracing::error!(error = %e, offset = message.offset, "ad_events: unreadable event skipped");
                continue;
            }
        };
        if CampaignId::parse(&event.campaign_id).is_err()
            || UserId::parse(&event.user_id).is_err()
            || walletctl_core::domain::IdempotencyKey::parse(&format!("ad:{}", event.event_id))
                .is_err()
        {
            metrics::counter!("billing_events_total", "kind" => event.kind.as_str(), "result" => "invalid")
                .increment(1);
            tracing::error!(event = %event.event_id, "ad_events: invalid campaign, user or event id; skipped");
            continue;
        }
        events.push(event);
    }
    if events.is_empty() {
        return Ok(());
    }
    let billed = biller.bill(&events).await?;
    tracing::debug!(
        events = events.len(),
        billed = billed.iter().filter(|b| !b.duplicate).count(),
        "ad events billed"
    );
    Ok(())
}
