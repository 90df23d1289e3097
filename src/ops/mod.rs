//! Operations that span areas: retention (`walletctl gc`) and reconciliation (`walletctl reconcile`).

pub mod reconcile;
pub mod replay;
pub mod retention;

/// The ads service as the tools beside the stores use it: balances read
/// strongly from the wallet store, not through the wallet service.
pub(crate) fn ads_service(backends: &crate::Backends) -> crate::ads::AdsService {
    crate::ads::AdsService::new(
        backends.campaigns.clone(),
        std::sync::Arc::new(crate::ads::wallet_client::StoreBalances::new(
            backends.store.clone(),
        )),
        backends.events.clone(),
        backends.campaign_cache.clone(),
        backends.config.ads.balance_ttl_secs,
    )
}
