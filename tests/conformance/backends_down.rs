//! Each backend stopped or blocked: `/readyz` names it with a 503 (or reports
//! it degraded where the service works without it), and nothing panics.

use harness::proxy::{Proxy, url_addr};
use harness::{Mode, TestEnv};
use serde_json::Value;
use walletctl_core::config::SecretUrl;

use super::{amount, key, user};

/// `/readyz`, asked after the previous answer's cache window has passed.
async fn ready(app: &harness::App, base: &str) -> (u16, Value) {
    tokio::time::sleep(
        walletctl_daemon::http::health::READY_CACHE + std::time::Duration::from_millis(100),
    )
    .await;
    app.send(app.http.get(format!("{base}/readyz"))).await
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no check named {name}: {body}"))
}

async fn proxied(url: &SecretUrl) -> (Proxy, SecretUrl) {
    let upstream = url_addr(url.expose());
    let proxy = Proxy::start(upstream).await;
    let rewritten = SecretUrl::new(proxy.rewrite(url.expose(), upstream));
    (proxy, rewritten)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_primary_down_is_a_503_not_a_panic() {
    let mut env = TestEnv::new(Mode::Distributed).await;
    let pg = env.config.postgres.as_mut().unwrap();
    let (proxy, url) = proxied(&pg.url).await;
    pg.url = url;
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 10).await;
    proxy.cut();
    let (s, b) = ready(&app, &app.wallet).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(check(&b, "postgres_primary")["ok"], false);
    assert_eq!(
        check(&b, "postgres_write")["ok"],
        false,
        "the write path is named"
    );
    assert!(
        check(&b, "postgres_write").get("error").is_none(),
        "no raw error text without a token"
    );
    let (s, b) = app
        .post(&format!("/wallet/{u}/deduct"), amount(1), Some(&key()))
        .await;
    // Nothing reached the database ("unavailable"), or a pooled connection
    // broke under the transaction ("outcome_unknown"): both say retry with
    // the same key, and neither is a 500.
    assert_eq!(s, 503, "{b}");
    assert!(
        matches!(
            b["error"]["code"].as_str(),
            Some("unavailable" | "outcome_unknown")
        ),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    let (s, _) = app
        .send(app.http.get(format!("{}/healthz", app.wallet)))
        .await;
    assert_eq!(s, 200, "still alive");
}

/// Puts a proxy in front of the replica `name`, to cut it later.
async fn proxy_replica(env: &mut TestEnv, name: &str) -> Proxy {
    let pg = env.config.postgres.as_mut().unwrap();
    let replica = pg.replicas.get_mut(name).unwrap();
    let (proxy, url) = proxied(&replica.url).await;
    replica.url = url;
    proxy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_down_degrades_but_reads_go_on() {
    let mut env = TestEnv::new(Mode::Distributed).await;
    let proxy = proxy_replica(&mut env, "sw1").await;
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_WEST", 10).await;
    proxy.cut();
    let (s, b) = ready(&app, &app.wallet).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("degraded")), "{b}");
    assert_eq!(check(&b, "replica:sw1")["ok"], false);
    let (s, b) = app.get(&format!("/wallet/{u}/balance")).await;
    assert_eq!((s, b["balance"].as_i64()), (200, Some(10)), "{b}");
    assert_eq!(
        b["source"], "primary",
        "with its region's only replica down, the read falls back: {b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_makes_ads_unready_and_wallet_degraded() {
    let mut env = TestEnv::new(Mode::Distributed).await;
    let redis = env.config.redis.as_mut().unwrap();
    let (proxy, url) = proxied(&redis.url).await;
    redis.url = url;
    let app = env.spawn().await;
    proxy.cut();
    let (s, b) = ready(&app, &app.ads).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(check(&b, "redis")["ok"], false);
    let (s, b) = ready(&app, &app.wallet).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("degraded")), "{b}");
    assert_eq!(check(&b, "redis")["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongodb_down_makes_ads_unready() {
    let mut env = TestEnv::new(Mode::Distributed).await;
    let mongo = env.config.mongodb.as_mut().unwrap();
    let (proxy, url) = proxied(&mongo.url).await;
    mongo.url = url;
    let app = env.spawn().await;
    let (s, b) = ready(&app, &app.ads).await;
    assert_eq!(s, 200, "up before the cut: {b}");
    proxy.cut();
    let (s, b) = ready(&app, &app.ads).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(check(&b, "mongodb")["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_down_makes_display_unready_and_money_still_moves() {
    let mut env = TestEnv::new(Mode::Distributed).await;
    // A port nothing listens on: Kafka clients learn broker addresses from
    // metadata, so a proxy cannot stand in for the broker; a dead address can.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    env.config.kafka.as_mut().unwrap().brokers = dead.to_string();
    let app = env.spawn().await;
    let (s, b) = ready(&app, &app.display).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(check(&b, "kafka")["ok"], false);
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 100).await;
    let (s, b) = app
        .post(&format!("/wallet/{u}/deduct"), amount(30), Some(&key()))
        .await;
    assert_eq!((s, b["balance"].as_i64()), (200, Some(70)), "{b}");
    let backlog = env.backends().await.outbox.outbox_backlog().await.unwrap();
    assert!(backlog >= 3, "the events wait in the outbox: {backlog}");
}

/// Coalesced reads share one query: a replica dying under a steady stream
/// of concurrent reads must fail none of them, each still gets its own row;
/// and when it comes back, reads go back to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_ride_through_a_replica_dying() {
    let mut env = TestEnv::new(Mode::Distributed).await;
    let proxy = proxy_replica(&mut env, "sw1").await;
    let app = env.spawn().await;
    let mut users = Vec::new();
    for i in 0..16 {
        let u = user();
        app.wallet_with(&u, "SOUTH_WEST", 100 + i).await;
        users.push((u, 100 + i));
    }
    let cut_after = 5;
    for round in 0..15 {
        if round == cut_after {
            proxy.cut();
        }
        let reads = users.iter().map(|(u, balance)| {
            let app = &app;
            async move {
                let (s, b) = app.get(&format!("/wallet/{u}/balance")).await;
                assert_eq!(s, 200, "round {round}: {b}");
                assert_eq!(b["balance"], *balance, "round {round}: {u} got {b}");
                b["source"].as_str().unwrap_or_default().to_owned()
            }
        });
        let sources = futures::future::join_all(reads).await;
        if round > cut_after {
            assert!(
                sources.iter().all(|s| s == "primary"),
                "round {round}: reads after the cut still named the dead replica: {sources:?}"
            );
        }
    }
    // Back up: once its down mark lapses, reads return to it on new
    // sessions (the ones the cut broke were closed, not handed out again).
    proxy.restore();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (u, balance) = &users[0];
        let (s, b) = app.get(&format!("/wallet/{u}/balance")).await;
        assert_eq!(
            (s, &b["balance"]),
            (200, &serde_json::json!(balance)),
            "{b}"
        );
        if b["source"] == "replica:sw1" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reads never went back to the restored replica: {b}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
