//! Hostile input: control characters, invented methods, slow headers,
//! arrays for objects.

use std::time::Duration;

use harness::conformance;
use serde_json::json;

use super::super::{key, user};

conformance!(control_characters_and_bad_queries_change_nothing, |env| {
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 500).await;
    for body in [
        json!({"amount": 5, "reason": "a\u{0}b"}),
        json!({"amount": 5, "reference": "line\nbreak"}),
    ] {
        let (s, b) = app
            .post(&format!("/wallet/{u}/deduct"), body, Some(&key()))
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("invalid_request")),
            "{b}"
        );
    }
    assert_eq!(app.balance(&u).await, 500);
    let (s, b) = app
        .get(&format!("/wallet/{u}/balance?consistancy=strong"))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{b}"
    );
    for limit in ["0", "501", "2147483648", "-1"] {
        let (s, b) = app.get(&format!("/wallet/{u}/history?limit={limit}")).await;
        assert_eq!(s, 400, "limit={limit}: {b}");
    }
    let (s, _) = app.get(&format!("/wallet/{u}/history?limit=500")).await;
    assert_eq!(s, 200);
    app.stop().await;
});

conformance!(an_invented_method_creates_no_metrics_series, |env| {
    let app = env.spawn().await;
    let method = reqwest::Method::from_bytes(b"BREWCOFFEE").unwrap();
    for _ in 0..3 {
        let (s, _) = app
            .send(
                app.http
                    .request(method.clone(), format!("{}/healthz", app.wallet)),
            )
            .await;
        assert_eq!(s, 405);
    }
    let metrics = app.metrics().await;
    assert!(!metrics.contains("BREWCOFFEE"), "the method became a label");
    assert!(metrics.contains(r#"method="other""#));
    app.stop().await;
});

conformance!(a_client_that_sends_headers_slowly_is_cut_off, |env| {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = env.spawn().await;
    let addr = app.wallet.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finish the headers: the server must close the connection by itself.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was still open after 30 s");
    app.stop().await;
});

conformance!(arrays_are_not_objects, |env| {
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 100).await;
    // serde would read a struct from an array by position; the API does not.
    let (s, b) = app
        .send(
            app.http
                .post(format!("{}/wallet/{u}/deduct", app.wallet))
                .bearer_auth(&app.token)
                .header("Idempotency-Key", key())
                .json(&json!([5, null, null])),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("invalid_request")),
        "{b}"
    );
    assert_eq!(app.balance(&u).await, 100);
    let body = json!({
        "campaign_id": "arr-1", "user_id": u, "name": "n",
        "pricing": ["cpc", 1], "budget": {"lifetime": 10, "daily": null},
        "creative": {"title": "t", "asset_url": "https://a.example/x", "landing_url": "https://a.example/"},
        "schedule": [null, null]
    });
    let (s, _) = app
        .send(
            app.http
                .post(format!("{}/campaigns", app.ads))
                .bearer_auth(&app.token)
                .json(&body),
        )
        .await;
    assert_eq!(s, 422);
    app.stop().await;
});
