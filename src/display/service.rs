//! The display service: it **decides** (candidates, frequency cap, weighted
//! pick, signed URLs) and **records** (verifies a token, publishes its
//! event to `ad_events`), and serves uploaded assets, behind the same ports
//! the other areas use: the event log, the campaign store (assets only) and
//! the management service's HTTP API (candidates). The HTTP handlers in
//! `walletctl-daemon` only parse, call and answer.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use super::candidates::Candidates;
use super::frequency::FrequencyCap;
use super::{AdEvent, AdEventKind, Claims, Signer, TokenError, pick};
use crate::ads::Campaign;
use crate::ads::assets::{Asset, AssetError, AssetSource};
use crate::domain::UserId;
use crate::domain::now_ms;
use crate::events::{EventLog, Record, topic};

/// An ad request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdRequest {
    /// The publisher's slot.
    pub slot: String,
    /// The viewer, for the frequency cap.
    pub viewer: Option<String>,
    /// Only this advertiser's campaigns.
    pub advertiser: Option<UserId>,
}

/// What is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShownCreative {
    /// The headline.
    pub title: String,
    /// The image: on the CDN when uploaded to walletctl.
    pub asset_url: String,
    /// Where a click ends up (through `click_url`).
    pub landing_url: String,
}

/// One ad decision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdAnswer {
    /// The campaign shown.
    pub campaign_id: String,
    /// What to show.
    pub creative: ShownCreative,
    /// Fetch once when the ad is shown: 204, or a 1×1 GIF for an `<img>`.
    pub impression_url: String,
    /// Where the ad links: redirects to the landing page.
    pub click_url: String,
    /// When both URLs stop being accepted, ms since the epoch.
    pub expires_at_ms: i64,
}

/// Why an impression or click was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The token was refused (counted in `display_tokens_refused_total`).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The event log did not take the event (logged and counted).
    #[error("the event log did not take the event")]
    EventsUnavailable,
}

/// The display service's settings and ports. Cheap to clone.
#[derive(Clone)]
pub struct DisplayService {
    /// Signs and verifies impression and click tokens.
    pub signer: Signer,
    /// The base of impression and click URLs.
    pub public_url: Arc<str>,
    /// The base of asset URLs (a CDN, or the display service itself).
    pub cdn_base: Arc<str>,
    /// How long a token stays valid.
    pub token_ttl_secs: i64,
    /// What may be served.
    pub candidates: Candidates,
    /// The consumer group this instance follows campaign pauses in.
    pub status_group: Arc<str>,
    /// The per-viewer cap, if configured.
    pub cap: Option<FrequencyCap>,
    /// Where impressions and clicks go.
    pub events: Arc<dyn EventLog>,
    /// Where uploaded assets are read (the campaign store).
    pub assets_from: Arc<dyn AssetSource>,
    /// Assets served recently (they never change), up to 64 MiB, and
    /// names asked for recently that do not exist.
    pub assets: AssetCache,
}

/// How long an asset name that does not exist is answered `404` from memory.
const MISS_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The most asset misses remembered at once: the names are the caller's.
const MAX_MISSES: u64 = 100_000;

/// The display service's in-process asset caches. Cheap to clone.
#[derive(Clone)]
pub struct AssetCache {
    found: moka::future::Cache<String, Arc<Asset>>,
    /// A flood of made-up names reaches the store once per name per
    /// [`MISS_TTL`], and the memory it takes is bounded.
    missing: moka::future::Cache<String, ()>,
}

/// The in-process asset caches of the display service.
pub fn asset_cache() -> AssetCache {
    AssetCache {
        found: moka::future::Cache::builder()
            .weigher(|_, a: &Arc<Asset>| u32::try_from(a.bytes.len()).unwrap_or(u32::MAX))
            .max_capacity(64 * 1024 * 1024)
            .build(),
        missing: moka::future::Cache::builder()
            .max_capacity(MAX_MISSES)
            .time_to_live(MISS_TTL)
            .build(),
    }
}

impl DisplayService {
    /// Picks an ad for `req` and signs its URLs; `None` when nothing can be
    /// served. Counted in `display_decisions_total`.
    pub async fn decide(&self, req: &AdRequest) -> Option<AdAnswer> {
        let ad = self.choose(req).await;
        let result = if ad.is_some() { "served" } else { "empty" };
        metrics::counter!("display_decisions_total", "result" => result).increment(1);
        ad
    }

    async fn choose(&self, req: &AdRequest) -> Option<AdAnswer> {
        let candidates = match &req.advertiser {
            Some(user) => self.candidates.for_user(user).await,
            None => self.candidates.pool(),
        };
        let now = now_ms();
        // The campaigns this viewer has seen up to the cap.
        let capped_out: HashSet<&str> = match (&self.cap, &req.viewer) {
            (Some(cap), Some(viewer)) => {
                let ids: Vec<&str> = candidates.iter().map(|c| c.campaign_id.as_str()).collect();
                let allowed = cap.allowed(viewer, &ids).await;
                ids.into_iter()
                    .zip(allowed)
                    .filter_map(|(id, ok)| (!ok).then_some(id))
                    .collect()
            }
            _ => HashSet::new(),
        };
        let allowed = |c: &Campaign| !capped_out.contains(c.campaign_id.as_str());
        let chosen = pick::pick(&candidates, now, &mut rand::rng(), allowed)?.clone();
        if let (Some(cap), Some(viewer)) = (&self.cap, &req.viewer) {
            cap.record(viewer, &chosen.campaign_id).await;
        }
        Some(self.sign(req, &chosen, now))
    }

