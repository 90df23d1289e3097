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

mod secret;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use secret::{Secret, SecretUrl};

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

/// Reconciliation (`walletctl reconcile`, and `serve` when `interval_secs` is set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// How often `serve` reconciles, in seconds (default 0: never; use cron).
    pub interval_secs: u64,
    /// Whether the scheduled run repairs what it can repair safely.
    pub fix: bool,
    /// An event unpublished for longer than this many seconds is a difference (default 60).
    pub outbox_age_secs: u64,
    /// A standby further behind than this many seconds is a difference (default 30).
    pub replica_lag_secs: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            interval_secs: 0,
            fix: false,
            outbox_age_secs: 60,
            replica_lag_secs: 30,
        }
    }
}

/// Retention: what `walletctl gc` (and `serve`, on a schedule) removes.
/// The ledger, the audit trail and billed ad events are never removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Idempotency keys older than this many days are removed (default 30):
    /// a retry after that is a new request.
    pub idempotency_key_days: u32,
    /// Published outbox rows older than this many hours are removed (default 72).
    pub outbox_published_hours: u32,
    /// Events of the embedded event log older than this many days are removed
    /// (default 7), as a Kafka topic's retention would (Kafka keeps its own).
    pub event_log_days: u32,
    /// How often `serve` runs the cleanup, in seconds (default 3,600; 0 = never).
    pub gc_interval_secs: u64,
    /// Rows removed per statement (default 1,000): short transactions, no long locks.
    pub batch: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            idempotency_key_days: 30,
            outbox_published_hours: 72,
            event_log_days: 7,
            gc_interval_secs: 3_600,
            batch: 1_000,
        }
    }
}

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

fn default_balance_ttl() -> u64 {
    300
}

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
    /// On a stop signal, how long `/readyz` answers `503 stopping` while
    /// everything else still serves, before the workers and then the
    /// listeners stop, in milliseconds (default 0). Behind a load balancer,
    /// set it past the balancer's readiness interval so it stops sending
    /// traffic before the listener closes.
    #[serde(default)]
    pub drain_ms: u64,
}

/// Wallet behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// How long a per-user lock lives if its holder dies, in milliseconds.
    pub lock_ttl_ms: u64,
    /// How long a deduction waits for the per-user lock before going on without it.
    pub lock_wait_ms: u64,
    /// How often the outbox relay looks for unsent events when not woken, in milliseconds.
    pub relay_interval_ms: u64,
    /// How long a balance read trusts a replica's health before probing again, in milliseconds.
    pub replica_check_ms: u64,
    /// How long a request may take before it is answered `503 outcome_unknown`
    /// (a money command already queued still completes), in milliseconds.
    pub request_timeout_ms: u64,
    /// The most money commands one user may have waiting; more are answered
    /// `503 overloaded` with `Retry-After`, and nothing changes.
    pub max_queue_per_user: usize,
    /// The most group commits in flight at once per instance, over disjoint
    /// users (1 applies one group at a time).
    pub max_groups_in_flight: usize,
}

/// PostgreSQL: the primary (normally through PgBouncer) and replicas per region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The primary, normally PgBouncer in transaction mode in front of it.
    pub url: SecretUrl,
    /// The primary itself, bypassing PgBouncer, for migrations (which take
    /// session-level advisory locks) and replication status. Defaults to `url`.
    #[serde(default)]
    pub direct_url: Option<SecretUrl>,
    /// Where group commits go, when set: the primary itself as the app
    /// role, bypassing PgBouncer. A group is then one round trip (the call
    /// commits as it returns) with a prepared statement, on one of at most
    /// `wallet.max_groups_in_flight + 1` sessions per instance. Unset: group
    /// commits go through `url` in an explicit transaction (three round
    /// trips: BEGIN, the call, COMMIT).
    #[serde(default)]
    pub commit_url: Option<SecretUrl>,
    /// Connections in the primary pool.
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    /// `synchronous_commit` for money-moving transactions, e.g. `remote_apply`.
    /// Unset leaves the server's setting.
    #[serde(default)]
    pub synchronous_commit: Option<String>,
    /// The role `url` connects as. When set, `walletctl migrate` (run as the
    /// owner through `direct_url`) grants it only what serving needs: the
    /// ledger and audit log are read and append only. Unset: no grants.
    #[serde(default)]
    pub app_role: Option<String>,
    /// Allows `synchronous_commit = "off"` or `"local"` for money transactions.
    /// Both can lose an acknowledged write when the primary fails, so they
    /// are refused unless this says so explicitly.
    #[serde(default)]
    pub allow_unsafe_commit: bool,
    /// The replica that is a synchronous standby; strong reads go there.
    #[serde(default)]
    pub sync_replica: Option<String>,
    /// Streaming replicas by name.
    #[serde(default)]
    pub replicas: BTreeMap<String, ReplicaConfig>,
    /// The initial region → replica map, written to the shard table when that is empty.
    /// After that, `walletctl shards assign` changes it for every instance.
    #[serde(default)]
    pub regions: BTreeMap<String, Vec<String>>,
}

