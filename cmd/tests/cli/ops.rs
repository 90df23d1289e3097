//! The operator's cron tools: `gc`, `reconcile`, `kafka topics|lag|replay`.

use harness::{Mode, TestEnv};
use serde_json::Value;

use crate::Cli;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_counts_first_asks_and_removes_with_yes() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    let dry = cli.json(&["gc", "--dry-run", "-o", "json"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["idempotency_keys"], 0, "nothing is 30 days old: {dry}");
    assert!(
        dry["event_log"].is_u64(),
        "the embedded log is counted: {dry}"
    );
    // Without a terminal and without --yes: refused, exit 2.
    let out = cli.run(&["gc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let done = cli.json(&["gc", "--yes", "-o", "json"]);
    assert_eq!(done["dry_run"], false);
    let table = cli.run(&["gc", "--dry-run"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("idempotency keys") && table.contains("30 days"),
        "{table}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_exits_0_when_clean_1_on_differences_and_2_on_error() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    cli.funded("ida", 100);
    // Events younger than reconcile.outbox_age_secs (60 s) are not differences.
    let out = cli.run(&["reconcile", "-o", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["checks"][0]["check"], "ledger");
    env.sql("UPDATE wallets SET balance = balance + 1 WHERE user_id = 'ida'")
        .await;
    let out = cli.run(&["reconcile"]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("differences") && table.contains("ida: balance 101, ledger sums to 100"),
        "{table}"
    );
    assert!(
        out.stderr.is_empty(),
        "a finding is not an error: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A store that cannot be reached: exit 2, with the cause.
    let bad = env.config.data_dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[postgres]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\nreplicas = {}\n",
    )
    .unwrap();
    let out = cli.run(&["--config", bad.to_str().unwrap(), "reconcile"]);
    assert_eq!(out.status.code(), Some(2));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("error"), "the cause is shown: {said}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_topics_lag_and_a_dry_run_replay_on_the_embedded_log() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    cli.json(&[
        "wallet",
        "create",
        "jo",
        "--region",
        "SOUTH_EAST",
        "-o",
        "json",
    ]);
    let topics = cli.json(&["kafka", "topics", "-o", "json"]);
    let names: Vec<&str> = topics
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ad_events") && names.contains(&"balance_updated"));
    assert!(
        topics
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "ok")
    );
    let lag = cli.json(&["kafka", "lag", "-o", "json"]);
    let groups: Vec<&str> = lag
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["group"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        ["walletctl-ads", "walletctl-ads-ingest", "walletctl-billing"]
    );
    let dry = cli.json(&[
        "kafka",
        "replay",
        "--topic",
        "balance_updated",
        "--from",
        "beginning",
        "-o",
        "json",
    ]);
    assert_eq!(dry["executed"], false);
    assert!(
        dry["read"].as_u64().unwrap() >= 1,
        "the wallet's creation: {dry}"
    );
    let table = cli.run(&[
        "kafka",
        "replay",
        "--topic",
        "ad_events",
        "--from",
        "2026-01-01T00:00:00Z",
    ]);
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("dry run"));
    for bad in [
        &[
            "kafka",
            "replay",
            "--topic",
            "campaign_paused",
            "--from",
            "beginning",
        ][..],
        &[
            "kafka",
            "replay",
            "--topic",
            "ad_events",
            "--from",
            "yesterday",
        ],
        &["kafka", "lag", "--group", "nobody"],
    ] {
        let out = cli.run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    app.stop().await;
}
