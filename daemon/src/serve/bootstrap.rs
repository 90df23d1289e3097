//! What `serve` prepares before it listens: migrations, the region map, the
//! operator and service tokens, the display service's signing keys, and the
//! display service built from them.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use walletctl_core::Backends;
use walletctl_core::config::{Secret, SigningKey};
use walletctl_core::display::frequency::FrequencyCap;
use walletctl_core::display::management::ManagementClient;
use walletctl_core::display::{Candidates, DisplayService, Signer, asset_cache};
use walletctl_core::platform::auth::{Scope, Scopes};

use super::Listeners;

/// What `serve` prepared: secrets it needs beyond the configuration.
pub struct Prepared {
    /// The token the ads service reads balances with.
    pub ads_token: Secret,
    /// The token the display service reads campaigns with.
    pub display_token: Secret,
    /// The display service's signing keys (the first signs).
    pub signing_keys: Vec<SigningKey>,
}

/// Migrates both stores, seeds the region map, and creates the operator
/// token and the ads service's wallet token on first run.
pub async fn prepare(backends: &Backends) -> anyhow::Result<Prepared> {
    let ran = backends
        .db
        .migrate()
        .await
        .context("migrating the wallet store")?;
    if ran > 0 {
        tracing::info!(migrations = ran, "applied migrations");
    }
    // MongoDB may be down at start-up: readiness says so, and indexes are
    // created on the next start or by `walletctl migrate`.
    match backends.campaigns.migrate().await {
        Ok(report) => tracing::debug!(?report, "campaign store ready"),
        Err(e) if backends.config.mongodb.is_some() => {
            tracing::warn!(error = %e, "could not prepare the campaign store now; run `walletctl migrate` once it answers")
        }
        Err(e) => return Err(e).context("migrating the embedded campaign store"),
    }
    if let Some(pg) = &backends.config.postgres {
        backends
            .shards
            .seed_shards(&pg.regions)
            .await
            .context("seeding the region map")?;
    }
    if !backends
        .tokens
        .any_token()
        .await
        .context("looking for tokens")?
    {
        let token = backends
            .tokens
            .create_service_token("operator", &Scopes::all(), "walletctl serve")
            .await
            .context("creating the operator token")?;
        let path = backends.config.operator_token_path();
        write_secret(&path, &token.secret)
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "first run: created the operator token (all scopes); walletctl reads it from there");
    }
    // A token made before names were reserved could share billing's
    // idempotency namespace: say so at every start until it is revoked.
    for t in backends
        .tokens
        .list_tokens()
        .await
        .context("listing tokens")?
    {
        if t.revoked_at_ms.is_none() && t.name == walletctl_core::billing::ACTOR {
            tracing::warn!(token = %t.name, "a token is named like billing's own caller and shares its idempotency keys; revoke it: walletctl token revoke billing");
        }
    }
    let config = &backends.config;
    let ads_token = match &config.ads.wallet_token {
        Some(t) => t.clone(),
        None => {
            service_token(
                backends,
                "ads-service",
                Scope::Read,
                &config.ads_token_path(),
            )
            .await?
        }
    };
    let display_token = match &config.display.management_token {
        Some(t) => t.clone(),
        None => {
            service_token(
                backends,
                "display-service",
                Scope::CampaignsRead,
                &config.display_token_path(),
            )
            .await?
        }
    };
    let signing_keys = if config.display.signing_keys.is_empty() {
        vec![default_signing_key(&config.display_key_path())?]
    } else {
        config.display.signing_keys.clone()
    };
    Ok(Prepared {
        ads_token,
        display_token,
        signing_keys,
    })
}

/// A service's own token with one scope, kept in the data directory at
/// `path`; created on first run.
async fn service_token(
    backends: &Backends,
    service: &str,
    scope: Scope,
    path: &std::path::Path,
) -> anyhow::Result<Secret> {
    if let Ok(secret) = std::fs::read_to_string(path) {
        return Ok(Secret::new(secret.trim()));
    }
    let name = format!(
        "{service}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let token = backends
        .tokens
        .create_service_token(&name, &Scopes::of(&[scope]), "walletctl serve")
        .await
        .with_context(|| format!("creating the {service} token"))?;
    write_secret(path, &token.secret).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(name, path = %path.display(), scope = scope.as_str(), "created a service token");
    Ok(Secret::new(token.secret))
}

/// The display service's signing key kept in the data directory
/// (`{id}:{secret}`), created on first run. Instances that do not share a
/// data directory configure `display.signing_keys` instead.
fn default_signing_key(path: &std::path::Path) -> anyhow::Result<SigningKey> {
    if let Ok(text) = std::fs::read_to_string(path)
        && let Some((id, secret)) = text.trim().split_once(':')
    {
        return Ok(SigningKey {
            id: id.to_owned(),
            secret: Secret::new(secret),
        });
    }
    let id = format!("k{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_secret(path, &format!("{id}:{secret}"))
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), key = %id, "created the display service's signing key");
    Ok(SigningKey {
        id,
        secret: Secret::new(secret),
    })
}

fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")
}

/// The display service's keys, URLs and candidate source.
pub(super) fn display(
    backends: &Backends,
    listeners: &Listeners,
    token: Secret,
    keys: &[SigningKey],
) -> anyhow::Result<DisplayService> {
    let config = &backends.config.display;
    let addr = |l: &Option<TcpListener>, fallback: std::net::SocketAddr| {
        l.as_ref()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or(fallback)
    };
    let public_url = config.public_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}",
            addr(&listeners.display, backends.config.listen.display)
        )
    });
    let management_url = config.management_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}",
            addr(&listeners.ads, backends.config.listen.ads)
        )
    });
    let client = ManagementClient::new(&management_url, token)
        .context("configuring the display service's management client")?;
    let trim = |s: &str| s.trim_end_matches('/').to_owned();
    Ok(DisplayService {
        signer: Signer::new(keys).context("the display service needs a signing key")?,
        cdn_base: trim(config.cdn_base_url.as_deref().unwrap_or(&public_url)).into(),
        public_url: trim(&public_url).into(),
        token_ttl_secs: config.token_ttl_secs as i64,
        candidates: Candidates::new(
            client,
            Duration::from_millis(config.candidates_ttl_ms.max(10)),
            Duration::from_millis(config.candidates_max_age_ms),
        ),
        status_group: config
            .status_group
            .clone()
            .unwrap_or_else(|| {
                let host = std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "localhost".into());
                let port = addr(&listeners.display, backends.config.listen.display).port();
                format!("walletctl-display-{host}-{port}")
            })
            .into(),
        assets: asset_cache(),
        events: backends.events.clone(),
        assets_from: backends.campaigns.clone(),
        cap: config.frequency_cap.map(|max| {
            FrequencyCap::new(
                max,
                Duration::from_secs(config.frequency_window_secs.max(1)),
                backends.redis.clone(),
            )
        }),
    })
}
