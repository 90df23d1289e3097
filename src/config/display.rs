//! The `[display]` section: ad display and its signing keys.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, invalid};

/// Ad display: where its URLs point, how it signs them, and where it reads
/// campaigns.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayConfig {
    /// The base URL browsers reach the display service on, put into
    /// impression and click URLs. Default: `http://{listen.display}`.
    pub public_url: Option<String>,
    /// The base URL asset URLs point at: a CDN in front of the display
    /// service, which is the origin. Default: `public_url`.
    pub cdn_base_url: Option<String>,
    /// The advertising management service's base URL, where candidates are
    /// read. Default: this process's own.
    pub management_url: Option<String>,
    /// A token with the `campaigns_read` scope for those reads. Default: a
    /// service token `serve` creates on first run (`display-service.token`).
    pub management_token: Option<Secret>,
    /// The keys impression and click tokens are signed with. The first
    /// signs; every one verifies, so a key can be rotated in without
    /// breaking tokens already handed out. Default: one key created on
    /// first run in the data directory (`display-signing.key`).
    pub signing_keys: Vec<SigningKey>,
    /// How long an impression or click URL stays valid, in seconds (default 86,400).
    pub token_ttl_secs: u64,
    /// How long candidates are kept in process, in milliseconds (default 1,000).
    pub candidates_ttl_ms: u64,
    /// The oldest a list of candidates may be and still decide an ad,
    /// counted from when it was read, in milliseconds (default 3,000, at
    /// least `candidates_ttl_ms`): older, the display serves nothing (204)
    /// rather than a campaign paused since.
    #[serde(default = "default_max_age")]
    pub candidates_max_age_ms: u64,
    /// The consumer group this instance reads `campaign_paused` and
    /// `campaign_resumed` in; every instance needs its own. Default:
    /// `walletctl-display-{hostname}-{port}`.
    #[serde(default)]
    pub status_group: Option<String>,
    /// At most this many ads of one campaign per viewer per window; unset: no cap.
    pub frequency_cap: Option<u32>,
    /// The frequency cap's window, in seconds (default 86,400).
    pub frequency_window_secs: u64,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        DisplayConfig {
            public_url: None,
            cdn_base_url: None,
            management_url: None,
            management_token: None,
            signing_keys: Vec::new(),
            token_ttl_secs: 86_400,
            candidates_ttl_ms: 1_000,
            candidates_max_age_ms: default_max_age(),
            status_group: None,
            frequency_cap: None,
            frequency_window_secs: 86_400,
        }
    }
}

/// One signing key of the display service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// A short name carried in every token it signs (`A-Z a-z 0-9 _ -`, at most 16).
    pub id: String,
    /// At least 32 bytes of secret.
    pub secret: Secret,
}

impl DisplayConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (i, k) in self.signing_keys.iter().enumerate() {
            if k.id.is_empty()
                || k.id.len() > 16
                || !k
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return invalid(
                    &format!("display.signing_keys[{i}].id"),
                    "must be 1-16 characters of A-Z a-z 0-9 _ -",
                );
            }
            if k.secret.expose().len() < 32 {
                return invalid(
                    &format!("display.signing_keys[{i}].secret"),
                    "must be at least 32 bytes",
                );
            }
        }
        for (key, url) in [
            ("display.public_url", &self.public_url),
            ("display.cdn_base_url", &self.cdn_base_url),
            ("display.management_url", &self.management_url),
        ] {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return invalid(key, format!("{u:?} is not an http(s) URL"));
            }
        }
        if self.token_ttl_secs == 0 {
            return invalid("display.token_ttl_secs", "must be at least 1");
        }
        Ok(())
    }
}

fn default_max_age() -> u64 {
    3_000
}
