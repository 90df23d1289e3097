//! `walletctl wallet …`, tokens, and retrying an unknown outcome.

use harness::{Mode, TestEnv};
use serde_json::Value;
use std::process::{Command, Stdio};

use crate::Cli;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wallet_commands_move_money_and_print_json() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };

    let w = cli.json(&[
        "wallet",
        "create",
        "carol",
        "--region",
        "SOUTH_EAST",
        "-o",
        "json",
    ]);
    assert_eq!(
        (w["user_id"].as_str(), w["balance"].as_i64()),
        (Some("carol"), Some(0))
    );
    let c = cli.json(&[
        "wallet", "credit", "carol", "500", "--reason", "top-up", "-o", "json",
    ]);
    assert_eq!(c["balance"], 500);
    let d = cli.json(&[
        "wallet",
        "deduct",
        "carol",
        "120",
        "--idempotency-key",
        "cli-1",
        "-o",
        "json",
    ]);
    assert_eq!(
        (d["balance"].as_i64(), d["replayed"].as_bool()),
        (Some(380), Some(false))
    );
    let again = cli.json(&[
        "wallet",
        "deduct",
        "carol",
        "120",
        "--idempotency-key",
        "cli-1",
        "-o",
        "json",
    ]);
    assert_eq!(
        (again["balance"].as_i64(), again["replayed"].as_bool()),
        (Some(380), Some(true))
    );
    let b = cli.json(&["wallet", "balance", "carol", "--strong", "-o", "json"]);
    assert_eq!(b["balance"], 380);
    let h = cli.json(&["wallet", "history", "carol", "--limit", "10", "-o", "json"]);
    assert_eq!(h["entries"].as_array().map(Vec::len), Some(2));

    // A refusal exits 2, says why, and prints the error body for scripts.
    let out = cli.run(&["wallet", "deduct", "carol", "1000", "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("insufficient_funds"));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "insufficient_funds");

    // The table output is for people.
    let out = cli.run(&["wallet", "balance", "carol"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("SOUTH_EAST"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adjustments_need_a_reason_and_a_confirmation() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    app.wallet_with("dave", "SOUTH_WEST", 100).await;
    let cli = Cli {
        env: &env,
        app: &app,
    };

    let out = cli.run(&["wallet", "adjust", "dave", "-30"]);
    assert_eq!(out.status.code(), Some(2), "no reason");
    let out = cli.run(&["wallet", "adjust", "dave", "-30", "--reason", "refund"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdin is not a terminal and no --yes"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let out = cli.run(&[
        "wallet",
        "adjust",
        "dave",
        "-30",
        "--reason",
        "refund",
        "--dry-run",
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("100 -> 70"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.balance("dave").await, 100, "nothing changed yet");

    let a = cli.json(&[
        "wallet", "adjust", "dave", "-30", "--reason", "refund", "--yes", "-o", "json",
    ]);
    assert_eq!(
        (a["balance"].as_i64(), a["entry"]["kind"].as_str()),
        (Some(70), Some("adjust"))
    );
    assert_eq!(a["entry"]["reason"], "refund");
    assert_eq!(app.balance("dave").await, 70);

    // The audit trail says who, when and why.
    let audit = cli.json(&["audit", "--target", "dave", "-o", "json"]);
    let adjust = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "wallet.adjust")
        .expect("the adjustment is audited");
    assert_eq!(adjust["actor"], "operator");
    let details: Value = serde_json::from_str(adjust["details"].as_str().unwrap()).unwrap();
    assert_eq!(
        (details["amount"].as_i64(), details["reason"].as_str()),
        (Some(-30), Some("refund"))
    );
    assert!(adjust["created_at_ms"].as_i64().unwrap() > 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_token_is_refused() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    let out = cli
        .cmd(&["wallet", "balance", "x", "--token", "wct_wrong"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_token_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new(Mode::Embedded).await;
    let _app = env.spawn().await;
    let mode = std::fs::metadata(env.config.operator_token_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A money command whose outcome is unknown (503 outcome_unknown) is retried
/// with the same idempotency key, and the retry's answer is reported.
#[test]
fn an_unknown_outcome_is_retried_with_the_same_key() {
    use std::sync::{Arc, Mutex};
    let keys: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = keys.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/wallet/{user}/deduct",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let key = headers["idempotency-key"].to_str().unwrap().to_owned();
                let mut keys = seen.lock().unwrap();
                keys.push(key);
                if keys.len() == 1 {
                    let body = serde_json::json!({"error": {"code": "outcome_unknown", "message": "retry with the same Idempotency-Key"}});
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(body))
                } else {
                    let entry = serde_json::json!({"id": 1, "user_id": "alice", "kind": "deduct", "amount": -5,
                        "balance_after": 95, "version": 2, "reason": null, "reference": null, "actor": "t", "created_at_ms": 0});
                    let body = serde_json::json!({"entry": entry, "balance": 95, "replayed": true});
                    (axum::http::StatusCode::OK, axum::Json(body))
                }
            }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_walletctl"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "wallet", "deduct", "alice", "5", "-o", "json", "--url", &url, "--token", "t",
        ])
        .env_remove("WALLETCTL_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["replayed"], true);
    let keys = keys.lock().unwrap();
    assert_eq!(keys.len(), 2, "one retry");
    assert_eq!(keys[0], keys[1], "the retry reused the key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("outcome unknown"));
}