    /// The answer for `chosen`: its creative and its signed URLs.
    fn sign(&self, req: &AdRequest, chosen: &Campaign, now: i64) -> AdAnswer {
        let expires_at = now / 1000 + self.token_ttl_secs;
        let decision = uuid::Uuid::new_v4().simple().to_string();
        let claims = |kind: AdEventKind, landing: Option<String>| Claims {
            decision: decision.clone(),
            kind,
            campaign_id: chosen.campaign_id.clone(),
            user_id: chosen.user_id.clone(),
            slot: req.slot.clone(),
            viewer: req.viewer.clone(),
            landing,
            expires_at,
        };
        let imp = self.signer.sign(&claims(AdEventKind::Impression, None));
        let clk = self.signer.sign(&claims(
            AdEventKind::Click,
            Some(chosen.creative.landing_url.clone()),
        ));
        let asset_url = match &chosen.creative.asset_id {
            Some(hash) => format!("{}/assets/{hash}", self.cdn_base),
            None => chosen.creative.asset_url.clone(),
        };
        AdAnswer {
            campaign_id: chosen.campaign_id.clone(),
            creative: ShownCreative {
                title: chosen.creative.title.clone(),
                asset_url,
                landing_url: chosen.creative.landing_url.clone(),
            },
            impression_url: format!("{}/i/{imp}", self.public_url),
            click_url: format!("{}/c/{clk}", self.public_url),
            expires_at_ms: expires_at * 1000,
        }
    }

    /// Checks a token of `kind` (signature, expiry, kind); a refusal is
    /// counted by reason.
    pub fn verify(&self, token: &str, kind: AdEventKind) -> Result<Claims, TokenError> {
        let checked = self
            .signer
            .verify(token, now_ms() / 1000)
            .and_then(|claims| {
                if claims.kind != kind {
                    return Err(TokenError::Malformed);
                }
                if kind == AdEventKind::Click && claims.landing.is_none() {
                    return Err(TokenError::Malformed);
                }
                Ok(claims)
            });
        if let Err(e) = &checked {
            metrics::counter!("display_tokens_refused_total", "reason" => match e {
                TokenError::Malformed => "malformed",
                TokenError::Forged => "forged",
                TokenError::Expired => "expired",
            })
            .increment(1);
        }
        checked
    }

    /// Records an impression: the token is verified, then its event is
    /// published to `ad_events` (keyed by campaign) and acknowledged by the
    /// log before this returns.
    pub async fn impression(&self, token: &str) -> Result<Claims, RecordError> {
        let claims = self.verify(token, AdEventKind::Impression)?;
        self.publish(&claims).await?;
        Ok(claims)
    }

    /// Records a click and answers where the viewer goes. The viewer gets
    /// where they were going even if the event cannot be logged: an
    /// unlogged click is never charged (it is counted and logged).
    pub async fn click(&self, token: &str) -> Result<String, RecordError> {
        let claims = self.verify(token, AdEventKind::Click)?;
        let _ = self.publish(&claims).await;
        claims
            .landing
            .ok_or(RecordError::Token(TokenError::Malformed))
    }

    /// Publishes the token's event to `ad_events`, keyed by campaign.
    async fn publish(&self, claims: &Claims) -> Result<(), RecordError> {
        let event = AdEvent {
            event_id: claims.event_id(),
            kind: claims.kind,
            campaign_id: claims.campaign_id.clone(),
            user_id: claims.user_id.clone(),
            slot: claims.slot.clone(),
            viewer: claims.viewer.clone(),
            decision_id: claims.decision.clone(),
            occurred_at_ms: now_ms(),
        };
        let payload = serde_json::to_string(&event).map_err(|e| {
            tracing::error!(error = %e, "an ad event did not serialise");
            RecordError::EventsUnavailable
        })?;
        let sent = self
            .events
            .publish(&[Record {
                topic: topic::AD_EVENTS,
                key: &event.campaign_id,
                payload: &payload,
            }])
            .await;
        let result = if sent.is_ok() { "published" } else { "failed" };
        metrics::counter!("display_events_total", "kind" => event.kind.as_str(), "result" => result)
            .increment(1);
        sent.map_err(|e| {
            tracing::warn!(error = %e, event = %event.event_id, "ad event not published");
            RecordError::EventsUnavailable
        })
    }

    /// An uploaded asset by its name (checked by the caller with
    /// [`Asset::valid_id`]), from the in-process cache or the campaign store.
    pub async fn asset(&self, name: &str) -> Result<Option<Arc<Asset>>, AssetError> {
        if let Some(a) = self.assets.found.get(name).await {
            return Ok(Some(a));
        }
        if self.assets.missing.contains_key(name) {
            metrics::counter!("display_asset_misses_total", "from" => "memory").increment(1);
            return Ok(None);
        }
        let Some(found) = self.assets_from.get_asset(name).await? else {
            metrics::counter!("display_asset_misses_total", "from" => "store").increment(1);
            self.assets.missing.insert(name.to_owned(), ()).await;
            return Ok(None);
        };
        let a = Arc::new(found);
        self.assets.found.insert(name.to_owned(), a.clone()).await;
        Ok(Some(a))
    }
}
