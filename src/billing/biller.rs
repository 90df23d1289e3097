//! The biller: bills ad events in batches (`BillingStore::bill_batch`) with the
//! campaigns' current terms, pauses campaigns whose budget is spent, and
//! copies what was charged to the campaigns' `spent`. The billing worker
//! and `walletctl kafka replay` both use it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::BillingStore;
use super::{BillStatus, Billed, Terms};
use crate::ads::{AdsError, AdsService};
use crate::display::AdEvent;
use crate::domain::CampaignId;

/// How long a campaign's terms are reused between events.
const TERMS_TTL: Duration = Duration::from_secs(1);

/// Billing's own state: campaign terms read recently and spend to copy.
#[derive(Clone)]
pub struct Biller {
    store: BillingStore,
    ads: AdsService,
    terms: moka::future::Cache<String, Option<(String, Terms)>>,
    spend: Arc<Mutex<HashMap<String, i64>>>,
}

impl Biller {
    /// A biller over billing's store and the ads service.
    pub fn new(store: BillingStore, ads: AdsService) -> Biller {
        Biller {
            store,
            ads,
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
        let t = match self.ads.get(id).await {
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
        let store = &self.store;
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
                let lag = (crate::domain::now_ms() - event.occurred_at_ms).max(0) as f64 / 1000.0;
                metrics::histogram!("billing_lag_seconds").record(lag);
            }
        }
        for id in exhausted {
            self.ads.exhaust_budget(&CampaignId::parse(id)?).await?;
        }
        Ok(billed)
    }

    /// Resumes the campaigns paused for their budget whose budgets can pay
    /// again (run when the UTC day changes: daily budgets reset). Returns how
    /// many resumed (or moved to `wallet_empty`).
    pub async fn settle_budgets(&self) -> anyhow::Result<u64> {
        let today = super::rules::day_of(crate::domain::now_ms());
        let mut settled = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self.ads.store().page(after.as_deref(), 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.campaign_id.clone());
            for c in page {
                if !(c.status == crate::ads::Status::Paused
                    && c.status_reason == Some(crate::ads::StatusReason::BudgetExhausted))
                {
                    continue;
                }
                let counters = self
                    .store
                    .campaign_billing(&c.campaign_id)
                    .await?
                    .map(|b| b.counters())
                    .unwrap_or_default();
                if super::rules::budget_can_pay(&Terms::of(&c), &counters, today, c.max_charge())
                    && self
                        .ads
                        .resume_budget(&CampaignId::parse(&c.campaign_id)?)
                        .await?
                        .is_some()
                {
                    settled += 1;
                }
            }
        }
        Ok(settled)
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
            if let Err(e) = self.ads.record_spend(&cid, spent).await {
                tracing::debug!(error = %e, campaign = %id, "spend not copied yet");
                let mut spend = self.spend.lock().unwrap_or_else(|p| p.into_inner());
                let v = spend.entry(id).or_default();
                *v = (*v).max(spent);
            }
        }
    }
}
