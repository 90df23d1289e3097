//! Campaigns following their advertiser's wallet: paused when it empties,
//! resumed when it refills, each wallet event applied once.

use harness::{App, conformance};
use serde_json::{Value, json};

use super::super::{amount, key, user};
use super::*;

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
