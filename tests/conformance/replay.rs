//! `kafka replay` through the services' own idempotent handlers: an
//! already-processed window changes nothing even executed, and a window
//! the services never saw is applied exactly once; `kafka lag` shows the
//! consumers catching up. Kafka and the embedded log alike.

use std::time::Duration;

use harness::{App, conformance};
use walletctl_core::display::{AdEvent, AdEventKind};
use walletctl_core::events::{Position, Record, topic};
use walletctl_core::ops::replay::{ReplayReport, Window, replay};

use super::campaigns::{ads_post, campaign, campaign_until};
use super::user;

fn window(topic: &str, from: Position) -> Window {
    Window {
        topic: topic.to_owned(),
        partition: None,
        from,
        to: Position::End,
    }
}

async fn run(env: &harness::TestEnv, w: &Window, execute: bool) -> ReplayReport {
    replay(&env.backends().await, w, execute, &|_, _| {})
        .await
        .unwrap()
}

fn click(n: usize, campaign: &str, user: &str) -> AdEvent {
    let decision = format!("skipped{n:03}");
    AdEvent {
        event_id: format!("clk:{decision}"),
        kind: AdEventKind::Click,
        campaign_id: campaign.to_owned(),
        user_id: user.to_owned(),
        slot: "s".into(),
        viewer: None,
        decision_id: decision,
        occurred_at_ms: walletctl_core::now_ms(),
    }
}

/// Waits until `group` has consumed everything of `topic`.
async fn caught_up(env: &harness::TestEnv, group: &str, topic: &str) {
    let backends = env.backends().await;
    for _ in 0..600 {
        let lag = backends.events.lag(group, topic).await.unwrap();
        if lag.iter().all(|l| l.lag == 0) && lag.iter().any(|l| l.committed.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{group} never caught up on {topic}");
}

conformance!(
    replaying_a_processed_window_changes_nothing_even_executed,
    |env| {
        let app = env.spawn().await;
        let u = user();
        let id = format!("rp-{u}");
        app.wallet_with(&u, "SOUTH_EAST", 3_000).await;
        let (s, _, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
        assert_eq!(s, 201);
        // Two clicks billed by the running service, then the wallet drained by hand.
        let ad = crate::display::ad_from(&app, &format!("slot=s&advertiser={u}")).await;
        let ad2 = crate::display::ad_from(&app, &format!("slot=s&advertiser={u}")).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for a in [&ad, &ad2] {
            let res = http
                .get(a["click_url"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 302);
        }
        crate::display::billing_with(&app, &id, 2).await;
        let (s, _) = app
            .post(
                &format!("/wallet/{u}/deduct"),
                crate::amount(1_000),
                Some("drain"),
            )
            .await;
        assert_eq!(s, 200);
        campaign_until(&app, &id, "paused", |c| c["status"] == "paused").await;
        caught_up(&env, "walletctl-billing", topic::AD_EVENTS).await;
        caught_up(&env, "walletctl-ads", topic::BALANCE_UPDATED).await;
        let balance = app.balance(&u).await;
        let (_, before) = app
            .get(&format!("/wallet/{u}/history?consistency=strong"))
            .await;

        for execute in [false, true] {
            let r = run(
                &env,
                &window(topic::AD_EVENTS, Position::Beginning),
                execute,
            )
            .await;
            assert_eq!(
                (r.read, r.already_applied, r.to_apply, r.invalid),
                (2, 2, 0, 0),
                "{r:?}"
            );
            let r = run(
                &env,
                &window(topic::BALANCE_UPDATED, Position::Beginning),
                execute,
            )
            .await;
            assert_eq!(r.to_apply, 0, "{r:?}");
            assert!(
                r.already_applied >= 4,
                "creation, credit, two charges, drain: {r:?}"
            );
        }
        assert_eq!(app.balance(&u).await, balance);
        let (_, after) = app
            .get(&format!("/wallet/{u}/history?consistency=strong"))
            .await;
        assert_eq!(after, before, "the ledger is unchanged");
        let (_, c) = crate::campaigns::ads_get(&app, &format!("/campaign/{id}")).await;
        assert_eq!(
            (c["status"].as_str(), c["status_reason"].as_str()),
            (Some("paused"), Some("wallet_empty"))
        );
        app.stop().await;
    }
);

conformance!(
    replay_after_a_skipped_window_bills_exactly_the_missing_events,
    |env| {
        let app = env.spawn().await;
        let u = user();
        let id = format!("skip-{u}");
        app.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        let (s, _, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
        assert_eq!(s, 201);
        // One click billed normally first.
        let ad = crate::display::ad_from(&app, &format!("slot=s&advertiser={u}")).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        http.get(ad["click_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        crate::display::billing_with(&app, &id, 1).await;
        caught_up(&env, "walletctl-billing", topic::AD_EVENTS).await;
        app.stop().await;

        // The window billing never saw: three clicks logged while it was down.
        let backends = env.backends().await;
        let partitions = backends.events.describe(topic::AD_EVENTS).await.unwrap();
        let ends: Vec<i64> = partitions.partitions.iter().map(|p| p.high).collect();
        let since = walletctl_core::now_ms();
        let clicks: Vec<String> = (0..3)
            .map(|n| serde_json::to_string(&click(n, &id, &u)).unwrap())
            .collect();
        let records: Vec<Record> = clicks
            .iter()
            .map(|p| Record {
                topic: topic::AD_EVENTS,
                key: &id,
                payload: p,
            })
            .collect();
        backends.events.publish(&records).await.unwrap();
        backends
            .events
            .publish(&[Record {
                topic: topic::AD_EVENTS,
                key: &id,
                payload: "not an ad event",
            }])
            .await
            .unwrap();

        let skipped = Window {
            topic: topic::AD_EVENTS.into(),
            partition: None,
            from: Position::Timestamp(since),
            to: Position::End,
        };
        let dry = run(&env, &skipped, false).await;
        assert_eq!(
            (dry.read, dry.already_applied, dry.to_apply, dry.invalid),
            (4, 0, 3, 1),
            "{dry:?}"
        );
        assert!(
            dry.differences.iter().any(|d| d.contains("clk:skipped000")),
            "{dry:?}"
        );
        let moved = backends.events.describe(topic::AD_EVENTS).await.unwrap();
        assert!(moved.partitions.iter().zip(&ends).any(|(p, e)| p.high > *e));
        let done = run(&env, &skipped, true).await;
        assert_eq!((done.to_apply, done.executed), (3, true));
        let again = run(&env, &skipped, true).await;
        assert_eq!((again.already_applied, again.to_apply), (3, 0));
        let balance = backends
            .wallets
            .ledger_sum(&walletctl_core::domain::UserId::parse(&u).unwrap())
            .await
            .unwrap();
        assert_eq!(
            balance,
            (10_000 - 4_000, 10_000 - 4_000),
            "one click before, three replayed"
        );

        // The billing worker, back, consumes the window too: nothing changes.
        let app = App::start(env.config.clone()).await;
        caught_up(&env, "walletctl-billing", topic::AD_EVENTS).await;
        assert_eq!(app.balance(&u).await, 6_000);
        let billing = crate::display::billing_with(&app, &id, 4).await;
        assert_eq!(billing["totals"]["clicks"], 4);
        app.stop().await;
    }
);
