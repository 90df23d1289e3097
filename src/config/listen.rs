//! The `[log]` and `[listen]` sections.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info,walletctl_daemon=debug`. `RUST_LOG` wins when set.
    pub filter: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Listen addresses of the three services.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// The wallet service (default `127.0.0.1:8480`).
    pub wallet: SocketAddr,
    /// The advertising management service (default `127.0.0.1:8481`).
    pub ads: SocketAddr,
    /// The ad display service (default `127.0.0.1:8482`).
    pub display: SocketAddr,
    /// The admin listener: `/metrics` and `/healthz` for Prometheus and
    /// operators, with no token (default `127.0.0.1:8483`). Keep it off the
    /// public network: the service ports answer `/metrics` only to a token
    /// with the `metrics` scope.
    #[serde(default = "default_admin")]
    pub admin: SocketAddr,
    /// On a stop signal, how long `/readyz` answers `503 stopping` while
    /// everything else still serves, before the workers and then the
    /// listeners stop, in milliseconds (default 0). Behind a load balancer,
    /// set it past the balancer's readiness interval so it stops sending
    /// traffic before the listener closes.
    #[serde(default)]
    pub drain_ms: u64,
}

fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8483))
}
