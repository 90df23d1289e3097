//! Advertising management: campaigns created idempotently, kept exactly,
//! listed, paused and resumed by the rules, changed under a version guard;
//! in MongoDB (distributed) and the embedded store alike.
//!
//! One file per behaviour: `lifecycle.rs` (create, refuse, change, scopes,
//! ingest), `follow_wallet.rs` (pause and resume from the wallet's events)
//! and `cache.rs` (the Redis cache of active campaigns).

mod cache;
mod follow_wallet;
mod lifecycle;

use harness::App;
use serde_json::{Value, json};

pub(crate) fn campaign(id: &str, user: &str, price: i64) -> Value {
    json!({
        "campaign_id": id, "user_id": user, "name": "Winter sale",
        "pricing": {"model": "cpc", "price": price},
        "budget": {"lifetime": 50000, "daily": null},
        "creative": {"title": "Boots", "asset_url": "https://cdn.example/boots.png", "landing_url": "https://shop.example/boots"},
        "targeting": {"geo": ["IR-07"], "x-vendor": {"score": 0.75, "tags": [null, true, "ü"], "n": 12345678901_i64}},
        "metadata": {"owner": "team-a"},
        "schedule": null
    })
}

pub(crate) async fn ads_post(app: &App, path: &str, body: Value) -> (u16, Value, bool) {
    let res = app
        .http
        .post(format!("{}{path}", app.ads))
        .bearer_auth(&app.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

pub(crate) async fn ads_get(app: &App, path: &str) -> (u16, Value) {
    app.send(
        app.http
            .get(format!("{}{path}", app.ads))
            .bearer_auth(&app.token),
    )
    .await
}

pub(crate) fn ids(list: &Value) -> Vec<String> {
    list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["campaign_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls until `done` holds for the campaign, or fails after 60 s.
pub(crate) async fn campaign_until(
    app: &App,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, c) = ads_get(app, &format!("/campaign/{id}")).await;
        if done(&c) {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "campaign never {what}: {c}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits until the ads consumer has applied `user`'s wallet up to `version`.
pub(crate) async fn applied_up_to(env: &harness::TestEnv, user: &str, version: i64) {
    let backends = env.backends().await;
    let u = walletctl_core::domain::UserId::parse(user).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while backends
        .campaigns
        .wallet_version(&u)
        .await
        .unwrap()
        .unwrap_or(-1)
        < version
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ads consumer never applied version {version}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub(crate) async fn wallet_version(app: &App, user: &str) -> i64 {
    let (_, w) = app
        .get(&format!("/wallet/{user}/balance?consistency=strong"))
        .await;
    w["version"].as_i64().unwrap()
}
