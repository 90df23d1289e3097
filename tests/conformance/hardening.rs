//! Abuse and failure paths: keys belong to their caller, bad input changes
//! nothing, scopes do not leak, limits degrade cleanly, and the database
//! itself refuses what the code promises never to do.

use std::time::Duration;

use harness::{Mode, TestEnv, conformance};
use serde_json::{Value, json};
use walletctl_core::platform::auth::Scopes;

use super::{amount, key, user};

/// A second token with `scopes`, created as an operator would.
async fn token(env: &TestEnv, name: &str, scopes: &str) -> String {
    env.backends()
        .await
        .store
        .create_token(name, &Scopes::parse(scopes).unwrap(), "test")
        .await
        .unwrap()
        .secret
}

async fn post_as(
    app: &harness::App,
    token: &str,
    path: &str,
    body: Value,
    key: &str,
) -> (u16, Value) {
    app.send(
        app.http
            .post(format!("{}{path}", app.wallet))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body),
    )
    .await
}

conformance!(idempotency_keys_belong_to_the_caller, |env| {
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 1_000).await;
    let other = token(&env, "shop-b", "deduct,read").await;
    let k = key();
    let path = format!("/wallet/{u}/deduct");
    let (s, a) = app.post(&path, amount(100), Some(&k)).await;
    assert_eq!(s, 200, "{a}");
    // The same key from another caller is another request: applied, not replayed.
    let (s, b) = post_as(&app, &other, &path, amount(100), &k).await;
    assert_eq!((s, b["replayed"].as_bool()), (200, Some(false)), "{b}");
    assert_ne!(a["entry"]["id"], b["entry"]["id"]);
    // Neither can block the other: another body under B's key is B's mismatch only.
    let (s, c) = post_as(&app, &other, &path, amount(7), &k).await;
    assert_eq!(
        (s, c["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // And A's retry still replays A's answer.
    let (s, again) = app.post(&path, amount(100), Some(&k)).await;
    assert_eq!((s, again["replayed"].as_bool()), (200, Some(true)));
    assert_eq!(again["entry"]["id"], a["entry"]["id"]);
    assert_eq!(app.balance(&u).await, 800, "two deductions, no more");
    app.stop().await;
});

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

conformance!(a_deduct_only_token_does_not_learn_the_balance, |env| {
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 4_321).await;
    let deducter = token(&env, "deduct-only", "deduct").await;
    let (s, b) = post_as(
        &app,
        &deducter,
        &format!("/wallet/{u}/deduct"),
        amount(10_000),
        &key(),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("insufficient_funds"))
    );
    assert!(
        !b.to_string().contains("4321"),
        "the refusal leaks the balance: {b}"
    );
    // A token that may read sees it.
    let (_, b) = app
        .post(&format!("/wallet/{u}/deduct"), amount(10_000), Some(&key()))
        .await;
    assert_eq!(b["error"]["details"]["balance"], 4_321);
    app.stop().await;
});

conformance!(token_creation_and_revocation_are_audited, |env| {
    let _app = env.spawn().await;
    let backends = env.backends().await;
    token(&env, "audited", "read").await;
    assert!(backends.store.revoke_token("audited", "ops").await.unwrap());
    let entries = backends
        .store
        .audit_entries(Some("audited"), 10)
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(actions, [("token.revoke", "ops"), ("token.create", "test")]);
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

/// A flood of bad tokens is answered without asking the primary: malformed
/// ones by their shape, a well-formed unknown one once, then from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_bad_tokens_leaves_the_primary_alone() {
    use sqlx::Connection;
    let env = TestEnv::new(Mode::Distributed).await;
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 1).await;
    let pg = env.config.postgres.as_ref().unwrap();
    let mut admin = sqlx::PgConnection::connect(pg.direct_url.as_ref().unwrap().expose())
        .await
        .unwrap();
    // Every token lookup reads api_tokens; nothing else on the request path does.
    let xacts = || "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'api_tokens'";
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut admin)
        .await
        .unwrap();
    let unknown = format!("wct_{}", "0".repeat(64));
    let bad: Vec<String> = (0..300)
        .map(|i| match i % 3 {
            0 => "nonsense".to_owned(),
            1 => format!("wct_{}", "z".repeat(64)),
            _ => unknown.clone(),
        })
        .collect();
    // Let the statistics of the set-up settle, then count transactions around the flood.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let before: i64 = sqlx::query_scalar(xacts())
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let tasks: Vec<_> = bad
        .into_iter()
        .map(|t| {
            let req = app
                .http
                .get(format!("{}/wallet/{u}/balance", app.wallet))
                .bearer_auth(t);
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut admin)
        .await
        .unwrap();
    let after: i64 = sqlx::query_scalar(xacts())
        .fetch_one(&mut admin)
        .await
        .unwrap();
    // Our own two reads of the statistics, plus one lookup of the unknown token.
    assert!(
        after - before <= 4,
        "300 bad tokens cost {} transactions on the primary",
        after - before
    );
    app.stop().await;
}

