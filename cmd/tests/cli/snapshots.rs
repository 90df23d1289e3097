//! Snapshots of what operators read: help text and command output.

use harness::{Mode, TestEnv};

use crate::{Cli, snapshot_settings, walletctl};

#[test]
fn help_text_snapshots() {
    let mut text = String::new();
    for args in [
        &["--help"][..],
        &["reconcile", "--help"],
        &["gc", "--help"],
        &["kafka", "replay", "--help"],
        &["campaigns", "--help"],
    ] {
        let out = walletctl(args, &[("COLUMNS", "100")]);
        assert!(out.status.success(), "{args:?}");
        text.push_str(&format!(
            "$ walletctl {}\n{}\n",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("help", text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn command_output_snapshots() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    let file = cli.file("c.json", serde_json::json!({
            "campaign_id": "snap-1", "user_id": "kim", "name": "Snapshot boots",
            "pricing": {"model": "cpm", "price": 1500}, "budget": {"lifetime": 9000, "daily": 1000},
            "creative": {"title": "Boots", "asset_url": "https://cdn.example/b.png", "landing_url": "https://b.example/"}
        }));
    cli.funded("kim", 2500);
    cli.json(&["campaigns", "create", file.to_str().unwrap(), "-o", "json"]);
    let backends = env.backends().await;
    while backends.outbox.outbox_backlog().await.unwrap() > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut text = String::new();
    for args in [
        &["wallet", "balance", "kim"][..],
        &["campaigns", "list", "kim"],
        &["kafka", "topics"],
        &["gc", "--dry-run"],
        &["reconcile"],
        &["wallet", "balance", "nobody"],
    ] {
        let out = cli.run(args);
        text.push_str(&format!(
            "$ walletctl {}  # exit {}\n{}{}\n",
            args.join(" "),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    snapshot_settings().bind(|| insta::assert_snapshot!("output", text));
    app.stop().await;
}
