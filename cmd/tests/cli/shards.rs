//! `walletctl shards` on the real stack.

use harness::{Mode, TestEnv};
use serde_json::Value;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_show_replicas_and_assign_regions_on_the_stack() {
    let env = TestEnv::new(Mode::Distributed).await;
    let app = env.spawn().await;
    app.wallet_with("erin", "SOUTH_EAST", 1).await;
    // The stack's file, pointed at this test's database.
    let text = std::fs::read_to_string(harness::stack_config_path())
        .unwrap()
        .replace("/walletctl\"", &format!("/{}\"", env.id));
    let file = env.config.data_dir.join("walletctl.toml");
    std::fs::write(&file, text).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_walletctl"))
            .arg("--config")
            .arg(&file)
            .args(args)
            .output()
            .unwrap()
    };

    let out = run(&["shards", "status", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let replicas = v["replicas"].as_array().unwrap();
    let se1 = replicas
        .iter()
        .find(|r| r["replica"] == "se1")
        .expect("se1 listed");
    assert_eq!(
        (se1["synchronous"].as_bool(), se1["reachable"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    assert!(se1["lag_bytes"].is_i64(), "lag is reported: {v}");
    assert_eq!(v["regions"][0]["region"], "SOUTH_EAST");
    assert_eq!(v["regions"][0]["wallets"], 1);

    let out = run(&[
        "shards",
        "assign",
        "SOUTH_EAST",
        "--replicas",
        "se1,sw1",
        "--dry-run",
        "-o",
        "json",
    ]);
    let change: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (change["before"].as_str(), change["after"].as_str()),
        (Some("se1"), Some("se1,sw1"))
    );
    assert!(change["result"].as_str().unwrap().starts_with("dry run"));
    let list: Value =
        serde_json::from_slice(&run(&["shards", "list", "-o", "json"]).stdout).unwrap();
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["region"] == "SOUTH_EAST")
            .unwrap()["replicas"],
        "se1"
    );
    assert!(
        run(&["shards", "assign", "SOUTH_EAST", "--replicas", "se1,sw1"])
            .status
            .success()
    );
    let list: Value =
        serde_json::from_slice(&run(&["shards", "list", "-o", "json"]).stdout).unwrap();
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["region"] == "SOUTH_EAST")
            .unwrap()["replicas"],
        "se1,sw1"
    );
    let out = run(&["shards", "assign", "SOUTH_EAST", "--replicas", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown replica"));
}
