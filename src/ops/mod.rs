//! Operations that span areas: retention (`walletctl gc`), reconciliation
//! (`walletctl reconcile`) and replay (`walletctl kafka replay`). Each uses
//! the areas' own stores; only retention has SQL of its own.

pub mod reconcile;
pub mod replay;
pub mod retention;

/// The ads service as the tools beside the stores use it: balances read
/// strongly from the wallet store, not through the wallet service.
pub(crate) fn ads_service(backends: &crate::Backends) -> crate::ads::AdsService {
    crate::ads::AdsService::new(
        backends.campaigns.clone(),
        std::sync::Arc::new(crate::ads::wallet_client::StoreBalances::new(
            backends.wallets.clone(),
        )),
        backends.events.clone(),
        backends.campaign_cache.clone(),
        backends.config.ads.balance_ttl_secs,
    )
}
