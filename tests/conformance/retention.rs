//! Retention removes exactly what is past its window: old idempotency keys
//! (a retry after the window is a new request), published outbox rows and
//! embedded events; nothing newer, and never the ledger or the audit trail.

use std::time::Duration;

use harness::{App, conformance};
use walletctl_core::ops::retention::{Cutoffs, gc};

use super::{amount, user};

async fn drained(backends: &walletctl_core::Backends) {
    for _ in 0..600 {
        if backends.outbox.outbox_backlog().await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the outbox never drained");
}

async fn credit(app: &App, u: &str, key: &str) -> serde_json::Value {
    let (s, b) = app
        .post(&format!("/wallet/{u}/credit"), amount(10), Some(key))
        .await;
    assert_eq!(s, 200, "{b}");
    b
}

conformance!(retention_removes_exactly_what_is_past_its_window, |env| {
    let app = env.spawn().await;
    let backends = env.backends().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 0).await;
    let old: Vec<String> = (0..3).map(|i| format!("old-{i}-{u}")).collect();
    for k in &old {
        credit(&app, &u, k).await;
    }
    drained(&backends).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cutoff = walletctl_core::now_ms();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let new: Vec<String> = (0..2).map(|i| format!("new-{i}-{u}")).collect();
    for k in &new {
        credit(&app, &u, k).await;
    }
    drained(&backends).await;
    let everything = Cutoffs {
        idempotency_keys: i64::MAX,
        outbox: i64::MAX,
        event_log: i64::MAX,
    };
    let at = Cutoffs {
        idempotency_keys: cutoff,
        outbox: cutoff,
        event_log: cutoff,
    };
    let none = |_: u64| {};
    let total = gc(&backends, everything, 2, true, &none).await.unwrap();
    let (_, before) = app
        .get(&format!("/wallet/{u}/history?limit=100&consistency=strong"))
        .await;
    let entries = before["entries"].as_array().unwrap().len();
    assert_eq!(entries, 5);

    // Past the window: the three old keys; their outbox rows (and the
    // wallet's creation event); in the embedded log, those events.
    let past = gc(&backends, at, 2, true, &none).await.unwrap();
    assert_eq!(past.idempotency_keys, 3);
    assert_eq!(past.outbox, 4, "three credits and the wallet's creation");
    let removed = gc(&backends, at, 2, false, &none).await.unwrap();
    assert_eq!(removed.idempotency_keys, past.idempotency_keys);
    assert_eq!(removed.outbox, past.outbox);
    assert_eq!(removed.event_log, past.event_log);
    if let Some(n) = past.event_log {
        assert!(n >= 4, "the old events are in the embedded log: {n}");
    }
    // Nothing else: what remains is exactly what was newer.
    let left = gc(&backends, everything, 2, true, &none).await.unwrap();
    assert_eq!(left.idempotency_keys, total.idempotency_keys - 3);
    assert_eq!(left.outbox, total.outbox - 4);
    assert_eq!(
        gc(&backends, at, 2, true, &none)
            .await
            .unwrap()
            .idempotency_keys,
        0
    );
    // The ledger and the audit trail are untouched.
    let (_, after) = app
        .get(&format!("/wallet/{u}/history?limit=100&consistency=strong"))
        .await;
    assert_eq!(after["entries"].as_array().unwrap().len(), entries);
    let (sum, balance) = backends
        .wallets
        .ledger_sum(&walletctl_core::domain::UserId::parse(&u).unwrap())
        .await
        .unwrap();
    assert_eq!((sum, balance), (50, 50));
    let audit = backends.audit.audit_entries(Some(&u), 10).await.unwrap();
    assert_eq!(audit.len(), 1, "the wallet's creation is still audited");
    // A newer key still replays; an old one is a new request now.
    let again = credit(&app, &u, &new[0]).await;
    assert_eq!(again["replayed"], true);
    let fresh = credit(&app, &u, &old[0]).await;
    assert_eq!(fresh["replayed"], false);
    assert_eq!(app.balance(&u).await, 60);
    app.stop().await;
});

conformance!(
    gc_never_removes_an_event_a_consumer_has_not_committed,
    |env| {
        use walletctl_core::events::{Record, topic};
        let backends = env.backends().await;
        backends.db.migrate().await.unwrap();
        backends.events.ensure_topics().await.unwrap();
        let key = user();
        // A group joins, then five events arrive.
        let group = format!("gc-{key}");
        let mut sub = backends
            .events
            .subscribe(&group, topic::CAMPAIGN_CREATED_DEAD)
            .await
            .unwrap();
        for i in 0..5 {
            let payload = format!("{{\"n\":{i}}}");
            let record = Record {
                topic: topic::CAMPAIGN_CREATED_DEAD,
                key: &key,
                payload: &payload,
            };
            backends.events.publish(&[record]).await.unwrap();
        }
        // It reads and commits two of them.
        let mut read = Vec::new();
        while read.len() < 2 {
            let m = tokio::time::timeout(Duration::from_secs(30), sub.next())
                .await
                .expect("an event")
                .unwrap();
            if m.key == key {
                read.push(m);
            }
        }
        sub.commit(&read[1]).await.unwrap();
        let all = Cutoffs {
            idempotency_keys: 0,
            outbox: 0,
            event_log: i64::MAX,
        };
        let none = |_: u64| {};
        let report = gc(&backends, all, 2, false, &none).await.unwrap();
        match env.mode {
            // Kafka keeps its own retention: nothing to say.
            harness::Mode::Distributed => {
                assert_eq!((report.event_log, report.event_log_kept), (None, None))
            }
            harness::Mode::Embedded => {
                assert_eq!(report.event_log_kept, Some(3), "{report:?}");
                assert!(report.event_log.is_some_and(|n| n >= 2), "{report:?}");
            }
        }
        // What it had not committed is all still there, in order.
        let mut rest = Vec::new();
        while rest.len() < 3 {
            let m = tokio::time::timeout(Duration::from_secs(30), sub.next())
                .await
                .expect("an uncommitted event survived gc")
                .unwrap();
            if m.key == key {
                rest.push(m.payload);
            }
        }
        assert_eq!(rest, ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]);
    }
);
