//! What every handler shares.

use std::sync::Arc;

use walletctl_core::Backends;
use walletctl_core::wallet::WalletService;

use crate::auth::TokenCache;

/// Shared state of the services. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Every backend.
    pub backends: Backends,
    /// The wallet service.
    pub wallet: WalletService,
    /// Checked bearer tokens, kept briefly.
    pub tokens: Arc<TokenCache>,
}

impl AppState {
    /// State over opened backends.
    pub fn new(backends: Backends) -> Self {
        AppState {
            wallet: backends.wallet_service(),
            tokens: Arc::new(TokenCache::default()),
            backends,
        }
    }
}
