use std::time::Duration;

use harness::{Mode, TestEnv};
use walletctl_core::domain::Region;

use super::{amount, key, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_go_to_the_region_replica() {
    let env = TestEnv::new(Mode::Distributed).await;
    let app = env.spawn().await;
    for (region, source) in [
        ("SOUTH_EAST", "replica:se1"),
        ("SOUTH_WEST", "replica:sw1"),
        ("NORTH", "primary"),
    ] {
        let u = user();
        app.wallet_with(&u, region, 5).await;
        let res = app
            .http
            .get(format!("{}/wallet/{u}/balance", app.wallet))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-read-source"], source, "{region}");
        let b: serde_json::Value = res.json().await.unwrap();
        assert_eq!(b["source"], source);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_synchronous_replication_a_read_after_a_deduction_is_never_stale() {
    let env = TestEnv::new(Mode::Distributed).await;
    let app = env.spawn().await;
    let (se, sw) = (user(), user());
    app.wallet_with(&se, "SOUTH_EAST", 1_000).await;
    app.wallet_with(&sw, "SOUTH_WEST", 1_000).await;
    for i in 1..=100 {
        // SOUTH_EAST reads go to se1, the synchronous standby, even without asking.
        let (s, d) = app
            .post(&format!("/wallet/{se}/deduct"), amount(1), Some(&key()))
            .await;
        assert_eq!(s, 200, "{d}");
        let (_, r) = app.get(&format!("/wallet/{se}/balance")).await;
        assert_eq!(r["source"], "replica:se1");
        assert_eq!(r["balance"], d["balance"], "read {i} on se1 was stale");
        // A strong read of a SOUTH_WEST user also goes to se1, not to the async sw1.
        let (_, d) = app
            .post(&format!("/wallet/{sw}/deduct"), amount(1), Some(&key()))
            .await;
        let (_, r) = app
            .get(&format!("/wallet/{sw}/balance?consistency=strong"))
            .await;
        assert_eq!(r["source"], "replica:se1");
        assert_eq!(r["balance"], d["balance"], "strong read {i} was stale");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_assignment_reaches_every_instance() {
    let env = TestEnv::new(Mode::Distributed).await;
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_WEST", 5).await;
    let (_, b) = app.get(&format!("/wallet/{u}/balance")).await;
    assert_eq!(b["source"], "replica:sw1");
    // Another process (as `walletctl shards assign` is) moves the region.
    let other = env.backends().await;
    other
        .shards
        .assign_region(
            &Region::parse("SOUTH_WEST").unwrap(),
            &["se1".to_owned()],
            "test",
        )
        .await
        .unwrap();
    let assignments = other.shards.shard_assignments().await.unwrap();
    assert!(
        assignments
            .iter()
            .any(|a| a.region == "SOUTH_WEST" && a.replicas == ["se1"]),
        "{assignments:?}"
    );
    let mut source = String::new();
    for _ in 0..100 {
        let (_, b) = app.get(&format!("/wallet/{u}/balance")).await;
        source = b["source"].as_str().unwrap().to_owned();
        if source == "replica:se1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        source, "replica:se1",
        "the serving instance picked up the new map"
    );
    let err = other
        .shards
        .assign_region(
            &Region::parse("SOUTH_WEST").unwrap(),
            &["nope".to_owned()],
            "test",
        )
        .await;
    assert!(err.is_err(), "unknown replicas are refused");
}

/// Concurrent reads are coalesced into one replica query per lane; each must
/// still get its own user's row, and an unknown user among them a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_each_get_their_own_wallet() {
    let env = TestEnv::new(Mode::Distributed).await;
    let app = env.spawn().await;
    let mut users = Vec::new();
    for i in 0..40 {
        let u = user();
        let region = if i % 2 == 0 {
            "SOUTH_EAST"
        } else {
            "SOUTH_WEST"
        };
        app.wallet_with(&u, region, 1_000 + i).await;
        users.push((u, 1_000 + i));
    }
    // sw1 replicates asynchronously: let it catch up with the last credits
    // before asking for exact balances.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    for (u, balance) in &users {
        while app.get(&format!("/wallet/{u}/balance")).await.1["balance"] != *balance {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{u} never caught up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    for _round in 0..5 {
        let reads = users.iter().map(|(u, balance)| {
            let app = &app;
            async move {
                let (s, b) = app.get(&format!("/wallet/{u}/balance")).await;
                assert_eq!(s, 200, "{b}");
                assert_eq!(b["user_id"], u.as_str());
                assert_eq!(b["balance"], *balance, "{u} got another's balance");
            }
        });
        let unknown = async {
            let (s, b) = app.get(&format!("/wallet/{}/balance", user())).await;
            assert_eq!(s, 404, "{b}");
            assert_eq!(b["error"]["code"], "wallet_not_found");
        };
        futures::join!(futures::future::join_all(reads), unknown);
    }
}
