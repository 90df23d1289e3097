//! Under load: a full queue, a request past its deadline, one relay lease.

use std::time::Duration;

use harness::conformance;
use serde_json::Value;

use super::super::{amount, key, user};

conformance!(
    a_full_queue_refuses_cleanly_and_changes_nothing_it_refused,
    |env| {
        let mut config = env.config.clone();
        config.wallet.max_queue_per_user = 2;
        let app = harness::App::start(config).await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        let url = format!("{}/wallet/{u}/deduct", app.wallet);
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let req = app
                    .http
                    .post(url.clone())
                    .bearer_auth(&app.token)
                    .header("Idempotency-Key", key())
                    .json(&amount(1));
                tokio::spawn(async move {
                    let r = req.send().await.unwrap();
                    (
                        r.status().as_u16(),
                        r.headers().get("retry-after").is_some(),
                        r.json::<Value>().await.unwrap(),
                    )
                })
            })
            .collect();
        let (mut applied, mut refused) = (0, 0);
        for t in tasks {
            let (s, retry_after, b) = t.await.unwrap();
            match s {
                200 => applied += 1,
                503 => {
                    assert_eq!(b["error"]["code"], "overloaded", "{b}");
                    assert!(retry_after, "a full queue says when to retry");
                    refused += 1;
                }
                other => panic!("unexpected {other}: {b}"),
            }
        }
        assert!(
            refused > 0,
            "60 concurrent deductions overflow a queue of 2"
        );
        assert_eq!(
            app.balance(&u).await,
            10_000 - applied,
            "only accepted deductions moved money"
        );
        app.stop().await;
    }
);

conformance!(a_request_past_its_deadline_is_an_unknown_outcome, |env| {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The wallet is made before the short deadline applies: under load a
    // setup request could outlast 300 ms itself.
    let u = user();
    let setup = env.spawn().await;
    setup.wallet_with(&u, "SOUTH_EAST", 10).await;
    setup.stop().await;
    let mut config = env.config.clone();
    config.wallet.request_timeout_ms = 300;
    let app = harness::App::start(config).await;
    // A body that never finishes keeps the request inside its deadline's reach.
    let mut tcp = tokio::net::TcpStream::connect(app.wallet.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /wallet/{u}/deduct HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nIdempotency-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"amount\"",
        app.token,
        key()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf))
        .await
        .expect("an answer came")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("outcome_unknown"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after"),
        "{answer}"
    );
    app.stop().await;
    let store = env.backends().await.wallets;
    let user_id = walletctl_core::domain::UserId::parse(&u).unwrap();
    assert_eq!(
        store.ledger_sum(&user_id).await.unwrap(),
        (10, 10),
        "nothing was applied"
    );
});

// One relay publishes at a time: a second instance waits for the lease and
// takes over when the first gives it up.
conformance!(one_relay_holds_the_lease_at_a_time, |env| {
    let backends = env.backends().await;
    let store = &backends.outbox;
    backends.db.migrate().await.unwrap();
    assert!(store.take_relay_lease("a", 60_000).await.unwrap());
    assert!(
        store.take_relay_lease("a", 60_000).await.unwrap(),
        "the holder renews"
    );
    assert!(
        !store.take_relay_lease("b", 60_000).await.unwrap(),
        "b waits while a's lease runs"
    );
    store.release_relay_lease("a").await.unwrap();
    assert!(
        store.take_relay_lease("b", 1).await.unwrap(),
        "b takes over"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        store.take_relay_lease("a", 60_000).await.unwrap(),
        "an expired lease can be taken"
    );
});
