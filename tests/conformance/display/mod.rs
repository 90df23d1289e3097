//! Ad display and billing, end to end: ads served by two display
//! instances, impressions and clicks logged to `ad_events`, each charged
//! exactly once, and the campaign stopped when its wallet or budget runs
//! out; in both modes.
//!
//! One file per behaviour: `charging.rs` (clicks, impressions, budgets),
//! `tokens.rs` (forged, expired, rotated), `assets.rs` and `frequency.rs`.

mod assets;
mod charging;
mod frequency;
mod pause;
mod tokens;

use std::time::Duration;

use harness::App;
use serde_json::Value;
use walletctl_core::display::AdEvent;
use walletctl_core::events::{Record, topic};

use super::campaigns::ads_get;
use super::user;

/// A client that shows redirects instead of following them.
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Asks `app`'s display service for an ad until it answers `want` (its
/// candidates are refreshed in the background): the ad, or `Null` for 204.
pub(crate) async fn ads_until(app: &App, query: &str, want: u16) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let res = app
            .http
            .get(format!("{}/ads?{query}", app.display))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(matches!(status, 200 | 204), "an ad or nothing: {status}");
        if status == want {
            return res.json().await.unwrap_or(Value::Null);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{query} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next ad `app` serves for `query`.
pub(crate) async fn ad_from(app: &App, query: &str) -> Value {
    ads_until(app, query, 200).await
}

/// Waits until `app` serves nothing for `query`.
pub(crate) async fn no_ad_from(app: &App, query: &str) {
    ads_until(app, query, 204).await;
}

/// The campaign's billing once `n` distinct events are recorded.
pub(crate) async fn billing_with(app: &App, id: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, b) = ads_get(app, &format!("/campaign/{id}/billing?limit=1000")).await;
        assert_eq!(s, 200, "{b}");
        let got = b["events"].as_array().unwrap().len();
        if got >= n {
            assert_eq!(got, n, "more events recorded than sent: {b}");
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {got} of {n} events billed: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn count(billing: &Value, f: impl Fn(&Value) -> bool) -> usize {
    billing["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| f(e))
        .count()
}

/// Publishes `events` to `ad_events` again, then one fresh impression of
/// the same campaign (the same partition, so billed after them), and waits
/// for that one: everything republished has been consumed by then.
pub(crate) async fn redeliver(
    env: &harness::TestEnv,
    app: &App,
    id: &str,
    events: &[AdEvent],
    known: usize,
) {
    let backends = env.backends().await;
    let mut sentinel = events[0].clone();
    sentinel.kind = walletctl_core::display::AdEventKind::Impression;
    sentinel.decision_id = format!("sentinel{}", user());
    sentinel.event_id = format!("imp:{}", sentinel.decision_id);
    let payloads: Vec<String> = events
        .iter()
        .chain(std::iter::once(&sentinel))
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let records: Vec<Record> = payloads
        .iter()
        .map(|p| Record {
            topic: topic::AD_EVENTS,
            key: id,
            payload: p,
        })
        .collect();
    backends.events.publish(&records).await.unwrap();
    billing_with(app, id, known + 1).await;
}

/// The ledger's sum equals the balance; the `ad_charge` entries are listed.
pub(crate) async fn ad_charges(app: &App, u: &str) -> Vec<Value> {
    let (s, h) = app
        .get(&format!("/wallet/{u}/history?limit=500&consistency=strong"))
        .await;
    assert_eq!(s, 200, "{h}");
    let entries = h["entries"].as_array().unwrap();
    let sum: i64 = entries.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
    assert_eq!(sum, app.balance(u).await, "the ledger sums to the balance");
    entries
        .iter()
        .filter(|e| e["kind"] == "ad_charge")
        .cloned()
        .collect()
}

pub(crate) fn events_of(billing: &Value) -> Vec<AdEvent> {
    billing["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = e["event_id"].as_str().unwrap();
            AdEvent {
                event_id: id.to_owned(),
                kind: serde_json::from_value(e["kind"].clone()).unwrap(),
                campaign_id: e["campaign_id"].as_str().unwrap().to_owned(),
                user_id: e["user_id"].as_str().unwrap().to_owned(),
                slot: "top".into(),
                viewer: None,
                decision_id: id.split_once(':').unwrap().1.to_owned(),
                occurred_at_ms: e["occurred_at_ms"].as_i64().unwrap(),
            }
        })
        .collect()
}

/// The demo creative: a 240×120 PNG.
pub(crate) const CREATIVE_PNG: &[u8] = include_bytes!("../../fixtures/creative.png");

/// Uploads `bytes` as `id`'s image: (status, body).
pub(crate) async fn upload(
    app: &App,
    id: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    app.send(
        app.http
            .post(format!("{}/campaigns/{id}/asset", app.ads))
            .bearer_auth(&app.token)
            .header("content-type", content_type)
            .body(bytes),
    )
    .await
}

/// An ad whose creative shows `asset` (the candidates catch up with the upload).
pub(crate) async fn ad_until_asset(app: &App, query: &str, asset: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ad = ad_from(app, query).await;
        if ad["creative"]["asset_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(asset))
        {
            return ad;
        }
        assert!(tokio::time::Instant::now() < deadline, "never shown: {ad}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many of `u`'s campaigns the display service holds (it serves the
/// advertiser's list once read; before that, the pool).
pub(crate) async fn app_pool_size(app: &App, u: &str) -> usize {
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let res = app
            .http
            .get(format!("{}/ads?slot=probe&advertiser={u}", app.display))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            let ad: Value = res.json().await.unwrap();
            ids.insert(ad["campaign_id"].as_str().unwrap().to_owned());
        }
    }
    ids.len()
}
