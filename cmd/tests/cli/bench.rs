//! `walletctl bench`: it deducts and reads what it counts.

use harness::{Mode, TestEnv};

use crate::Cli;

/// The load generator sends requests the service accepts, on its own lean
/// HTTP/1.1 connections: every deduction it counts as ok took money off,
/// and its reads are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_deducts_and_reads_what_it_counts() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    for u in ["lg0", "lg1"] {
        app.wallet_with(u, "SOUTH_EAST", 1_000_000).await;
    }
    let bench = |kind: &str| {
        cli.json(&[
            "bench",
            kind,
            "--users",
            "2",
            "--prefix",
            "lg",
            "--concurrency",
            "4",
            "--seconds",
            "1",
            "-o",
            "json",
        ])
    };
    let deduct = bench("deduct");
    let ok = deduct["ok"].as_i64().unwrap();
    assert!(ok > 0, "{deduct}");
    assert_eq!(deduct["errors"], 0, "{deduct}");
    let left = app.balance("lg0").await + app.balance("lg1").await;
    assert_eq!(
        left,
        2_000_000 - ok,
        "each ok deduction took one unit: {deduct}"
    );
    let read = bench("read");
    assert!(read["ok"].as_i64().unwrap() > 0, "{read}");
    assert_eq!(read["errors"], 0, "{read}");
}
