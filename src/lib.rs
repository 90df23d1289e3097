//! walletctl's core: domain types, configuration, the ports (event log,
//! per-user lock) with their embedded and distributed adapters, the wallet
//! store, and the wallet service that ties them together.
//!
//! The HTTP services live in `walletctl-daemon`; the binary in `walletctl`.

pub mod backends;
pub mod config;
pub mod domain;
pub mod events;
pub mod lock;
pub mod store;
pub mod wallet;

pub use backends::{Backends, Probe};
pub use config::Config;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
