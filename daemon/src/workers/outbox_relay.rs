//! The outbox relay: publishes committed events to the event log, in outbox
//! order, and marks them sent.
//!
//! Every wallet instance runs one, but only the holder of the relay lease
//! publishes: two relays publishing side by side could put version 7 of a
//! user's balance on the log before version 3. The others wait and take
//! over when the lease expires (or at once, when the holder shuts down).
//! No database transaction is held open while publishing.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use walletctl_core::Backends;

const BATCH: i64 = 500;

/// How long a relay's lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(10);

/// How often the `outbox_backlog` gauge is refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(1);

/// How often the relay leader refreshes the replica gauges.
const REPLICAS_EVERY: Duration = Duration::from_secs(5);

/// `wallet_replica_up` and `wallet_replica_lag_seconds` per standby, as the
/// primary sees them (one instance reports: the relay leader).
async fn replica_gauges(backends: &Backends) {
    match backends.shards.replica_status().await {
        Ok(replicas) => {
            for r in replicas {
                metrics::gauge!("wallet_replica_up", "replica" => r.name.clone())
                    .set(if r.reachable { 1.0 } else { 0.0 });
                if let Some(ms) = r.lag_ms {
                    metrics::gauge!("wallet_replica_lag_seconds", "replica" => r.name)
                        .set(ms as f64 / 1000.0);
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "replica status not read"),
    }
}

/// Relays until `stop` is cancelled, then finishes the round in hand and
/// gives the lease up.
pub async fn run(backends: Backends, stop: CancellationToken) {
    let holder = format!("relay-{}", uuid::Uuid::new_v4());
    let idle = Duration::from_millis(backends.config.wallet.relay_interval_ms);
    let mut topics_ready = false;
    let mut failures: u32 = 0;
    let mut backlog_at = Instant::now() - BACKLOG_EVERY;
    let mut replicas_at = Instant::now() - REPLICAS_EVERY;
    loop {
        let leader = match backends
            .outbox
            .take_relay_lease(&holder, LEASE_TTL.as_millis() as i64)
            .await
        {
            Ok(leader) => leader,
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay: cannot take the lease");
                false
            }
        };
        metrics::gauge!("outbox_relay_leader").set(if leader { 1.0 } else { 0.0 });
        if leader && !topics_ready {
            match backends.events.ensure_topics().await {
                Ok(()) => topics_ready = true,
                Err(e) => tracing::warn!(error = %e, "cannot create topics yet; will retry"),
            }
        }
        if leader && backlog_at.elapsed() >= BACKLOG_EVERY {
            backlog_at = Instant::now();
            if let Ok(n) = backends.outbox.outbox_backlog().await {
                metrics::gauge!("outbox_backlog").set(n as f64);
            }
            if backends.config.postgres.is_some() && replicas_at.elapsed() >= REPLICAS_EVERY {
                replicas_at = Instant::now();
                replica_gauges(&backends).await;
            }
        }
        let round = match (leader, topics_ready) {
            (true, true) => relay_once(&backends).await,
            (true, false) => Err(()),
            (false, _) => Ok(0),
        };
        let pause = match round {
            Ok(n) if n > 0 => {
                failures = 0;
                if stop.is_cancelled() {
                    break;
                }
                continue;
            }
            Ok(_) if !leader => LEASE_TTL / 4,
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
            _ = backends.outbox.outbox_written(), if failures == 0 && leader => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    if let Err(e) = backends.outbox.release_relay_lease(&holder).await {
        tracing::debug!(error = %e, "outbox relay: could not release the lease; it expires by itself");
    }
    tracing::info!("outbox relay stopped");
}

/// One round: how many events were relayed. The caller holds the lease.
pub async fn relay_once(backends: &Backends) -> Result<usize, ()> {
    walletctl_core::events::outbox::relay_once(&backends.outbox, &*backends.events, BATCH).await
}