/// The app role cannot rewrite history, and the owner is stopped by the
/// append-only triggers; the app role carries statement and lock timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_refuses_to_change_the_ledger() {
    use sqlx::Connection;
    let env = TestEnv::new(Mode::Distributed).await;
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 50).await;
    let pg = env.config.postgres.as_ref().unwrap();
    // The app role, straight to the primary: this is about the role's
    // rights, not about PgBouncer.
    let direct = pg.direct_url.as_ref().unwrap().expose();
    let as_app_url = direct.replace("walletctl_owner", pg.app_role.as_deref().unwrap());
    assert_ne!(
        as_app_url, direct,
        "the stack's direct_url names the owner role"
    );
    let mut as_app = sqlx::PgConnection::connect(&as_app_url).await.unwrap();
    for sql in [
        "UPDATE ledger_entries SET amount = 1000000",
        "DELETE FROM ledger_entries",
        "UPDATE audit_log SET actor = 'someone else'",
        "UPDATE wallets SET region = 'ELSEWHERE'",
        "UPDATE api_tokens SET revoked_at_ms = NULL",
    ] {
        // Through PgBouncer (transaction mode): unprepared, or another
        // client's prepared statement can answer instead.
        let e = sqlx::query(sql)
            .persistent(false)
            .execute(&mut as_app)
            .await
            .expect_err(sql);
        assert!(e.to_string().contains("permission denied"), "{sql}: {e}");
    }
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .persistent(false)
        .fetch_one(&mut as_app)
        .await
        .unwrap();
    assert_eq!(timeout, "5s");
    let mut as_owner = sqlx::PgConnection::connect(pg.direct_url.as_ref().unwrap().expose())
        .await
        .unwrap();
    for sql in [
        "UPDATE ledger_entries SET amount = 1",
        "DELETE FROM audit_log",
        "TRUNCATE ledger_entries CASCADE",
    ] {
        let e = sqlx::query(sql)
            .execute(&mut as_owner)
            .await
            .expect_err(sql);
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(app.balance(&u).await, 50);
    app.stop().await;
}

// One relay publishes at a time: a second instance waits for the lease and
// takes over when the first gives it up.
conformance!(one_relay_holds_the_lease_at_a_time, |env| {
    let backends = env.backends().await;
    let store = &backends.store;
    store.migrate().await.unwrap();
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
    let store = env.backends().await.store;
    let user_id = walletctl_core::domain::UserId::parse(&u).unwrap();
    assert_eq!(
        store.ledger_sum(&user_id).await.unwrap(),
        (10, 10),
        "nothing was applied"
    );
});

fn money(
    user: &str,
    delta: i64,
    key: &str,
    actor: &str,
    reason: &str,
) -> walletctl_core::wallet::MoneyCommand {
    walletctl_core::wallet::MoneyCommand {
        user: walletctl_core::domain::UserId::parse(user).unwrap(),
        kind: if delta < 0 {
            walletctl_core::wallet::EntryKind::Deduct
        } else {
            walletctl_core::wallet::EntryKind::Credit
        },
        delta,
        reason: Some(reason.to_owned()),
        reference: None,
        key: walletctl_core::domain::IdempotencyKey::parse(key).unwrap(),
        actor: actor.to_owned(),
        fence: None,
    }
}

/// A command that makes PostgreSQL fail the whole batch (a NUL byte, which
/// its text type refuses; the HTTP edge refuses it first, the store must
/// not depend on that) does not fail the other commands of its batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_bad_command_does_not_fail_its_batch() {
    let env = TestEnv::new(Mode::Distributed).await;
    let backends = env.backends().await;
    backends.store.migrate().await.unwrap();
    let u = user();
    let region = walletctl_core::domain::Region::parse("SOUTH_EAST").unwrap();
    backends
        .store
        .create_wallet(
            &walletctl_core::domain::UserId::parse(&u).unwrap(),
            &region,
            "test",
        )
        .await
        .unwrap();
    let batch = [
        money(&u, 5, "a", "shop", "ok"),
        money(&u, 7, "b", "shop", "bad\u{0}byte"),
        money(&u, -2, "c", "shop", "ok"),
    ];
    assert!(
        backends.store.apply_batch(&batch).await.is_err(),
        "PostgreSQL fails the whole batch (else this test shows nothing)"
    );
    let out = backends.store.apply_batch_or_each(&batch).await;
    assert_eq!(
        out[0]
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap()
            .balance_after,
        5
    );
    assert!(out[1].is_err(), "the bad command gets its own error");
    assert_eq!(
        out[2]
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap()
            .balance_after,
        3
    );
    assert_eq!(
        backends
            .store
            .ledger_sum(&walletctl_core::domain::UserId::parse(&u).unwrap())
            .await
            .unwrap(),
        (3, 3)
    );
}

