//! Billing: consumes `ad_events` in its consumer group and charges each
//! event exactly once (`Store::bill`: one transaction with the wallet's
//! money path inside). A campaign whose budget is spent is paused with
//! `budget_exhausted`; a wallet that cannot pay leaves the event unbilled
//! with its reason, and the campaign pauses through the wallet's
//! `balance_updated` flow. What billing has charged is copied to the
//! campaign's `spent` at most every half second.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use walletctl_core::billing::Biller;
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

/// Consumes until `stop` is cancelled.
pub async fn run(state: AppState, stop: CancellationToken) {
    let biller = Biller::new(state.backends.billing.clone(), state.ads.clone());
    let copier = {
        let (b, stop) = (biller.clone(), stop.clone());
        tokio::spawn(async move {
            // Daily budgets reset at 00:00 UTC: at start and at each new day,
            // campaigns paused for their budget resume if it can pay again.
            let mut settled_day = None;
            loop {
                let stopped = tokio::select! {
                    _ = stop.cancelled() => true,
                    _ = tokio::time::sleep(SPEND_EVERY) => false,
                };
                b.copy_spend().await;
                if stopped {
                    return;
                }
                let today = walletctl_core::billing::rules::day_of(walletctl_core::now_ms());
                if settled_day != Some(today) {
                    match b.settle_budgets().await {
                        Ok(n) => {
                            settled_day = Some(today);
                            if n > 0 {
                                tracing::info!(
                                    campaigns = n,
                                    "budgets can pay again: campaigns resumed"
                                );
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "budgets not settled yet"),
                    }
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
