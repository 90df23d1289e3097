//! Advertising management: campaigns created idempotently, kept exactly,
//! listed, paused and resumed by the rules, changed under a version guard;
//! in MongoDB (distributed) and the embedded store alike.

use harness::{App, conformance};
use serde_json::{Value, json};

use super::{amount, key, user};

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

fn ids(list: &Value) -> Vec<String> {
    list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["campaign_id"].as_str().unwrap().to_owned())
        .collect()
}

conformance!(campaigns_are_created_once_and_kept_exactly, |env| {
    let app = env.spawn().await;
    let (u, id) = (user(), format!("c-{}", user()));
    app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
    let body = campaign(&id, &u, 1000);
    let (s, created, _) = ads_post(&app, "/campaigns", body.clone()).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(
        (
            created["status"].as_str(),
            created["version"].as_i64(),
            created["spent"].as_i64()
        ),
        (Some("active"), Some(1), Some(0))
    );
    assert_eq!(created["status_reason"], Value::Null);
    // The same definition again: the stored campaign, not a second one.
    let (s, again, replayed) = ads_post(&app, "/campaigns", body.clone()).await;
    assert_eq!((s, replayed), (200, true));
    assert_eq!(again, created);
    // The same id with another definition: refused, nothing changed.
    let (s, b, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 999)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("campaign_exists"))
    );
    // Free-form fields come back exactly, unknown keys and all.
    let (s, one) = ads_get(&app, &format!("/campaign/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(one["targeting"], body["targeting"]);
    assert_eq!(one["metadata"], body["metadata"]);
    assert_eq!(one["pricing"]["price"], 1000);
    let (s, list) = ads_get(&app, &format!("/campaigns/{u}")).await;
    assert_eq!((s, ids(&list)), (200, vec![id.clone()]));
    let (s, b) = ads_get(&app, "/campaign/no-such-campaign").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("campaign_not_found"))
    );
    app.stop().await;
});

conformance!(
    a_bad_campaign_is_refused_by_field_and_nothing_is_stored,
    |env| {
        let app = env.spawn().await;
        let u = user();
        let cases = [
            (
                "pricing.price",
                json!({"pricing": {"model": "cpc", "price": -5}}),
            ),
            (
                "budget.daily",
                json!({"budget": {"lifetime": 10, "daily": 20}}),
            ),
            (
                "creative.landing_url",
                json!({"creative": {"title": "t", "asset_url": "https://a.example/x", "landing_url": "javascript:alert(1)"}}),
            ),
            ("user_id", json!({"user_id": "has space"})),
            ("targeting", json!({"targeting": [1, 2]})),
        ];
        for (field, change) in cases {
            let mut body = campaign(&format!("bad-{}", user()), &u, 10);
            for (k, v) in change.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (s, b, _) = ads_post(&app, "/campaigns", body).await;
            assert_eq!(
                (s, b["error"]["details"]["field"].as_str()),
                (422, Some(field)),
                "{b}"
            );
        }
        let mut unknown = campaign("c-unknown", &u, 10);
        unknown["budgett"] = json!(1);
        let (s, _, _) = ads_post(&app, "/campaigns", unknown).await;
        assert_eq!(s, 422, "unknown fields are refused");
        let (_, list) = ads_get(&app, &format!("/campaigns/{u}?status=all")).await;
        assert!(ids(&list).is_empty(), "nothing was stored: {list}");
        app.stop().await;
    }
);

