//! How ad display reads its candidates: the advertising management
//! service's `GET /campaigns` (the serving pool) and `GET /campaigns/{userId}`
//! (one advertiser's active campaigns), over HTTP as the design says. Ad
//! display never reads MongoDB.

use std::sync::Arc;
use std::time::Duration;

use crate::ads::model::Campaign;
use crate::config::Secret;
use crate::domain::UserId;

/// Why the management service could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the advertising management service did not answer: {0}")]
pub struct ManagementError(pub String);

/// A client of the management service. Cheap to clone.
#[derive(Clone)]
pub struct ManagementClient {
    http: reqwest::Client,
    base: Arc<str>,
    token: Secret,
}

#[derive(serde::Deserialize)]
struct CampaignList {
    campaigns: Vec<Campaign>,
}

impl ManagementClient {
    /// A client of the service at `base`, with a `campaigns_read` token.
    pub fn new(base: &str, token: Secret) -> Result<ManagementClient, ManagementError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ManagementError(e.to_string()))?;
        Ok(ManagementClient {
            http,
            base: base.trim_end_matches('/').into(),
            token,
        })
    }

    /// Every campaign that may be served.
    pub async fn pool(&self) -> Result<Vec<Campaign>, ManagementError> {
        self.list(&format!("{}/campaigns", self.base)).await
    }

    /// One advertiser's active campaigns.
    pub async fn active_for(&self, user: &UserId) -> Result<Vec<Campaign>, ManagementError> {
        self.list(&format!("{}/campaigns/{user}", self.base)).await
    }

    async fn list(&self, url: &str) -> Result<Vec<Campaign>, ManagementError> {
        let res = self
            .http
            .get(url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| ManagementError(e.to_string()))?;
        if !res.status().is_success() {
            return Err(ManagementError(format!("status {}", res.status())));
        }
        let list: CampaignList = res
            .json()
            .await
            .map_err(|e| ManagementError(e.to_string()))?;
        Ok(list.campaigns)
    }
}