/// Two users' batches by one caller, with the same keys in opposite orders,
/// run at once: keys are claimed in sorted order, so neither waits on the
/// other in a cycle (a deadlock would surface as outcome_unknown).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_claims_never_deadlock_across_users() {
    let env = TestEnv::new(Mode::Distributed).await;
    let backends = env.backends().await;
    let store = backends.store.clone();
    store.migrate().await.unwrap();
    let region = walletctl_core::domain::Region::parse("SOUTH_EAST").unwrap();
    let (a, b) = (user(), user());
    for u in [&a, &b] {
        store
            .create_wallet(
                &walletctl_core::domain::UserId::parse(u).unwrap(),
                &region,
                "test",
            )
            .await
            .unwrap();
    }
    for round in 0..20 {
        let (k1, k2) = (format!("r{round}-x"), format!("r{round}-y"));
        let first = [
            money(&a, 1, &k1, "shop", "ok"),
            money(&a, 1, &k2, "shop", "ok"),
        ];
        let second = [
            money(&b, 1, &k2, "shop", "ok"),
            money(&b, 1, &k1, "shop", "ok"),
        ];
        let (s1, s2) = (store.clone(), store.clone());
        let (x, y) = tokio::join!(
            tokio::spawn(async move { s1.apply_batch(&first).await }),
            tokio::spawn(async move { s2.apply_batch(&second).await })
        );
        for r in x.unwrap().unwrap().into_iter().chain(y.unwrap().unwrap()) {
            match r {
                Ok(_) | Err(walletctl_core::platform::sql::StoreError::IdempotencyKeyReused) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
    }
}

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

/// A group commit that one user's bad command fails is retried user by
/// user, then command by command: the other users' commands are applied and
/// answered as if alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_users_bad_command_does_not_fail_the_group() {
    let env = TestEnv::new(Mode::Distributed).await;
    let backends = env.backends().await;
    backends.store.migrate().await.unwrap();
    let region = walletctl_core::domain::Region::parse("SOUTH_EAST").unwrap();
    let (good, bad) = (user(), user());
    for u in [&good, &bad] {
        backends
            .store
            .create_wallet(
                &walletctl_core::domain::UserId::parse(u).unwrap(),
                &region,
                "test",
            )
            .await
            .unwrap();
    }
    let group = vec![
        vec![
            money(&bad, 7, "x", "shop", "bad\u{0}byte"),
            money(&bad, 3, "y", "shop", "ok"),
        ],
        vec![
            money(&good, 5, "a", "shop", "ok"),
            money(&good, -2, "b", "shop", "ok"),
        ],
    ];
    assert!(
        backends.store.apply_group(&group).await.is_err(),
        "PostgreSQL fails the whole group (else this test shows nothing)"
    );
    let out = backends.store.apply_group_or_each(&group).await;
    let after = |r: &Result<walletctl_core::wallet::Outcome, _>| {
        r.as_ref().unwrap().result.as_ref().unwrap().balance_after
    };
    assert!(out[0][0].is_err(), "the bad command gets its own error");
    assert_eq!(after(&out[0][1]), 3);
    assert_eq!((after(&out[1][0]), after(&out[1][1])), (5, 3));
    for (u, want) in [(&good, 3), (&bad, 3)] {
        assert_eq!(
            backends
                .store
                .ledger_sum(&walletctl_core::domain::UserId::parse(u).unwrap())
                .await
                .unwrap(),
            (want, want)
        );
    }
}

// Many users' deductions at once through the service commit together and
// each comes out exactly as if alone.
conformance!(
    a_group_commit_decides_each_users_commands_on_their_own,
    |env| {
        let app = env.spawn().await;
        let users: Vec<String> = (0..12).map(|_| user()).collect();
        for u in &users {
            app.wallet_with(u, "SOUTH_EAST", 100).await;
        }
        // Every user: 60 + 60 at once; exactly one is refused per user.
        let app_ref = &app;
        let sends = users.iter().flat_map(|u| {
            (0..2).map(move |i| {
                let app = app_ref;
                async move {
                    app.post(
                        &format!("/wallet/{u}/deduct"),
                        super::amount(60),
                        Some(&format!("g{i}-{u}")),
                    )
                    .await
                    .0
                }
            })
        });
        let statuses = futures::future::join_all(sends).await;
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 12);
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 12);
        for u in &users {
            assert_eq!(app.balance(u).await, 40);
        }
        app.stop().await;
    }
);
