//! Callers and their grants: keys per caller, scopes, audited tokens, and
//! a flood of bad tokens.

use std::time::Duration;

use harness::{Mode, TestEnv, conformance};

use super::super::{amount, key, user};
use super::*;

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
    assert!(
        backends
            .tokens
            .revoke_token("audited", "ops")
            .await
            .unwrap()
    );
    let entries = backends
        .audit
        .audit_entries(Some("audited"), 10)
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(actions, [("token.revoke", "ops"), ("token.create", "test")]);
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
