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

    /// Bills one event (exactly once, however often it comes) and pauses
    /// its campaign if a budget is spent.
    pub async fn bill(&self, event: &AdEvent) -> anyhow::Result<Billed> {
        let id = CampaignId::parse(&event.campaign_id)?;
        // An event naming another advertiser than the campaign's is not billed to either.
        let terms = self
            .terms(&id)
            .await?
            .filter(|(user, _)| *user == event.user_id)
            .map(|(_, t)| t);
        let billed = self
            .state
            .backends
            .store
            .bill(event, terms.as_ref())
            .await?;
        if billed.budget_spent {
            self.state.ads.exhaust_budget(&id).await?;
        }
        if billed.record.amount > 0 || billed.budget_spent {
            let mut spend = self.spend.lock().unwrap_or_else(|p| p.into_inner());
            let v = spend.entry(event.campaign_id.clone()).or_default();
            *v = (*v).max(billed.counters.spent);
        }
        let result = match (billed.duplicate, billed.record.status) {
            (true, _) => "duplicate",
            (false, BillStatus::Billed) => "billed",
            (false, BillStatus::Unbilled) => "unbilled",
        };
        metrics::counter!("billing_events_total", "kind" => event.kind.as_str(), "result" => result)
            .increment(1);
        if !billed.duplicate {
            metrics::counter!("billing_charged_minor_units_total")
                .increment(billed.record.amount as u64);
            let lag = (walletctl_core::now_ms() - event.occurred_at_ms).max(0) as f64 / 1000.0;
            metrics::histogram!("billing_lag_seconds").record(lag);
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
    super::consumer::consume(&*events, &stop, GROUP, topic::AD_EVENTS, |m| {
        let biller = biller.clone();
        async move { handle(&biller, &m).await }
    })
    .await;
    let _ = copier.await;
}

async fn handle(biller: &Biller, message: &Message) -> anyhow::Result<()> {
    let event: AdEvent = match serde_json::from_str(&message.payload) {
        Ok(e) => e,
        Err(e) => {
            metrics::counter!("billing_events_total", "kind" => "unknown", "result" => "invalid")
                .increment(1);
            tracing::error!(error = %e, offset = message.offset, "ad_events: unreadable event skipped");
            return Ok(());
        }
    };
    if CampaignId::parse(&event.campaign_id).is_err() || UserId::parse(&event.user_id).is_err() {
        metrics::counter!("billing_events_total", "kind" => event.kind.as_str(), "result" => "invalid")
            .increment(1);
        tracing::error!(event = %event.event_id, "ad_events: invalid campaign or user id; skipped");
        return Ok(());
    }
    let billed = biller.bill(&event).await?;
    tracing::debug!(event = %event.event_id, status = ?billed.record.status, amount = billed.record.amount, duplicate = billed.duplicate, "ad event billed");
    Ok(())
}
