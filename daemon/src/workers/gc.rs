//! Retention on a schedule: every `retention.gc_interval_secs` (first after
//! a random part of it, so instances spread out), what `walletctl gc`
//! removes. Removing the same rows twice is harmless, so instances need no
//! coordination.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use walletctl_core::Backends;
use walletctl_core::ops::retention::{Cutoffs, gc};

/// Runs until `stop`; does nothing when the interval is 0.
pub async fn run(backends: Backends, stop: CancellationToken) {
    let retention = backends.config.retention.clone();
    if retention.gc_interval_secs == 0 {
        return;
    }
    let every = Duration::from_secs(retention.gc_interval_secs);
    super::on_schedule(every, &stop, || async {
        let cutoffs = Cutoffs::at(&retention, walletctl_core::now_ms());
        match gc(&backends, cutoffs, retention.batch, false, &|_| {}).await {
            Ok(r) => {
                for (what, n) in [
                    ("idempotency_keys", r.idempotency_keys),
                    ("outbox", r.outbox),
                    ("event_log", r.event_log.unwrap_or(0)),
                ] {
                    metrics::counter!("gc_removed_total", "what" => what).increment(n);
                }
                tracing::info!(idempotency_keys = r.idempotency_keys, outbox = r.outbox, event_log = ?r.event_log, "retention: removed what is past its window");
            }
            Err(e) => {
                metrics::counter!("gc_failures_total").increment(1);
                tracing::warn!(error = %e, "retention run failed; next time");
            }
        }
    })
    .await;
}