conformance!(
    a_paused_campaign_resumes_only_when_its_wallet_can_pay,
    |env| {
        let app = env.spawn().await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
        let id = format!("c-{}", user());
        ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
        let update = format!("/campaigns/{id}/update");

        let (s, paused, _) = ads_post(&app, &update, json!({"action": "pause"})).await;
        assert_eq!(s, 200, "{paused}");
        assert_eq!(
            (
                paused["status"].as_str(),
                paused["status_reason"].as_str(),
                paused["version"].as_i64()
            ),
            (Some("paused"), Some("manual"), Some(2))
        );
        let (_, active) = ads_get(&app, &format!("/campaigns/{u}")).await;
        assert!(
            ids(&active).is_empty(),
            "a paused campaign is not listed as active"
        );
        let (_, all) = ads_get(&app, &format!("/campaigns/{u}?status=all")).await;
        assert_eq!(ids(&all), vec![id.clone()]);
        // Pausing again changes nothing.
        let (_, again, _) = ads_post(&app, &update, json!({"action": "pause"})).await;
        assert_eq!(again["version"], 2);

        let (s, resumed, _) = ads_post(&app, &update, json!({"action": "resume"})).await;
        assert_eq!(
            (s, resumed["status"].as_str(), resumed["version"].as_i64()),
            (200, Some("active"), Some(3))
        );

        // Drain the wallet below one click: a resume is refused and nothing changes.
        let (s, _) = app
            .post(&format!("/wallet/{u}/deduct"), amount(4_500), Some(&key()))
            .await;
        assert_eq!(s, 200);
        ads_post(&app, &update, json!({"action": "pause"})).await;
        let (s, b, _) = ads_post(&app, &update, json!({"action": "resume"})).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (409, Some("wallet_cannot_pay")),
            "{b}"
        );
        assert_eq!(
            (
                b["error"]["details"]["needed"].as_i64(),
                b["error"]["details"]["balance"].as_i64()
            ),
            (Some(1_000), Some(500))
        );
        let (_, one) = ads_get(&app, &format!("/campaign/{id}")).await;
        assert_eq!(
            (one["status"].as_str(), one["status_reason"].as_str()),
            (Some("paused"), Some("manual"))
        );

        // An advertiser with no wallet at all cannot resume either.
        let orphan = format!("c-{}", user());
        ads_post(&app, "/campaigns", campaign(&orphan, &user(), 1)).await;
        ads_post(
            &app,
            &format!("/campaigns/{orphan}/update"),
            json!({"action": "pause"}),
        )
        .await;
        let (s, b, _) = ads_post(
            &app,
            &format!("/campaigns/{orphan}/update"),
            json!({"action": "resume"}),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["balance"].clone()),
            (409, Value::Null)
        );
        app.stop().await;
    }
);

conformance!(
    changes_are_checked_and_none_is_lost_under_concurrency,
    |env| {
        let app = env.spawn().await;
        let u = user();
        let id = format!("c-{}", user());
        ads_post(&app, "/campaigns", campaign(&id, &u, 10)).await;
        let update = format!("/campaigns/{id}/update");
        let (s, b, _) = ads_post(
            &app,
            &update,
            json!({"pricing": {"model": "cpm", "price": 0}}),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("pricing.price"))
        );
        let (s, _, _) = ads_post(&app, &update, json!({"action": "pause", "name": "x"})).await;
        assert_eq!(s, 422, "an action or fields, not both");
        let (s, _, _) = ads_post(&app, &update, json!({})).await;
        assert_eq!(s, 422, "nothing to do");
        // Ten concurrent changes, each different: each applied exactly once.
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let req = app
                    .http
                    .post(format!("{}{update}", app.ads))
                    .bearer_auth(&app.token)
                    .json(&json!({"metadata": {"rev": i}}));
                tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let (_, one) = ads_get(&app, &format!("/campaign/{id}")).await;
        assert_eq!(
            one["version"], 11,
            "ten changes after version 1, none lost: {one}"
        );
        app.stop().await;
    }
);

