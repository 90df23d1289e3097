//! The readiness answers `/readyz` keeps (see `health.rs`), and whether
//! the process is stopping. Shared by the state and the health handlers;
//! it knows neither.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use walletctl_core::Probe;

use crate::service::Service;

/// One service's readiness answer and when it was taken.
type Answer = (Instant, Vec<Probe>);

/// Recent readiness answers, the write probe in flight (at most one: a
/// commit blocked on a lost standby must not be joined by another each
/// second), and whether the process is stopping.
#[derive(Clone, Default)]
pub struct ReadinessCache {
    answers: Arc<Mutex<HashMap<Service, Answer>>>,
    write_probe: Arc<tokio::sync::Mutex<()>>,
    stopping: Arc<AtomicBool>,
}

impl ReadinessCache {
    /// From now on `/readyz` answers `503 stopping`, so load balancers stop
    /// sending requests while the process still answers them.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether [`ReadinessCache::stopping`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The write probe's slot, unless a probe still holds it (a commit
    /// blocked on a lost standby must not be joined by another each second).
    pub fn try_write_probe(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.write_probe.clone().try_lock_owned().ok()
    }

    /// `service`'s answer if it was taken less than `max_age` ago.
    pub fn recent(&self, service: Service, max_age: Duration) -> Option<Vec<Probe>> {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&service)
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, checks)| checks.clone())
    }

    /// Keeps `service`'s answer, taken now.
    pub fn keep(&self, service: Service, checks: Vec<Probe>) {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(service, (Instant::now(), checks));
    }
}
