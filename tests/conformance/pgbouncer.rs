//! PgBouncer 1.18 in transaction mode hands a client's statements to any
//! server connection, so sqlx's named prepared statements can bind to another
//! client's statement and return a wrong answer. The store keeps every
//! statement unprepared and inside a transaction; this proves it under load.

use std::sync::Arc;

use harness::{Mode, TestEnv};
use walletctl_core::domain::{IdempotencyKey, Region, UserId};
use walletctl_core::platform::auth::Scopes;
use walletctl_core::platform::sql::ReadConsistency;
use walletctl_core::wallet::{EntryKind, MoneyCommand};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mixed_queries_through_pgbouncer_all_answer_right() {
    let env = TestEnv::new(Mode::Distributed).await;
    let url = env
        .config
        .postgres
        .as_ref()
        .unwrap()
        .url
        .expose()
        .to_owned();
    assert!(
        url.contains(":56432/"),
        "this test must go through PgBouncer: {url}"
    );
    let backends = env.backends().await;
    backends.db.migrate().await.unwrap();
    let store = Arc::new(backends.wallets.clone());
    let tokens = backends.tokens.clone();
    let token = tokens
        .create_token("pgb", &Scopes::all(), "test")
        .await
        .unwrap();

    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (store, tokens, secret) = (store.clone(), tokens.clone(), token.secret.clone());
            tokio::spawn(async move {
                let user = UserId::parse(&format!("pgb{t}")).unwrap();
                let region = Region::parse(if t % 2 == 0 {
                    "SOUTH_EAST"
                } else {
                    "SOUTH_WEST"
                })
                .unwrap();
                store.create_wallet(&user, &region, "test").await.unwrap();
                let mut expected = 0i64;
                let mut checked = 0;
                for i in 0..50 {
                    // Each task credits its own distinct amounts, so any answer
                    // that came from another client's statement shows.
                    let delta = (t as i64 + 1) * 1_000 + i;
                    let cmd = MoneyCommand {
                        user: user.clone(),
                        kind: EntryKind::Credit,
                        delta,
                        reason: None,
                        reference: Some(format!("{t}-{i}")),
                        key: IdempotencyKey::parse(&format!("pgb-{t}-{i}")).unwrap(),
                        actor: "test".into(),
                        fence: None,
                    };
                    let out = store.apply(&cmd).await.unwrap();
                    expected += delta;
                    let entry = out.result.unwrap();
                    assert_eq!(
                        (entry.user_id.as_str(), entry.balance_after),
                        (user.as_str(), expected)
                    );
                    let (sum, balance) = store.ledger_sum(&user).await.unwrap();
                    assert_eq!((sum, balance), (expected, expected), "task {t} op {i}");
                    let info = tokens.verify_token(&secret).await.unwrap().unwrap();
                    assert_eq!(info.name, "pgb");
                    // And a read on the synchronous standby agrees.
                    let w = store.wallet(&user, ReadConsistency::Strong).await.unwrap();
                    assert_eq!(
                        (w.wallet.user_id.as_str(), w.wallet.balance),
                        (user.as_str(), expected)
                    );
                    checked += 4;
                }
                checked
            })
        })
        .collect();
    // Each task asserts every answer it gets; here only that all of them ran to the end.
    for t in tasks {
        t.await.expect("no task saw a wrong answer or an error");
    }
    let regions = store.users_per_region().await.unwrap();
    assert_eq!(regions.iter().map(|(_, n)| n).sum::<i64>(), 16);
}
