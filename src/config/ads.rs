//! The `[ads]` section: advertising management.

use serde::{Deserialize, Serialize};

use super::Secret;

/// Advertising management: how it reaches the wallet service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdsConfig {
    /// The wallet service's base URL, for strong balance reads before a
    /// campaign resumes. Default: this process's own wallet service.
    #[serde(default)]
    pub wallet_url: Option<String>,
    /// A token with the `read` scope for those reads. Default: a service
    /// token that `serve` creates on first run and keeps in the data
    /// directory (`ads-service.token`); set it when instances do not share one.
    #[serde(default)]
    pub wallet_token: Option<Secret>,
    /// How long a wallet balance stays in the campaign cache, in seconds (default 300).
    #[serde(default = "default_balance_ttl")]
    pub balance_ttl_secs: u64,
}

pub(super) fn default_balance_ttl() -> u64 {
    300
}
