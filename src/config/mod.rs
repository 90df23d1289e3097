//! Configuration: read once, layered, typed, then injected.
//!
//! Layers, later ones winning:
//! 1. built-in defaults (the embedded default: nothing else installed);
//! 2. a TOML file: `--config PATH` / `WALLETCTL_CONFIG`, else `./walletctl.toml` if present;
//! 3. `WALLETCTL_*` environment variables, nested keys joined by `__`
//!    (`WALLETCTL_POSTGRES__URL`, `WALLETCTL_LISTEN__WALLET`);
//! 4. command-line flags.
//!
//! Each backend is chosen on its own: a `[postgres]` section swaps the
//! embedded store for PostgreSQL, `[redis]` the in-process lock and cache for
//! Redis, `[kafka]` the embedded event log for Kafka, `[mongodb]` the embedded
//! campaign store for MongoDB. See `docs/configuration.md`.

mod ads;
mod brokers;
mod display;
mod listen;
mod ops;
mod postgres;
mod secret;
mod wallet;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use ads::AdsConfig;
use ads::default_balance_ttl;
pub use brokers::{KafkaConfig, MongoConfig, RedisConfig};
pub use display::{DisplayConfig, SigningKey};
pub use listen::{ListenConfig, LogConfig, LogFormat};
pub use ops::{ReconcileConfig, RetentionConfig};
pub use postgres::{PostgresConfig, ReplicaConfig};
pub use secret::{Secret, SecretUrl};
pub use wallet::WalletConfig;

/// `Err(ConfigError::Invalid)` naming `key` and why: what each section's
/// `validate` answers.
fn invalid(key: &str, why: impl std::fmt::Display) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid(format!("{key}: {why}")))
}

/// Environment variables with the `WALLETCTL_` prefix that are not configuration keys.
const NON_CONFIG_ENV: &[&str] = &[
    "config",
    "token",
    "url",
    "ads_url",
    "stack_dir",
    "stack_config",
];

/// The whole configuration of one walletctl process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded store, event log and operator token live.
    pub data_dir: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The address each service listens on.
    pub listen: ListenConfig,
    /// Wallet behaviour: locking and relaying.
    pub wallet: WalletConfig,
    /// PostgreSQL; absent means the embedded store.
    pub postgres: Option<PostgresConfig>,
    /// Redis; absent means the in-process lock and cache.
    pub redis: Option<RedisConfig>,
    /// Kafka; absent means the embedded event log.
    pub kafka: Option<KafkaConfig>,
    /// MongoDB; absent means the embedded campaign store.
    pub mongodb: Option<MongoConfig>,
    /// Advertising management.
    pub ads: AdsConfig,
    /// Ad display and billing.
    #[serde(default)]
    pub display: DisplayConfig,
    /// How long what is not the ledger is kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Reconciliation on a schedule in `serve`, and its thresholds.
    #[serde(default)]
    pub reconcile: ReconcileConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            log: LogConfig {
                format: LogFormat::Text,
                filter: "info".into(),
            },
            listen: ListenConfig {
                wallet: SocketAddr::from(([127, 0, 0, 1], 8480)),
                ads: SocketAddr::from(([127, 0, 0, 1], 8481)),
                display: SocketAddr::from(([127, 0, 0, 1], 8482)),
                admin: SocketAddr::from(([127, 0, 0, 1], 8483)),
                drain_ms: 0,
            },
            wallet: WalletConfig {
                lock_ttl_ms: 2_000,
                lock_wait_ms: 1_000,
                relay_interval_ms: 200,
                replica_check_ms: 1_000,
                request_timeout_ms: 10_000,
                max_queue_per_user: 1_024,
                max_groups_in_flight: 2,
            },
            postgres: None,
            redis: None,
            kafka: None,
            mongodb: None,
            ads: AdsConfig {
                wallet_url: None,
                wallet_token: None,
                balance_ttl_secs: default_balance_ttl(),
            },
            display: DisplayConfig::default(),
            retention: RetentionConfig::default(),
            reconcile: ReconcileConfig::default(),
        }
    }
}

/// `$XDG_DATA_HOME/walletctl`, else `~/.local/share/walletctl`, else `./.walletctl`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("walletctl");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/walletctl");
    }
    PathBuf::from(".walletctl")
}

/// A configuration that could not be read; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// A key has a bad value or is unknown.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Values given on the command line; each `Some` overrides every other layer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--log-format`.
    #[serde(skip_serializing_if = "Option::is_none", rename = "log")]
    pub log: Option<LogOverride>,
}

/// `--log-format`, nested as the file nests it.
#[derive(Debug, Clone, Serialize)]
pub struct LogOverride {
    /// The format.
    pub format: LogFormat,
}

