use harness::conformance;
use serde_json::json;

use super::{amount, key, user};

conformance!(a_replay_returns_the_first_answer_and_charges_once, |env| {
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 100).await;
    let k = key();
    let path = format!("/wallet/{u}/deduct");
    let (s1, first) = app.post(&path, amount(40), Some(&k)).await;
    assert_eq!(
        (s1, first["replayed"].as_bool()),
        (200, Some(false)),
        "{first}"
    );
    let res = app
        .http
        .post(format!("{}{path}", app.wallet))
        .bearer_auth(&app.token)
        .header("Idempotency-Key", &k)
        .json(&amount(40))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let second: serde_json::Value = res.json().await.unwrap();
    assert_eq!(second["replayed"], true);
    assert_eq!(
        second["entry"], first["entry"],
        "the replay is the first answer"
    );
    assert_eq!(app.balance(&u).await, 60, "charged once");

    // The same key with a different body is refused and changes nothing.
    let (s, b) = app.post(&path, amount(41), Some(&k)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{b}"
    );
    let (s, b) = app
        .post(&format!("/wallet/{u}/credit"), amount(40), Some(&k))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{b}"
    );
    assert_eq!(app.balance(&u).await, 60);

    // A refusal is an answer too: replaying it refuses again, even after a top-up.
    let k2 = key();
    let (s, _) = app.post(&path, amount(500), Some(&k2)).await;
    assert_eq!(s, 409);
    app.post(&format!("/wallet/{u}/credit"), amount(1_000), Some(&key()))
        .await;
    let (s, b) = app.post(&path, amount(500), Some(&k2)).await;
    assert_eq!(
        (s, b["error"]["details"]["replayed"].as_bool()),
        (409, Some(true)),
        "{b}"
    );
    assert_eq!(app.balance(&u).await, 1_060);
    app.stop().await;
});

conformance!(concurrent_requests_with_one_key_apply_once, |env| {
    let app = std::sync::Arc::new(env.spawn().await);
    let u = user();
    app.wallet_with(&u, "SOUTH_WEST", 1_000).await;
    let k = key();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, u, k) = (app.clone(), u.clone(), k.clone());
            tokio::spawn(async move {
                app.post(
                    &format!("/wallet/{u}/deduct"),
                    json!({ "amount": 7 }),
                    Some(&k),
                )
                .await
            })
        })
        .collect();
    let mut applied = 0;
    let mut entries = std::collections::HashSet::new();
    for t in tasks {
        let (s, b) = t.await.unwrap();
        assert_eq!(s, 200, "{b}");
        if b["replayed"] == false {
            applied += 1;
        }
        entries.insert(b["entry"]["id"].as_i64().unwrap());
    }
    assert_eq!(applied, 1, "exactly one request applied");
    assert_eq!(entries.len(), 1, "every answer names the same entry");
    assert_eq!(app.balance(&u).await, 993);
});
