//! What every handler shares.

use std::sync::Arc;

use walletctl_core::Backends;
use walletctl_core::ads::AdsService;
use walletctl_core::ads::wallet_client::Balances;
use walletctl_core::display::DisplayService;
use walletctl_core::wallet::WalletService;

use crate::http::auth::{AuthState, Authenticator};
use crate::http::readiness::ReadinessCache;

/// Shared state of the services. Cheap to clone: one reference count (every
/// extractor of every request clones it; cloning each field was 3% of
/// `serve`'s CPU under the read load).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// Every backend.
    pub backends: Backends,
    /// The wallet service.
    pub wallet: WalletService,
    /// The advertising management service.
    pub ads: AdsService,
    /// Checks bearer tokens.
    pub auth: Authenticator,
    /// The last readiness answer of each service, kept briefly.
    pub readiness: ReadinessCache,
    /// The ad display service.
    pub display: DisplayService,
}

impl AppState {
    /// State over opened backends; `balances` is how ads reads the wallet.
    pub fn new(backends: Backends, balances: Arc<dyn Balances>, display: DisplayService) -> Self {
        AppState(Arc::new(Shared {
            wallet: backends.wallet_service(),
            ads: AdsService::new(
                backends.campaigns.clone(),
                balances,
                backends.events.clone(),
                backends.campaign_cache.clone(),
                backends.config.ads.balance_ttl_secs,
            ),
            auth: Authenticator::new(backends.tokens.clone()),
            readiness: ReadinessCache::default(),
            display,
            backends,
        }))
    }
}

impl AuthState for AppState {
    fn authenticator(&self) -> &Authenticator {
        &self.auth
    }
}
