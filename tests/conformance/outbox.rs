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
            backends.store.outbox_backlog().await.unwrap(),
            0,
            "everything was marked sent"
        );
        app.stop().await;
    }
);

/// Two relays share the outbox with SKIP LOCKED. Relay B holds a row whose id
/// lies between the rows relay A takes, and B's publish fails: that row must
/// stay unsent (A may mark only what it published), or the event is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_marks_only_what_it_published() {
    use sqlx::Connection;
    let env = harness::TestEnv::new(harness::Mode::Distributed).await;
    let backends = env.backends().await;
    let store = backends.store.clone();
    store.migrate().await.unwrap();
    let region = walletctl_core::domain::Region::parse("SOUTH_EAST").unwrap();
    let direct = env
        .config
        .postgres
        .as_ref()
        .unwrap()
        .direct_url
        .clone()
        .unwrap();

    // Row N: inserted by a transaction that commits late.
    let mut late = sqlx::PgConnection::connect(direct.expose()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut late).await.unwrap();
    sqlx::query("INSERT INTO outbox (event_id, topic, key, payload, created_at_ms) VALUES ('late', 'balance_updated', 'x', '{}', 0)")
        .execute(&mut late)
        .await
        .unwrap();
    // Row N+1: committed now; relay B takes it and fails later.
    let u1 = walletctl_core::domain::UserId::parse(&user()).unwrap();
    store.create_wallet(&u1, &region, "test").await.unwrap();
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel::<Vec<i64>>();
    let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<()>();
    let b_store = store.clone();
    let relay_b = tokio::spawn(async move {
        b_store
            .relay_outbox(10, |events| async move {
                let _ = locked_tx.send(events.iter().map(|e| e.id).collect());
                let _ = fail_rx.await;
                Err::<(), _>("broker down")
            })
            .await
            .is_err()
    });
    let b_ids = locked_rx.await.unwrap();
    assert_eq!(b_ids.len(), 1, "B holds one row");
    // Row N becomes visible; row N+2 is added. Relay A gets N and N+2.
    sqlx::query("COMMIT").execute(&mut late).await.unwrap();
    let u2 = walletctl_core::domain::UserId::parse(&user()).unwrap();
    store.create_wallet(&u2, &region, "test").await.unwrap();
    let a_store = store.clone();
    let relay_a = tokio::spawn(async move {
        let mut seen = Vec::new();
        let n = a_store
            .relay_outbox(10, |events| {
                seen = events.iter().map(|e| e.id).collect();
                async { Ok::<(), &str>(()) }
            })
            .await
            .unwrap();
        (n, seen)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    fail_tx.send(()).unwrap();
    assert!(relay_b.await.unwrap(), "B's publish failed");
    let (n, a_ids) = relay_a.await.unwrap();
    assert_eq!(n, 2);
    assert!(
        a_ids[0] < b_ids[0] && b_ids[0] < a_ids[1],
        "A's rows surround B's: {a_ids:?} / {b_ids:?}"
    );
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        1,
        "B's row is still waiting to be sent"
    );
}
