//! How advertising management learns an advertiser's balance: the wallet
//! service's `GET /wallet/{userId}/balance?consistency=strong` over HTTP, as
//! the design says (ads never reads the wallet's tables).

use std::time::Duration;

use async_trait::async_trait;

use crate::config::Secret;
use crate::domain::UserId;

/// Why a balance could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the wallet service did not answer: {0}")]
pub struct BalanceError(pub String);

/// Strong balance reads.
#[async_trait]
pub trait Balances: Send + Sync {
    /// The advertiser's balance in minor units, read strongly; `None` if it has no wallet.
    async fn balance(&self, user: &UserId) -> Result<Option<i64>, BalanceError>;
}

/// [`Balances`] over the wallet service's HTTP API.
pub struct HttpBalances {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl HttpBalances {
    /// A client of the wallet service at `base` (e.g. `http://127.0.0.1:8480`).
    pub fn new(base: &str, token: Secret) -> Result<HttpBalances, BalanceError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| BalanceError(e.to_string()))?;
        Ok(HttpBalances {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }
}

#[async_trait]
impl Balances for HttpBalances {
    async fn balance(&self, user: &UserId) -> Result<Option<i64>, BalanceError> {
        let res = self
            .http
            .get(format!(
                "{}/wallet/{user}/balance?consistency=strong",
                self.base
            ))
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| BalanceError(e.to_string()))?;
        match res.status().as_u16() {
            200 => {
                let body: serde_json::Value =
                    res.json().await.map_err(|e| BalanceError(e.to_string()))?;
                body["balance"]
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| BalanceError("the answer has no balance".into()))
            }
            404 => Ok(None),
            other => Err(BalanceError(format!("status {other}"))),
        }
    }
}

/// [`Balances`] read strongly from the wallet store itself: for the tools
/// that run beside the stores (`reconcile`, `kafka replay`) rather than
/// through the wallet service.
pub struct StoreBalances(crate::wallet::WalletStore);

impl StoreBalances {
    /// Balances of `store`.
    pub fn new(store: crate::wallet::WalletStore) -> StoreBalances {
        StoreBalances(store)
    }
}

#[async_trait]
impl Balances for StoreBalances {
    async fn balance(&self, user: &UserId) -> Result<Option<i64>, BalanceError> {
        use crate::platform::sql::{ReadConsistency, StoreError};
        match self.0.wallet(user, ReadConsistency::Strong).await {
            Ok(w) => Ok(Some(w.wallet.balance)),
            Err(StoreError::NotFound("wallet")) => Ok(None),
            Err(e) => Err(BalanceError(e.to_string())),
        }
    }
}
