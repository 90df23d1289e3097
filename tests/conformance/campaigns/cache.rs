//! The Redis cache of active campaigns: exact, and rebuilt after an outage.

use serde_json::json;

use super::super::{key, user};
use super::*;
use harness::conformance;

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

conformance!(
    a_cache_rebuild_never_evicts_what_changed_during_its_scan,
    |env| {
        use std::sync::Arc;
        use walletctl_core::ads::wallet_client::StoreBalances;
        use walletctl_core::ads::{AdsService, CampaignInput, NewCampaign, Update};
        use walletctl_core::domain::{CampaignId, IdempotencyKey, Region, UserId};
        use walletctl_core::wallet::{EntryKind, MoneyCommand};

        let b = env.backends().await;
        b.db.migrate().await.unwrap();
        b.campaigns.migrate().await.unwrap();
        b.events.ensure_topics().await.unwrap();
        let u = UserId::parse(&user()).unwrap();
        let region = Region::parse("SOUTH_EAST").unwrap();
        b.wallets.create_wallet(&u, &region, "test").await.unwrap();
        let credit = MoneyCommand {
            user: u.clone(),
            kind: EntryKind::Credit,
            delta: 1_000_000,
            reason: None,
            reference: None,
            key: IdempotencyKey::parse(&key()).unwrap(),
            actor: "test".into(),
            fence: None,
        };
        b.wallets.apply(&credit).await.unwrap();
        let ads = AdsService::new(
            b.campaigns.clone(),
            Arc::new(StoreBalances::new(b.wallets.clone())),
            b.events.clone(),
            b.campaign_cache.clone(),
            300,
        );
        let new = |id: &str| {
            let input: CampaignInput =
                serde_json::from_value(campaign(id, u.as_str(), 10)).unwrap();
            NewCampaign::parse(input).unwrap()
        };
        let tag = user();
        let mut existing: Vec<CampaignId> = Vec::new();
        for i in 0..20 {
            let id = format!("rb-{tag}-base{i:02}");
            ads.create(new(&id)).await.unwrap();
            existing.push(CampaignId::parse(&id).unwrap());
        }
        for round in 0..8 {
            // Creates and resumes while a rebuild scans and evicts.
            let rebuild = {
                let ads = ads.clone();
                tokio::spawn(async move { ads.sync(false, &|_| {}).await })
            };
            for i in 0..6 {
                ads.create(new(&format!("rb-{tag}-r{round}-{i}")))
                    .await
                    .unwrap();
                let id = &existing[(round * 6 + i) % existing.len()];
                ads.update(id, Update::Pause).await.unwrap();
                ads.update(id, Update::Resume).await.unwrap();
                tokio::task::yield_now().await;
            }
            rebuild.await.unwrap().unwrap();
        }
        // And deterministically: a rebuild paused between its scan and its
        // evictions, while one campaign is created and a paused one resumed.
        let paused = existing[0].clone();
        ads.update(&paused, Update::Pause).await.unwrap();
        let (scanned_tx, scanned_rx) = std::sync::mpsc::channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (scanned_tx, go_rx) = (
            std::sync::Mutex::new(scanned_tx),
            std::sync::Mutex::new(go_rx),
        );
        let total = existing.len() as u64 + 8 * 6;
        let rebuild = {
            let ads = ads.clone();
            tokio::spawn(async move {
                let hold = move |checked: u64| {
                    if checked >= total {
                        let _ = scanned_tx.lock().unwrap().send(());
                        // Hand this worker's queue to another thread while waiting.
                        tokio::task::block_in_place(|| {
                            let _ = go_rx
                                .lock()
                                .unwrap()
                                .recv_timeout(std::time::Duration::from_secs(20));
                        });
                    }
                };
                ads.sync(false, &hold).await
            })
        };
        tokio::task::spawn_blocking(move || {
            scanned_rx.recv_timeout(std::time::Duration::from_secs(20))
        })
        .await
        .unwrap()
        .expect("the rebuild scanned");
        let late = format!("rb-{tag}-late");
        ads.create(new(&late)).await.unwrap();
        ads.update(&paused, Update::Resume).await.unwrap();
        go_tx.send(()).unwrap();
        rebuild.await.unwrap().unwrap();
        for id in [late.as_str(), paused.as_str()] {
            let cached = b.campaign_cache.get(id).await.unwrap();
            assert!(
                cached.is_some_and(|c| c.status == walletctl_core::ads::Status::Active),
                "{id} was evicted by a rebuild that scanned before it became active"
            );
        }
        // Nothing a rebuild ran beside was lost: the cache matches the store.
        let check = ads.sync(true, &|_| {}).await.unwrap();
        assert_eq!(
            (check.missing, check.stale, check.orphaned),
            (0, 0, 0),
            "{:#?}",
            check.differences
        );
    }
);