/// One streaming replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// How to reach it (directly, not through PgBouncer).
    pub url: SecretUrl,
    /// Connections in its pool.
    #[serde(default = "default_replica_pool")]
    pub pool_size: u32,
}

fn default_pool() -> u32 {
    16
}

fn default_replica_pool() -> u32 {
    8
}

/// Redis: the per-user lock and the campaign cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// e.g. `redis://127.0.0.1:6379`.
    pub url: SecretUrl,
    /// Prefix of every key walletctl writes, so that tenants or tests can share a server.
    #[serde(default)]
    pub key_prefix: String,
}

/// Kafka: the event log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated.
    pub brokers: String,
    /// Prefix of every topic name, so that tenants or tests can share a cluster.
    #[serde(default)]
    pub topic_prefix: String,
    /// Partitions of the topics walletctl creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of the topics walletctl creates: 1 for a single
    /// broker; 3 (with the broker's `min.insync.replicas = 2`) in production.
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
}

fn default_replication() -> i32 {
    1
}

fn default_mongo_db() -> String {
    "walletctl".into()
}

fn default_partitions() -> i32 {
    3
}

/// MongoDB: the campaign store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoConfig {
    /// e.g. `mongodb://127.0.0.1:27017/?directConnection=true`.
    pub url: SecretUrl,
    /// The database name.
    #[serde(default = "default_mongo_db")]
    pub database: String,
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
        let bad = |key: &str, why: String| Err(ConfigError::Invalid(format!("{key}: {why}")));
        for (i, k) in self.display.signing_keys.iter().enumerate() {
            if k.id.is_empty()
                || k.id.len() > 16
                || !k
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return bad(
                    &format!("display.signing_keys[{i}].id"),
                    "must be 1-16 characters of A-Z a-z 0-9 _ -".into(),
                );
            }
            if k.secret.expose().len() < 32 {
                return bad(
                    &format!("display.signing_keys[{i}].secret"),
                    "must be at least 32 bytes".into(),
                );
            }
        }
        for (key, url) in [
            ("display.public_url", &self.display.public_url),
            ("display.cdn_base_url", &self.display.cdn_base_url),
            ("display.management_url", &self.display.management_url),
        ] {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return bad(key, format!("{u:?} is not an http(s) URL"));
            }
        }
        if self.retention.batch == 0 {
            return bad("retention.batch", "must be at least 1".into());
        }
        if self.display.token_ttl_secs == 0 {
            return bad("display.token_ttl_secs", "must be at least 1".into());
        }
        if let Some(pg) = &self.postgres {
            if pg.pool_size == 0 {
                return bad("postgres.pool_size", "must be at least 1".into());
            }
            if let Some(sync) = &pg.sync_replica
                && !pg.replicas.contains_key(sync)
            {
                return bad(
                    "postgres.sync_replica",
                    format!("names {sync:?}, which is not in postgres.replicas"),
                );
            }
            if let Some(level) = &pg.synchronous_commit
                && !["on", "off", "local", "remote_write", "remote_apply"].contains(&level.as_str())
            {
                return bad(
                    "postgres.synchronous_commit",
                    format!("{level:?} is not one of on, off, local, remote_write, remote_apply"),
                );
            }
            if let Some(level) = &pg.synchronous_commit
                && ["off", "local"].contains(&level.as_str())
                && !pg.allow_unsafe_commit
            {
                return bad(
                    "postgres.synchronous_commit",
                    format!(
                        "{level:?} can lose an acknowledged payment if the primary fails; set postgres.allow_unsafe_commit = true to accept that"
                    ),
                );
            }
            if let Some(role) = &pg.app_role {
                let ok = role.len() <= 63
                    && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                    && role
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !ok {
                    return bad(
                        "postgres.app_role",
                        format!("{role:?} must be 1-63 characters of a-z 0-9 _"),
                    );
                }
            }
            for (region, replicas) in &pg.regions {
                if let Err(e) = crate::domain::Region::parse(&region.to_ascii_uppercase()) {
                    return bad(&format!("postgres.regions.{region}"), e.to_string());
                }
                for name in replicas {
                    if !pg.replicas.contains_key(name) {
                        return bad(
                            &format!("postgres.regions.{region}"),
                            format!("names replica {name:?}, which is not in postgres.replicas"),
                        );
                    }
                }
            }
        }
        if let Some(kafka) = &self.kafka
            && kafka.partitions < 1
        {
            return bad("kafka.partitions", "must be at least 1".into());
        }
        if let Some(kafka) = &self.kafka
            && kafka.replication_factor < 1
        {
            return bad("kafka.replication_factor", "must be at least 1".into());
        }
        if self.wallet.max_groups_in_flight == 0 {
            return bad("wallet.max_groups_in_flight", "must be at least 1".into());
        }
        if self.wallet.max_queue_per_user == 0 {
            return bad("wallet.max_queue_per_user", "must be at least 1".into());
        }
        if self.wallet.lock_ttl_ms == 0 {
            return bad("wallet.lock_ttl_ms", "must be at least 1".into());
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
