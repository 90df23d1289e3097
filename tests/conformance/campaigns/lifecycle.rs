//! A campaign's life: created once, refused by field, changed under its
//! version, reached only with campaign scopes, ingested from the log.

use harness::conformance;
use serde_json::{Value, json};

use super::super::user;
use super::*;

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
    let store = env.backends().await.tokens;
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

conformance!(
    a_huge_hostile_message_is_dead_lettered_small_and_ingest_moves_on,
    |env| {
        let app = env.spawn().await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
        // 2 MB of control characters (JSON escapes each six-fold). The
        // broker here refuses messages near 1 MB, so on the stack the
        // message is the largest it takes: still a 5 MB dead letter unbounded.
        let size = match env.mode {
            harness::Mode::Embedded => 2 * 1024 * 1024,
            harness::Mode::Distributed => 900_000,
        };
        let hostile: String = (0..size).map(|i| char::from((i % 31 + 1) as u8)).collect();
        let after = format!("in-{}", user());
        let backends = env.backends().await;
        for payload in [hostile.clone(), campaign(&after, &u, 5).to_string()] {
            backends
                .events
                .publish(&[walletctl_core::events::Record {
                    topic: walletctl_core::events::topic::CAMPAIGN_CREATED,
                    key: &u,
                    payload: &payload,
                }])
                .await
                .expect("the hostile message is in the log");
        }
        campaign_until(&app, &after, "ingested after the hostile one", |c| {
            c["status"] == "active"
        })
        .await;
        let mut dead = backends
            .events
            .subscribe(
                &format!("{}-dead", env.id),
                walletctl_core::events::topic::CAMPAIGN_CREATED_DEAD,
            )
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let m = loop {
            let m = tokio::time::timeout_at(deadline, dead.next())
                .await
                .expect("a dead letter")
                .unwrap();
            if m.key == u {
                break m;
            }
        };
        assert!(m.payload.len() < 200_000, "{} bytes", m.payload.len());
        let d: Value = serde_json::from_str(&m.payload).unwrap();
        use sha2::Digest;
        assert_eq!(
            (
                d["reason"].as_str(),
                d["truncated"].as_bool(),
                d["payload_bytes"].as_u64()
            ),
            (Some("malformed"), Some(true), Some(hostile.len() as u64)),
            "{}",
            &m.payload[..300]
        );
        assert_eq!(
            d["payload_sha256"].as_str(),
            Some(hex::encode(sha2::Sha256::digest(hostile.as_bytes())).as_str())
        );
        assert!(
            d["offset"].is_i64() && d["partition"].is_i64() && d["topic"] == "campaign_created"
        );
        app.stop().await;
    }
);
