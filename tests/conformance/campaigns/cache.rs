//! The Redis cache of active campaigns: exact, and rebuilt after an outage.

use serde_json::json;

use super::super::user;
use super::*;

/// The Redis cache holds exactly the active campaigns, with their budget,
/// spend, status, price and version; a pause removes one; an older state
/// written late never comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_cache_holds_exactly_the_active_campaigns() {
    let env = harness::TestEnv::new(harness::Mode::Distributed).await;
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
    let id = format!("c-{}", user());
    ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
    let client = redis::Client::open(env.config.redis.as_ref().unwrap().url.expose()).unwrap();
    let mut r = client.get_multiplexed_async_connection().await.unwrap();
    let p = &env.config.redis.as_ref().unwrap().key_prefix;
    let key = |k: String| format!("{p}{k}");
    let hash = || key(format!("campaign:{id}"));
    // Wait for the start-up rebuild, then the cache has it after creation or a read.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        ads_get(&app, &format!("/campaigns/{u}")).await;
        let pool: Vec<String> = redis::cmd("SMEMBERS")
            .arg(key("campaigns:active".into()))
            .query_async(&mut r)
            .await
            .unwrap();
        if pool.contains(&id) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never cached");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(hash())
        .query_async(&mut r)
        .await
        .unwrap();
    for (field, want) in [
        ("budget", "50000"),
        ("spent", "0"),
        ("status", "active"),
        ("price", "1000"),
        ("version", "1"),
        ("model", "cpc"),
    ] {
        assert_eq!(
            fields.get(field).map(String::as_str),
            Some(want),
            "{field}: {fields:?}"
        );
    }
    let mine: Vec<String> = redis::cmd("SMEMBERS")
        .arg(key(format!("campaigns:active:{u}")))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(mine, vec![id.clone()]);

    ads_post(
        &app,
        &format!("/campaigns/{id}/update"),
        json!({"action": "pause"}),
    )
    .await;
    let exists: bool = redis::cmd("EXISTS")
        .arg(hash())
        .query_async(&mut r)
        .await
        .unwrap();
    let pool: Vec<String> = redis::cmd("SMEMBERS")
        .arg(key("campaigns:active".into()))
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(
        !exists && !pool.contains(&id),
        "a paused campaign leaves the cache"
    );

    // A late writer with the old, active state cannot put it back.
    let cache = env.backends().await.campaign_cache;
    let (_, old) = ads_get(&app, &format!("/campaign/{id}")).await;
    let mut stale: walletctl_core::ads::Campaign = serde_json::from_value(old).unwrap();
    stale.status = walletctl_core::ads::Status::Active;
    stale.status_reason = None;
    stale.version = 1;
    assert!(
        !cache.put(&stale, false).await.unwrap(),
        "refused by version"
    );
    let pool: Vec<String> = redis::cmd("SMEMBERS")
        .arg(key("campaigns:active".into()))
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(!pool.contains(&id));
    app.stop().await;
}

/// With Redis down, campaign reads fall back to the store and changes go on;
/// once Redis is back, the cache is rebuilt to match the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_down_reads_fall_back_and_the_cache_is_rebuilt() {
    let mut env = harness::TestEnv::new(harness::Mode::Distributed).await;
    let redis_cfg = env.config.redis.as_mut().unwrap();
    let upstream = harness::proxy::url_addr(redis_cfg.url.expose());
    let proxy = harness::proxy::Proxy::start(upstream).await;
    let direct_url = redis_cfg.url.clone();
    redis_cfg.url =
        walletctl_core::config::SecretUrl::new(proxy.rewrite(redis_cfg.url.expose(), upstream));
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
    let id = format!("c-{}", user());
    ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
    let (_, list) = ads_get(&app, &format!("/campaigns/{u}")).await;
    assert_eq!(ids(&list), vec![id.clone()]);

    proxy.cut();
    let (s, paused, _) = ads_post(
        &app,
        &format!("/campaigns/{id}/update"),
        json!({"action": "pause"}),
    )
    .await;
    assert_eq!(
        (s, paused["status"].as_str()),
        (200, Some("paused")),
        "changes go on without Redis"
    );
    let (s, list) = ads_get(&app, &format!("/campaigns/{u}")).await;
    assert_eq!(s, 200, "reads fall back to the store");
    assert!(ids(&list).is_empty(), "and are right: {list}");

    proxy.restore();
    let client = redis::Client::open(direct_url.expose()).unwrap();
    let mut r = client.get_multiplexed_async_connection().await.unwrap();
    let pool_key = format!(
        "{}campaigns:active",
        env.config.redis.as_ref().unwrap().key_prefix
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let pool: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&pool_key)
            .query_async(&mut r)
            .await
            .unwrap();
        let (_, list) = ads_get(&app, &format!("/campaigns/{u}")).await;
        // Redis still held the campaign as active when the pause went to the
        // store alone: only a rebuild takes it out.
        if !pool.contains(&id) && ids(&list).is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cache was not rebuilt to match the store"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;
}
