//! Reconciliation on a schedule, when `reconcile.interval_secs` is set:
//! the checks of `walletctl reconcile` (repairing what is safe when
//! `reconcile.fix` is set), logged and exported as metrics. Cron is the
//! other way to run it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use walletctl_core::Backends;
use walletctl_core::ops::reconcile::{Limits, Outcome, reconcile};

/// Runs until `stop`; does nothing when the interval is 0.
pub async fn run(backends: Backends, stop: CancellationToken) {
    let config = backends.config.reconcile.clone();
    if config.interval_secs == 0 {
        return;
    }
    let every = Duration::from_secs(config.interval_secs);
    let limits = Limits {
        outbox_age_ms: config.outbox_age_secs as i64 * 1000,
        replica_lag_ms: config.replica_lag_secs as i64 * 1000,
    };
    super::on_schedule(every, &stop, || async {
        let report = reconcile(&backends, limits, config.fix, &|_, _| {}).await;
        for c in &report.checks {
            metrics::gauge!("reconcile_differences", "check" => c.check).set(c.found as f64);
            if c.found > 0 || c.outcome == Outcome::Error {
                tracing::warn!(check = c.check, found = c.found, fixed = c.fixed, details = ?c.details, "reconcile found differences");
            }
        }
        let result = if report.failed() {
            "error"
        } else if report.clean() {
            "clean"
        } else {
            "differences"
        };
        metrics::counter!("reconcile_runs_total", "result" => result).increment(1);
    })
    .await;
}