conformance!(campaign_routes_need_campaign_scopes, |env| {
    let app = env.spawn().await;
    let store = env.backends().await.store;
    let scopes = |s: &str| walletctl_core::platform::auth::Scopes::parse(s).unwrap();
    let reader = store
        .create_token("wallet-reader", &scopes("read"), "test")
        .await
        .unwrap()
        .secret;
    let viewer = store
        .create_token("campaign-viewer", &scopes("campaigns_read"), "test")
        .await
        .unwrap()
        .secret;
    let u = user();
    let (s, _) = app
        .send(
            app.http
                .get(format!("{}/campaigns/{u}", app.ads))
                .bearer_auth(&reader),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .send(
            app.http
                .get(format!("{}/campaigns/{u}", app.ads))
                .bearer_auth(&viewer),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .send(
            app.http
                .post(format!("{}/campaigns", app.ads))
                .bearer_auth(&viewer)
                .json(&campaign("c-x", &u, 1)),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .send(app.http.get(format!("{}/campaigns/{u}", app.ads)))
        .await;
    assert_eq!(s, 401);
    app.stop().await;
});

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
async fn applied_up_to(env: &harness::TestEnv, user: &str, version: i64) {
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

async fn wallet_version(app: &App, user: &str) -> i64 {
    let (_, w) = app
        .get(&format!("/wallet/{user}/balance?consistency=strong"))
        .await;
    w["version"].as_i64().unwrap()
}

conformance!(
    campaigns_pause_when_the_wallet_empties_and_resume_when_it_refills,
    |env| {
        let app = env.spawn().await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
        let v = wallet_version(&app, &u).await;
        applied_up_to(&env, &u, v).await;
        let (id, manual) = (format!("c-{}", user()), format!("m-{}", user()));
        ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
        ads_post(&app, "/campaigns", campaign(&manual, &u, 1_000)).await;
        ads_post(
            &app,
            &format!("/campaigns/{manual}/update"),
            json!({"action": "pause"}),
        )
        .await;
        let mut paused_events = env
            .backends()
            .await
            .events
            .subscribe(
                &format!("{}-paused", env.id),
                walletctl_core::events::topic::CAMPAIGN_PAUSED,
            )
            .await
            .unwrap();

        // Drain the wallet below one click: the campaign pauses for wallet_empty.
        let (s, _) = app
            .post(&format!("/wallet/{u}/deduct"), amount(4_500), Some(&key()))
            .await;
        assert_eq!(s, 200);
        let c = campaign_until(&app, &id, "paused", |c| c["status"] == "paused").await;
        assert_eq!(c["status_reason"], "wallet_empty");
        let v_empty = wallet_version(&app, &u).await;
        assert_eq!(c["status_wallet_version"], v_empty);
        let (_, active) = ads_get(&app, &format!("/campaigns/{u}")).await;
        assert!(ids(&active).is_empty());

        // The pause was published, with its reason, decoded strictly.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let event = loop {
            let m = tokio::time::timeout_at(deadline, paused_events.next())
                .await
                .expect("a campaign_paused event")
                .unwrap();
            let e: walletctl_core::ads::events::CampaignStatusChanged =
                serde_json::from_str(&m.payload).unwrap();
            if e.campaign_id == id
                && e.reason == Some(walletctl_core::ads::StatusReason::WalletEmpty)
            {
                assert_eq!(m.key, id, "keyed by campaign");
                break e;
            }
        };
        assert_eq!(
            (event.campaign_version, event.wallet_version),
            (c["version"].as_i64().unwrap(), Some(v_empty))
        );

        // A top-up resumes it; the manual pause stays.
        let (s, _) = app
            .post(&format!("/wallet/{u}/credit"), amount(2_000), Some(&key()))
            .await;
        assert_eq!(s, 200);
        let c = campaign_until(&app, &id, "resumed", |c| c["status"] == "active").await;
        assert_eq!(c["status_reason"], Value::Null);
        let v_refilled = wallet_version(&app, &u).await;
        applied_up_to(&env, &u, v_refilled).await;
        let (_, m) = ads_get(&app, &format!("/campaign/{manual}")).await;
        assert_eq!(
            (m["status"].as_str(), m["status_reason"].as_str()),
            (Some("paused"), Some("manual")),
            "a person's pause survives a top-up"
        );
        app.stop().await;
    }
);

conformance!(stale_and_repeated_wallet_events_change_nothing, |env| {
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
    let id = format!("c-{}", user());
    ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
    let v = wallet_version(&app, &u).await;
    applied_up_to(&env, &u, v).await;
    let before = ads_get(&app, &format!("/campaign/{id}")).await.1;
    // An old event saying the wallet is empty, and a repeat of the current one.
    let backends = env.backends().await;
    let stale = json!({"event_id": "stale-1", "type": "balance_updated", "user_id": u, "region": "SOUTH_EAST",
        "balance": 0, "version": v - 1, "delta": -5000, "entry_id": null, "entry_kind": "deduct", "occurred_at_ms": 0}).to_string();
    let repeat = json!({"event_id": "repeat-1", "type": "balance_updated", "user_id": u, "region": "SOUTH_EAST",
        "balance": 5000, "version": v, "delta": 0, "entry_id": null, "entry_kind": null, "occurred_at_ms": 0}).to_string();
    let not_json = "{not json".to_owned();
    for payload in [&stale, &repeat, &not_json] {
        backends
            .events
            .publish(&[walletctl_core::events::Record {
                topic: walletctl_core::events::topic::BALANCE_UPDATED,
                key: &u,
                payload,
            }])
            .await
            .unwrap();
    }
    // A real change after them: once it is applied, so were they (same key, same partition, in order).
    let (s, _) = app
        .post(&format!("/wallet/{u}/deduct"), amount(1), Some(&key()))
        .await;
    assert_eq!(s, 200);
    applied_up_to(&env, &u, v + 1).await;
    let after = ads_get(&app, &format!("/campaign/{id}")).await.1;
    assert_eq!(after, before, "nothing changed");
    app.stop().await;
});

// A consumer that dies after pausing a campaign and before recording the
// wallet version sees the event again: no second change, and the pause is
// published again under the same event id.
conformance!(a_redelivered_event_has_no_second_effect, |env| {
    let app = env.spawn().await;
    let u = user();
    // Funded, so the running consumer leaves the campaign alone.
    app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
    let v = wallet_version(&app, &u).await;
    applied_up_to(&env, &u, v).await;
    let id = format!("c-{}", user());
    let (_, created, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
    let backends = env.backends().await;
    let store = backends.campaigns.clone();
    let uid = walletctl_core::domain::UserId::parse(&u).unwrap();
    // The state a crash leaves: paused by wallet version 99, version 99 not recorded.
    let mut paused: walletctl_core::ads::Campaign =
        serde_json::from_value(created.clone()).unwrap();
    paused.status = walletctl_core::ads::Status::Paused;
    paused.status_reason = Some(walletctl_core::ads::StatusReason::WalletEmpty);
    paused.status_wallet_version = Some(99);
    paused.version = 2;
    assert!(store.replace(&paused, 1).await.unwrap());
    let balances = std::sync::Arc::new(
        walletctl_core::ads::wallet_client::HttpBalances::new(
            &app.wallet,
            walletctl_core::config::Secret::new(app.token.clone()),
        )
        .unwrap(),
    );
    let ads = walletctl_core::ads::AdsService::new(
        store.clone(),
        balances,
        backends.events.clone(),
        backends.campaign_cache.clone(),
        300,
    );
    let out = ads.on_balance(&uid, 10, 99).await.unwrap();
    let walletctl_core::ads::BalanceOutcome::Applied(touched) = out else {
        panic!("applied")
    };
    assert_eq!(touched.len(), 1, "its event is published again");
    assert_eq!(touched[0].version, 2, "no second change");
    assert_eq!(
        ads.on_balance(&uid, 10, 99).await.unwrap(),
        walletctl_core::ads::BalanceOutcome::Stale
    );
    assert_eq!(
        ads.on_balance(&uid, 0, 98).await.unwrap(),
        walletctl_core::ads::BalanceOutcome::Stale
    );
    let (_, c) = ads_get(&app, &format!("/campaign/{id}")).await;
    assert_eq!(c["version"], 2);
    app.stop().await;
});

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
    campaigns_are_ingested_from_the_log_once_and_bad_events_are_dead_lettered,
    |env| {
        let app = env.spawn().await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
        let (first, later) = (format!("in-{}", user()), format!("in-{}", user()));
        let good = campaign(&first, &u, 700).to_string();
        let mut conflicting = campaign(&first, &u, 701);
        conflicting["name"] = json!("Another definition");
        let mut invalid = campaign(&format!("in-{}", user()), &u, 1);
        invalid["pricing"] = json!({"model": "cpc", "price": 0});
        let events = [
            good.clone(),
            good.clone(), // a duplicate: still one campaign
            "{not json".to_owned(),
            invalid.to_string(),
            conflicting.to_string(),
            campaign(&later, &u, 5).to_string(), // after the bad ones: ingest did not stall
        ];
        let backends = env.backends().await;
        for payload in &events {
            backends
                .events
                .publish(&[walletctl_core::events::Record {
                    topic: walletctl_core::events::topic::CAMPAIGN_CREATED,
                    key: &u,
                    payload,
                }])
                .await
                .unwrap();
        }
        campaign_until(&app, &later, "ingested", |c| c["status"] == "active").await;
        let (_, one) = ads_get(&app, &format!("/campaign/{first}")).await;
        assert_eq!(
            (one["version"].as_i64(), one["pricing"]["price"].as_i64()),
            (Some(1), Some(700)),
            "ingested once, first definition kept"
        );
        let (_, all) = ads_get(&app, &format!("/campaigns/{u}?status=all")).await;
        assert_eq!(ids(&all).len(), 2, "{all}");

        let mut dead = backends
            .events
            .subscribe(
                &format!("{}-dead", env.id),
                walletctl_core::events::topic::CAMPAIGN_CREATED_DEAD,
            )
            .await
            .unwrap();
        let mut reasons = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while reasons.len() < 3 {
            let m = tokio::time::timeout_at(deadline, dead.next())
                .await
                .expect("three dead letters")
                .unwrap();
            let d: Value = serde_json::from_str(&m.payload).unwrap();
            assert!(
                d["payload"].is_string() && d["offset"].is_i64(),
                "a dead letter carries the original: {d}"
            );
            reasons.push(d["reason"].as_str().unwrap().to_owned());
        }
        reasons.sort();
        assert_eq!(reasons, ["campaign_exists", "invalid", "malformed"]);
        app.stop().await;
    }
);

/// Two instances in one consumer group share the wallet events: each
/// event has its effect once (one pause and one resume per campaign, no more).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_apply_each_wallet_event_once() {
    let env = harness::TestEnv::new(harness::Mode::Distributed).await;
    let a = env.spawn().await;
    let b = App::start(env.config.clone()).await;
    let users: Vec<String> = (0..6).map(|_| user()).collect();
    for u in &users {
        a.wallet_with(u, "SOUTH_EAST", 1_000).await;
        let v = wallet_version(&a, u).await;
        applied_up_to(&env, u, v).await;
        ads_post(&a, "/campaigns", campaign(&format!("two-{u}"), u, 1_000)).await;
    }
    for (i, u) in users.iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        let (s, _) = app
            .post(&format!("/wallet/{u}/deduct"), amount(1_000), Some(&key()))
            .await;
        assert_eq!(s, 200);
    }
    for u in &users {
        let c = campaign_until(&a, &format!("two-{u}"), "paused", |c| {
            c["status"] == "paused"
        })
        .await;
        assert_eq!(c["version"], 2, "paused once: {c}");
    }
    for u in &users {
        let (s, _) = b
            .post(&format!("/wallet/{u}/credit"), amount(5_000), Some(&key()))
            .await;
        assert_eq!(s, 200);
    }
    for u in &users {
        let c = campaign_until(&b, &format!("two-{u}"), "resumed", |c| {
            c["status"] == "active"
        })
        .await;
        let v = wallet_version(&a, u).await;
        applied_up_to(&env, u, v).await;
        let (_, c2) = ads_get(&a, &format!("/campaign/two-{u}")).await;
        assert_eq!(
            (c["version"].as_i64(), c2["version"].as_i64()),
            (Some(3), Some(3)),
            "resumed once"
        );
    }
    a.stop().await;
    b.stop().await;
}

conformance!(
    a_campaign_for_an_empty_wallet_starts_paused_and_resumes_when_funded,
    |env| {
        let app = env.spawn().await;
        let (u, id) = (user(), format!("c-{}", user()));
        // No wallet at all, then an empty one: not served, whatever its status says.
        let (s, created, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
        assert_eq!(s, 201);
        assert_eq!(
            (
                created["status"].as_str(),
                created["status_reason"].as_str()
            ),
            (Some("paused"), Some("wallet_empty")),
            "{created}"
        );
        let (_, active) = ads_get(&app, &format!("/campaigns/{u}")).await;
        assert!(
            ids(&active).is_empty(),
            "not served before funds are confirmed"
        );
        app.wallet_with(&u, "SOUTH_EAST", 1_000).await;
        let c = campaign_until(&app, &id, "resumed", |c| c["status"] == "active").await;
        assert_eq!(c["status_reason"], Value::Null);
        let (_, active) = ads_get(&app, &format!("/campaigns/{u}")).await;
        assert_eq!(ids(&active), vec![id]);
        app.stop().await;
    }
);
