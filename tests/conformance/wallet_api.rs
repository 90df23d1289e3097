use harness::conformance;
use serde_json::json;

use super::{amount, key, user};

conformance!(create_credit_deduct_and_history_add_up, |env| {
    let app = env.spawn().await;
    let u = user();
    let (s, b) = app
        .post(
            &format!("/wallet/{u}"),
            json!({ "region": "SOUTH_EAST" }),
            None,
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (b["balance"].as_i64(), b["version"].as_i64()),
        (Some(0), Some(0))
    );
    let (s, b) = app
        .post(
            &format!("/wallet/{u}"),
            json!({ "region": "SOUTH_EAST" }),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("wallet_exists"))
    );

    let (s, b) = app
        .post(&format!("/wallet/{u}/credit"), amount(1_000), Some(&key()))
        .await;
    assert_eq!((s, b["balance"].as_i64()), (200, Some(1_000)), "{b}");
    let (s, b) = app
        .post(
            &format!("/wallet/{u}/deduct"),
            json!({ "amount": 250, "reason": "ad spend", "reference": "order-7" }),
            Some(&key()),
        )
        .await;
    assert_eq!((s, b["balance"].as_i64()), (200, Some(750)), "{b}");
    assert_eq!(b["entry"]["amount"], -250);
    assert_eq!(b["entry"]["reference"], "order-7");
    assert_eq!(b["entry"]["actor"], "operator");

    let (s, b) = app
        .post(&format!("/wallet/{u}/deduct"), amount(751), Some(&key()))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("insufficient_funds")),
        "{b}"
    );
    assert_eq!(b["error"]["details"]["balance"], 750);
    assert_eq!(
        app.balance(&u).await,
        750,
        "a refused deduction changes nothing"
    );

    let (s, b) = app
        .post(
            &format!("/wallet/{u}/adjust"),
            json!({ "amount": -50, "reason": "chargeback" }),
            Some(&key()),
        )
        .await;
    assert_eq!((s, b["balance"].as_i64()), (200, Some(700)), "{b}");
    assert_eq!(b["entry"]["kind"], "adjust");

    // History: newest first, paginated, and it sums to the balance.
    let (s, page1) = app
        .get(&format!("/wallet/{u}/history?limit=2&consistency=strong"))
        .await;
    assert_eq!(s, 200, "{page1}");
    let entries = page1["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["kind"], "adjust");
    let before = page1["next_before"].as_i64().expect("a next page");
    let (_, page2) = app
        .get(&format!(
            "/wallet/{u}/history?limit=2&before={before}&consistency=strong"
        ))
        .await;
    let rest = page2["entries"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert!(page2["next_before"].is_null());
    let sum: i64 = entries
        .iter()
        .chain(rest)
        .map(|e| e["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 700);

    let backends = env.backends().await;
    let (ledger, balance) = backends
        .wallets
        .ledger_sum(&walletctl_core::domain::UserId::parse(&u).unwrap())
        .await
        .unwrap();
    assert_eq!((ledger, balance), (700, 700));
    app.stop().await;
});

conformance!(credits_stop_at_the_balance_limit, |env| {
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_WEST", walletctl_core::domain::MAX_BALANCE)
        .await;
    let (s, b) = app
        .post(&format!("/wallet/{u}/credit"), amount(1), Some(&key()))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("balance_limit_exceeded")),
        "{b}"
    );
    assert_eq!(app.balance(&u).await, walletctl_core::domain::MAX_BALANCE);
    app.stop().await;
});
