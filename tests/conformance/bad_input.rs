use harness::conformance;
use serde_json::{Value, json};

use super::{amount, key, user};

conformance!(
    bad_input_gets_a_4xx_in_one_shape_and_changes_nothing,
    |env| {
        let app = env.spawn().await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 500).await;
        let deduct = format!("{}/wallet/{u}/deduct", app.wallet);
        let (_, history_before) = app
            .get(&format!("/wallet/{u}/history?consistency=strong"))
            .await;

        let raw = |body: &'static str| {
            app.http
                .post(&deduct)
                .bearer_auth(&app.token)
                .header("Idempotency-Key", key())
                .header("content-type", "application/json")
                .body(body)
        };
        let json_req = |body: Value| {
            app.http
                .post(&deduct)
                .bearer_auth(&app.token)
                .header("Idempotency-Key", key())
                .json(&body)
        };

        let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
            (
                "malformed json",
                raw("{\"amount\": 5"),
                400,
                "malformed_json",
            ),
            ("not an object", raw("[1,2]"), 422, "invalid_request"),
            ("zero", json_req(amount(0)), 422, "invalid_request"),
            ("negative", json_req(amount(-5)), 422, "invalid_request"),
            (
                "huge",
                json_req(json!({ "amount": 1_000_000_000_000_000_001_i64 })),
                422,
                "invalid_request",
            ),
            (
                "beyond i64",
                raw("{\"amount\": 99999999999999999999999}"),
                422,
                "invalid_request",
            ),
            ("float", raw("{\"amount\": 1.5}"), 422, "invalid_request"),
            (
                "string amount",
                json_req(json!({ "amount": "5" })),
                422,
                "invalid_request",
            ),
            (
                "unknown field",
                json_req(json!({ "amount": 5, "currency": "USD" })),
                422,
                "invalid_request",
            ),
            (
                "no content type",
                app.http
                    .post(&deduct)
                    .bearer_auth(&app.token)
                    .header("Idempotency-Key", key())
                    .body("{\"amount\":5}"),
                415,
                "unsupported_media_type",
            ),
            (
                "no idempotency key",
                app.http
                    .post(&deduct)
                    .bearer_auth(&app.token)
                    .json(&amount(5)),
                400,
                "missing_idempotency_key",
            ),
            (
                "no token",
                app.http
                    .post(&deduct)
                    .header("Idempotency-Key", key())
                    .json(&amount(5)),
                401,
                "unauthorized",
            ),
            (
                "bad token",
                app.http
                    .post(&deduct)
                    .bearer_auth("wct_nope")
                    .header("Idempotency-Key", key())
                    .json(&amount(5)),
                401,
                "unauthorized",
            ),
            (
                "basic auth",
                app.http
                    .post(&deduct)
                    .basic_auth("a", Some("b"))
                    .header("Idempotency-Key", key())
                    .json(&amount(5)),
                401,
                "unauthorized",
            ),
            (
                "too large",
                raw(Box::leak(
                    format!("{{\"amount\":5,\"reason\":\"{}\"}}", "x".repeat(70_000))
                        .into_boxed_str(),
                )),
                413,
                "payload_too_large",
            ),
            (
                "long reason",
                json_req(json!({ "amount": 5, "reason": "x".repeat(501) })),
                422,
                "invalid_request",
            ),
            (
                "wrong method",
                app.http.put(&deduct).bearer_auth(&app.token),
                405,
                "method_not_allowed",
            ),
        ];
        for (name, req, status, code) in cases {
            let (s, b) = app.send(req).await;
            assert_eq!(s, status, "{name}: {b}");
            assert_eq!(b["error"]["code"].as_str(), Some(code), "{name}: {b}");
            assert!(
                b["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{name}: {b}"
            );
        }

        // Unknown and malformed users.
        let (s, b) = app
            .post("/wallet/nobody-here/deduct", amount(5), Some(&key()))
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (404, Some("wallet_not_found")),
            "{b}"
        );
        let (s, b) = app.get("/wallet/nobody-here/balance").await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (404, Some("wallet_not_found")),
            "{b}"
        );
        let (s, b) = app.get("/wallet/bad%20id/balance").await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{b}"
        );
        let (s, b) = app
            .post(
                &format!("/wallet/{}", user()),
                json!({ "region": "south east" }),
                None,
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("invalid_request")),
            "{b}"
        );
        let (s, b) = app
            .post(
                &format!("/wallet/{u}/adjust"),
                json!({ "amount": 5, "reason": "  " }),
                Some(&key()),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("invalid_request")),
            "{b}"
        );
        let (s, b) = app
            .post(
                &format!("/wallet/{u}/adjust"),
                json!({ "amount": 5 }),
                Some(&key()),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("invalid_request")),
            "{b}"
        );

        // Scopes: a read-only token reads but cannot move money.
        let backends = env.backends().await;
        let reader = backends
            .tokens
            .create_token(
                "reader",
                &walletctl_core::platform::auth::Scopes::parse("read").unwrap(),
                "test",
            )
            .await
            .unwrap();
        let (s, _) = app
            .send(
                app.http
                    .get(format!("{}/wallet/{u}/balance", app.wallet))
                    .bearer_auth(&reader.secret),
            )
            .await;
        assert_eq!(s, 200);
        for action in ["deduct", "credit", "adjust"] {
            let req = app
                .http
                .post(format!("{}/wallet/{u}/{action}", app.wallet))
                .bearer_auth(&reader.secret)
                .header("Idempotency-Key", key())
                .json(&json!({ "amount": 5, "reason": "r" }));
            let (s, b) = app.send(req).await;
            assert_eq!(
                (s, b["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{action}: {b}"
            );
        }
        // A revoked token stops working (the cache only holds known-good tokens briefly).
        backends
            .tokens
            .revoke_token("reader", "test")
            .await
            .unwrap();

        assert_eq!(app.balance(&u).await, 500, "nothing changed");
        let (_, history_after) = app
            .get(&format!("/wallet/{u}/history?consistency=strong"))
            .await;
        assert_eq!(history_before, history_after, "no ledger entry was written");
        app.stop().await;
    }
);
