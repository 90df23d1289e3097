use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use harness::conformance;
use walletctl_core::events::topic;
use walletctl_core::wallet::BalanceUpdated;

use super::{amount, key, user};

conformance!(
    every_committed_change_reaches_the_event_log_once_in_effect,
    |env| {
        let app = env.spawn().await;
        let users: Vec<String> = (0..3).map(|_| user()).collect();
        let mut expected: BTreeMap<String, i64> = BTreeMap::new();
        for u in &users {
            app.wallet_with(u, "SOUTH_EAST", 100).await; // versions 0 and 1
            expected.insert(u.clone(), 1);
        }
        for i in 0..20 {
            let u = &users[i % users.len()];
            let (s, b) = app
                .post(&format!("/wallet/{u}/deduct"), amount(1), Some(&key()))
                .await;
            assert_eq!(s, 200, "{b}");
            *expected.get_mut(u).unwrap() += 1;
        }
        // A refusal commits no change and must publish nothing.
        let (s, _) = app
            .post(
                &format!("/wallet/{}/deduct", users[0]),
                amount(10_000),
                Some(&key()),
            )
            .await;
        assert_eq!(s, 409);

        let backends = env.backends().await;
        let mut sub = backends
            .events
            .subscribe(&format!("{}-check", env.id), topic::BALANCE_UPDATED)
            .await
            .unwrap();
        let want: usize = expected.values().map(|v| (*v + 1) as usize).sum();
        let mut seen_ids = HashSet::new();
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        let mut last_version: BTreeMap<String, i64> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while seen.len() < want {
            let m = tokio::time::timeout_at(deadline, sub.next())
                .await
                .unwrap_or_else(|_| panic!("only {} of {want} events arrived", seen.len()))
                .unwrap();
            let e: BalanceUpdated = serde_json::from_str(&m.payload).unwrap();
            assert_eq!(m.key, e.user_id, "keyed by user");
            if !seen_ids.insert(e.event_id.clone()) {
                continue; // a duplicate delivery: consumers drop it by id
            }
            assert!(
                seen.insert((e.user_id.clone(), e.version)),
                "two distinct events for one version: {e:?}"
            );
            let last = last_version.entry(e.user_id.clone()).or_insert(-1);
            assert!(
                e.version > *last,
                "per-user order holds: {e:?} after version {last}"
            );
            *last = e.version;
            sub.commit(&m).await.unwrap();
        }
        for (u, top) in &expected {
            for v in 0..=*top {
                assert!(seen.contains(&(u.clone(), v)), "missing {u} v{v}");
            }
        }
        assert_eq!(
            backends.outbox.outbox_backlog().await.unwrap(),
            0,
            "everything was marked sent"
        );
        // The relay exports the backlog for alerting. (The recorder is shared
        // by every test in this process, so only its presence is checked.)
        let metrics = app.metrics().await;
        assert!(
            metrics.lines().any(|l| l.starts_with("outbox_backlog ")),
            "outbox_backlog is exported"
        );
        app.stop().await;
    }
);