impl Config {
    /// Reads every layer once. `file` is `--config`; when `None`, `./walletctl.toml` is used if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file(path)),
            None if Path::new("walletctl.toml").exists() => {
                figment = figment.merge(Toml::file("walletctl.toml"))
            }
            None => {}
        }
        figment = figment
            .merge(
                Env::prefixed("WALLETCTL_")
                    .split("__")
                    .ignore(NON_CONFIG_ENV),
            )
            .merge(Serialized::defaults(overrides));
        Self::from_figment(figment)
    }

    /// Parses a TOML document on top of the defaults (no environment): for tests and tools.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Self::from_figment(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.display.validate()?;
        self.retention.validate()?;
        self.wallet.validate()?;
        if let Some(pg) = &self.postgres {
            pg.validate()?;
        }
        if let Some(kafka) = &self.kafka {
            kafka.validate()?;
        }
        Ok(())
    }

    /// The configuration as TOML, with every secret redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# could not render: {e}\n"))
    }

    /// Where the embedded store lives.
    pub fn embedded_db_path(&self) -> PathBuf {
        self.data_dir.join("walletctl.db")
    }

    /// Where the operator token is written on first run.
    pub fn operator_token_path(&self) -> PathBuf {
        self.data_dir.join("operator.token")
    }

    /// Where the ads service's own wallet token is kept (see [`AdsConfig::wallet_token`]).
    pub fn ads_token_path(&self) -> PathBuf {
        self.data_dir.join("ads-service.token")
    }

    /// Where the display service's own campaign-read token is kept (see [`DisplayConfig::management_token`]).
    pub fn display_token_path(&self) -> PathBuf {
        self.data_dir.join("display-service.token")
    }

    /// Where the display service's default signing key is kept (see [`DisplayConfig::signing_keys`]).
    pub fn display_key_path(&self) -> PathBuf {
        self.data_dir.join("display-signing.key")
    }

    /// The embedded campaign store's file.
    pub fn embedded_campaigns_path(&self) -> PathBuf {
        self.data_dir.join("campaigns.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_embedded() {
        let c = Config::from_toml("").unwrap();
        assert!(
            c.postgres.is_none() && c.redis.is_none() && c.kafka.is_none() && c.mongodb.is_none()
        );
        assert_eq!(c.listen.wallet.port(), 8480);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = Config::from_toml("[wallet]\nlock_ttl_ms = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lock_ttl_ms"), "{err}");
        let err = Config::from_toml("[postgres]\nurl = \"postgres://x\"\npool_size = 4\nreplicas = {}\nregions = { SOUTH = [\"nope\"] }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres.regions.SOUTH"), "{err}");
        let err = Config::from_toml("typo_key = 1\n").unwrap_err().to_string();
        assert!(err.contains("typo_key"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_when_shown() {
        let c = Config::from_toml(
            "[postgres]\nurl = \"postgres://app:hunter2@db:5432/w\"\npool_size = 4\nreplicas = {}\nregions = {}\n[redis]\nurl = \"redis://:s3cret@r:6379\"\n",
        )
        .unwrap();
        let shown = c.to_redacted_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("postgres://app:***@db:5432/w"), "{shown}");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(
            c.postgres.unwrap().url.expose(),
            "postgres://app:hunter2@db:5432/w"
        );
    }
}

#[cfg(test)]
mod unsafe_commit_tests {
    use super::Config;

    const PG: &str = "[postgres]\nurl = \"postgres://a@h/db\"\n";

    #[test]
    fn a_commit_level_that_can_lose_payments_needs_saying_so() {
        for level in ["off", "local"] {
            let text = format!("{PG}synchronous_commit = \"{level}\"\n");
            let err = Config::from_toml(&text).expect_err(level).to_string();
            assert!(err.contains("allow_unsafe_commit"), "{err}");
            Config::from_toml(&format!("{text}allow_unsafe_commit = true\n")).expect(level);
        }
        Config::from_toml(&format!("{PG}synchronous_commit = \"remote_apply\"\n")).unwrap();
    }
}

#[cfg(test)]
mod retention_minimum_tests {
    use super::Config;

    #[test]
    fn retention_under_a_day_needs_the_unsafe_flag() {
        for key in ["idempotency_key_days", "event_log_days"] {
            let e = Config::from_toml(&format!("[retention]\n{key} = 0\n")).unwrap_err();
            assert!(e.to_string().contains(&format!("retention.{key}")), "{e}");
            Config::from_toml(&format!(
                "[retention]\n{key} = 0\nallow_unsafe_retention = true\n"
            ))
            .unwrap();
        }
        assert_eq!(
            Config::from_toml("[retention]\nidempotency_key_days = 1\n")
                .unwrap()
                .retention
                .idempotency_key_days,
            1
        );
    }
}
