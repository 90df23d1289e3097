//! The money path's batches and groups: each command decided on its own,
//! no deadlock, and a ledger the database itself guards.

use harness::{Mode, TestEnv, conformance};

use super::super::{amount, user};
use super::*;

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

/// A command that makes PostgreSQL fail the whole batch (a NUL byte, which
/// its text type refuses; the HTTP edge refuses it first, the store must
/// not depend on that) does not fail the other commands of its batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_bad_command_does_not_fail_its_batch() {
    let env = TestEnv::new(Mode::Distributed).await;
    let backends = env.backends().await;
    backends.db.migrate().await.unwrap();
    let u = user();
    let region = walletctl_core::domain::Region::parse("SOUTH_EAST").unwrap();
    backends
        .wallets
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
        backends.wallets.apply_batch(&batch).await.is_err(),
        "PostgreSQL fails the whole batch (else this test shows nothing)"
    );
    let out = backends.wallets.apply_batch_or_each(&batch).await;
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
            .wallets
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
    let store = backends.wallets.clone();
    backends.db.migrate().await.unwrap();
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

/// A group commit that one user's bad command fails is retried user by
/// user, then command by command: the other users' commands are applied and
/// answered as if alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_users_bad_command_does_not_fail_the_group() {
    let env = TestEnv::new(Mode::Distributed).await;
    let backends = env.backends().await;
    backends.db.migrate().await.unwrap();
    let region = walletctl_core::domain::Region::parse("SOUTH_EAST").unwrap();
    let (good, bad) = (user(), user());
    for u in [&good, &bad] {
        backends
            .wallets
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
        backends.wallets.apply_group(&group).await.is_err(),
        "PostgreSQL fails the whole group (else this test shows nothing)"
    );
    let out = backends.wallets.apply_group_or_each(&group).await;
    let after = |r: &Result<walletctl_core::wallet::Outcome, _>| {
        r.as_ref().unwrap().result.as_ref().unwrap().balance_after
    };
    assert!(out[0][0].is_err(), "the bad command gets its own error");
    assert_eq!(after(&out[0][1]), 3);
    assert_eq!((after(&out[1][0]), after(&out[1][1])), (5, 3));
    for (u, want) in [(&good, 3), (&bad, 3)] {
        assert_eq!(
            backends
                .wallets
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
