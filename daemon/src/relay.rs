//! The outbox relay: publishes committed `balance_updated` events to the
//! event log, in outbox order, and marks them sent. Runs in every wallet
//! instance; on PostgreSQL they share the work with `SKIP LOCKED`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use walletctl_core::Backends;
use walletctl_core::events::Record;
use walletctl_core::store::RelayError;

const BATCH: i64 = 500;

/// Relays until `stop` is cancelled, then finishes the round in hand.
pub async fn run(backends: Backends, stop: CancellationToken) {
    let idle = Duration::from_millis(backends.config.wallet.relay_interval_ms);
    let mut topics_ready = false;
    let mut failures: u32 = 0;
    loop {
        if !topics_ready {
            match backends.events.ensure_topics().await {
                Ok(()) => topics_ready = true,
                Err(e) => tracing::warn!(error = %e, "cannot create topics yet; will retry"),
            }
        }
        let round = if topics_ready {
            relay_once(&backends).await
        } else {
            Err(())
        };
        let pause = match round {
            Ok(n) if n > 0 => {
                failures = 0;
                continue;
            }
            Ok(_) => {
                failures = 0;
                idle
            }
            Err(()) => {
                failures = failures.saturating_add(1);
                (idle * 2u32.saturating_pow(failures.min(5))).min(Duration::from_secs(5))
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = backends.store.outbox_written(), if failures == 0 => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    tracing::info!("outbox relay stopped");
}

/// One round: how many events were relayed.
pub async fn relay_once(backends: &Backends) -> Result<usize, ()> {
    let events = backends.events.clone();
    let res = backends
        .store
        .relay_outbox(BATCH, |batch| async move {
            let records: Vec<Record<'_>> = batch
                .iter()
                .map(|e| Record {
                    topic: &e.topic,
                    key: &e.key,
                    payload: &e.payload,
                })
                .collect();
            events.publish(&records).await
        })
        .await;
    match res {
        Ok(n) => {
            if n > 0 {
                metrics::counter!("outbox_relayed_total").increment(n as u64);
            }
            Ok(n)
        }
        Err(RelayError::Publish(e)) => {
            metrics::counter!("outbox_relay_failures_total", "stage" => "publish").increment(1);
            tracing::warn!(error = %e, "outbox relay: publish failed; the events stay in the outbox");
            Err(())
        }
        Err(RelayError::Store(e)) => {
            metrics::counter!("outbox_relay_failures_total", "stage" => "store").increment(1);
            tracing::warn!(error = %e, "outbox relay: store failed");
            Err(())
        }
    }
}
