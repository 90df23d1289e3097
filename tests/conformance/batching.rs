//! One transaction applies a user's queued commands in order, each accepted
//! or refused on its own.

use harness::conformance;
use walletctl_core::domain::{IdempotencyKey, Region, UserId};
use walletctl_core::platform::sql::StoreError;
use walletctl_core::wallet::{EntryKind, MoneyCommand, Refusal};

fn cmd(user: &UserId, delta: i64, key: &str) -> MoneyCommand {
    MoneyCommand {
        user: user.clone(),
        kind: if delta < 0 {
            EntryKind::Deduct
        } else {
            EntryKind::Credit
        },
        delta,
        reason: None,
        reference: None,
        key: IdempotencyKey::parse(key).unwrap(),
        actor: "test".into(),
        fence: None,
    }
}

conformance!(a_batch_decides_each_command_in_order, |env| {
    let backends = env.backends().await;
    let store = &backends.wallets;
    backends.db.migrate().await.unwrap();
    let u = UserId::parse(&crate::user()).unwrap();
    store
        .create_wallet(&u, &Region::parse("SOUTH_EAST").unwrap(), "test")
        .await
        .unwrap();
    let k = |s: &str| format!("{}-{s}", env.id);
    store.apply(&cmd(&u, 10, &k("seed"))).await.unwrap();

    let batch = vec![
        cmd(&u, -4, &k("a")),
        cmd(&u, -4, &k("b")),
        cmd(&u, -4, &k("c")), // 2 left: refused, nothing changes
        cmd(&u, -2, &k("d")),
        cmd(&u, -4, &k("a")), // a retry of "a" inside the batch: the same answer
        cmd(&u, -1, &k("b")), // "b" with another body: refused
        cmd(&u, 5, &k("seed")), // a replay of an earlier batch's key with another body
        cmd(&u, 10, &k("seed")), // and with the same body: replayed
    ];
    let out = store.apply_batch(&batch).await.unwrap();
    let balance = |i: usize| {
        out[i]
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap()
            .balance_after
    };
    assert_eq!((balance(0), balance(1)), (6, 2));
    let r = out[2].as_ref().unwrap();
    assert_eq!(
        r.result,
        Err(Refusal::InsufficientFunds {
            balance: 2,
            requested: 4
        })
    );
    assert!(!r.replayed);
    assert_eq!(balance(3), 0);
    let replay = out[4].as_ref().unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.result, out[0].as_ref().unwrap().result);
    assert!(matches!(out[5], Err(StoreError::IdempotencyKeyReused)));
    assert!(matches!(out[6], Err(StoreError::IdempotencyKeyReused)));
    assert!(out[7].as_ref().unwrap().replayed);
    let versions: Vec<i64> = [0, 1, 3]
        .iter()
        .map(|&i| out[i].as_ref().unwrap().result.as_ref().unwrap().version)
        .collect();
    assert_eq!(
        versions,
        [2, 3, 4],
        "one version per accepted command, in order"
    );
    assert_eq!(store.ledger_sum(&u).await.unwrap(), (0, 0));
});

conformance!(a_batch_for_an_unknown_wallet_leaves_nothing_behind, |env| {
    let backends = env.backends().await;
    let store = &backends.wallets;
    backends.db.migrate().await.unwrap();
    let u = UserId::parse(&crate::user()).unwrap();
    let key = format!("{}-k", env.id);
    let out = store
        .apply_batch(&[cmd(&u, -1, &key), cmd(&u, 3, &format!("{key}2"))])
        .await
        .unwrap();
    assert!(
        out.iter()
            .all(|r| matches!(r, Err(StoreError::NotFound("wallet")))),
        "{out:?}"
    );
    // The keys were not spent: once the wallet exists, they work.
    store
        .create_wallet(&u, &Region::parse("SOUTH_WEST").unwrap(), "test")
        .await
        .unwrap();
    let ok = store.apply(&cmd(&u, 3, &format!("{key}2"))).await.unwrap();
    assert_eq!((ok.replayed, ok.result.unwrap().balance_after), (false, 3));
});
