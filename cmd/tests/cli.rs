//! The `walletctl` binary as an operator uses it, against a running `serve`.

use std::process::{Command, Output, Stdio};

use harness::{App, Mode, TestEnv};
use serde_json::Value;

struct Cli<'a> {
    env: &'a TestEnv,
    app: &'a App,
}

impl Cli<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_walletctl"));
        c.arg("--data-dir")
            .arg(&self.env.config.data_dir)
            .args(args)
            .env("WALLETCTL_URL", &self.app.wallet)
            .env("WALLETCTL_ADS_URL", &self.app.ads)
            .env_remove("WALLETCTL_TOKEN")
            .env_remove("WALLETCTL_CONFIG")
            .stdin(Stdio::null());
        c
    }

    /// Runs with the operator token the data directory holds (as an operator would).
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("walletctl runs")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

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

fn walletctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_walletctl"));
    c.current_dir(dir.path())
        .arg("--data-dir")
        .arg(dir.path())
        .args(args)
        .stdin(Stdio::null());
    for k in ["WALLETCTL_CONFIG", "WALLETCTL_URL", "WALLETCTL_TOKEN"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn config_show_redacts_secrets_and_bad_config_names_the_key() {
    let out = walletctl(
        &["config", "show"],
        &[(
            "WALLETCTL_POSTGRES__URL",
            "postgres://app:hunter2@db:5432/w",
        )],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("postgres://app:***@db:5432/w") && !text.contains("hunter2"),
        "{text}"
    );

    let out = walletctl(&["config", "show", "-o", "json"], &[]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["listen"]["wallet"], "127.0.0.1:8480");
    assert!(
        v["postgres"].is_null(),
        "no configuration means the embedded default"
    );

    let out = walletctl(
        &["config", "show"],
        &[("WALLETCTL_WALLET__LOCK_TTL_MS", "soon")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("wallet.lock_ttl_ms"), "{err}");
    let out = walletctl(
        &["--config", "/nonexistent/walletctl.toml", "config", "show"],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn migrate_shows_then_applies_the_embedded_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_walletctl"))
            .args(["--data-dir", d])
            .args(args)
            .env_remove("WALLETCTL_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before: Value = serde_json::from_str(&run(&["migrate", "status", "-o", "json"])).unwrap();
    assert_eq!(before[0]["applied"], false);
    let pending: Value =
        serde_json::from_str(&run(&["migrate", "run", "--dry-run", "-o", "json"])).unwrap();
    assert_eq!(pending[0]["description"], "wallets");
    assert!(run(&["migrate", "run", "--dry-run"]).contains("wallets"));
    let n = before.as_array().unwrap().len();
    assert!(run(&["migrate"]).contains(&format!("applied {n} migration(s)")));
    let after: Value = serde_json::from_str(&run(&["migrate", "status", "-o", "json"])).unwrap();
    assert_eq!(after[0]["applied"], true);
    assert!(run(&["migrate"]).contains("applied 0"));
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["wallet", "adjust", "--help"],
        &["shards", "assign", "--help"],
        &["token", "create", "--help"],
        &["campaigns", "create", "--help"],
    ] {
        let out = walletctl(args, &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = walletctl(&["shards", "list"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "shards need the distributed store"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_commands_create_list_pause_and_refuse_an_unfunded_resume() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    let file = env.config.data_dir.join("c.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "campaign_id": "cli-1", "user_id": "dora", "name": "Spring",
            "pricing": {"model": "cpm", "price": 2500}, "budget": {"lifetime": 9000, "daily": 1000},
            "creative": {"title": "T", "asset_url": "https://cdn.example/t.png", "landing_url": "https://t.example/"}
        })
        .to_string(),
    )
    .unwrap();
    cli.json(&[
        "wallet",
        "create",
        "dora",
        "--region",
        "SOUTH_EAST",
        "-o",
        "json",
    ]);
    cli.json(&["wallet", "credit", "dora", "100", "-o", "json"]);
    let created = cli.json(&["campaigns", "create", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(
        (created["status"].as_str(), created["version"].as_i64()),
        (Some("active"), Some(1))
    );
    let list = cli.json(&["campaigns", "list", "dora", "-o", "json"]);
    assert_eq!(list["campaigns"][0]["campaign_id"], "cli-1");
    let table = cli.run(&["campaigns", "list", "dora"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("cpm 2500") && table.contains("9000 (daily 1000)"),
        "{table}"
    );
    let paused = cli.json(&["campaigns", "pause", "cli-1", "-o", "json"]);
    assert_eq!(
        (paused["status"].as_str(), paused["status_reason"].as_str()),
        (Some("paused"), Some("manual"))
    );
    // dora's wallet is drained below one charge: the resume is refused, with exit code 2 and the reason.
    cli.json(&["wallet", "deduct", "dora", "100", "-o", "json"]);
    let out = cli.run(&["campaigns", "resume", "cli-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wallet_cannot_pay"));
    let shown = cli.json(&["campaigns", "show", "cli-1", "-o", "json"]);
    assert_eq!(shown["status"], "paused");
    app.stop().await;
}

/// `campaigns sync` finds a cache planted with errors, changes nothing with
/// --dry-run, repairs it without, and then finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaigns_sync_reports_and_repairs_the_redis_cache() {
    let env = TestEnv::new(Mode::Distributed).await;
    let app = env.spawn().await;
    let body = serde_json::json!({
        "campaign_id": "sync-1", "user_id": "erin", "name": "S",
        "pricing": {"model": "cpc", "price": 5}, "budget": {"lifetime": 100, "daily": null},
        "creative": {"title": "T", "asset_url": "https://cdn.example/t.png", "landing_url": "https://t.example/"}
    });
    app.wallet_with("erin", "SOUTH_EAST", 100).await;
    let (s, _) = app
        .send(
            app.http
                .post(format!("{}/campaigns", app.ads))
                .bearer_auth(&app.token)
                .json(&body),
        )
        .await;
    assert_eq!(s, 201);
    let rc = env.config.redis.as_ref().unwrap();
    let mut r = redis::Client::open(rc.url.expose())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = |k: &str| format!("{}{k}", rc.key_prefix);
    app.stop().await;
    // erin's wallet was created at 0 and then credited. On a fresh stack
    // the ads consumer may still be applying the creation's event (balance
    // 0) when the stop comes; its confirming strong read must still be
    // answered, so the funded campaign stays active (serve stops its
    // workers before its HTTP services; stopped together, that read was
    // refused and sync-1 paused for `wallet_empty`).
    let campaigns = env.backends().await.campaigns.clone();
    let id = walletctl_core::domain::CampaignId::parse("sync-1").unwrap();
    let stored = campaigns.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.status_reason),
        (walletctl_core::ads::Status::Active, None),
        "a funded campaign is still active after a stop: {stored:?}"
    );

    let pg = env.config.postgres.as_ref().unwrap();
    let vars = [
        (
            "WALLETCTL_CONFIG",
            harness::stack_config_path().display().to_string(),
        ),
        ("WALLETCTL_POSTGRES__URL", pg.url.expose().to_owned()),
        (
            "WALLETCTL_POSTGRES__DIRECT_URL",
            pg.direct_url.as_ref().unwrap().expose().to_owned(),
        ),
        ("WALLETCTL_REDIS__KEY_PREFIX", rc.key_prefix.clone()),
        (
            "WALLETCTL_KAFKA__TOPIC_PREFIX",
            env.config.kafka.as_ref().unwrap().topic_prefix.clone(),
        ),
        (
            "WALLETCTL_MONGODB__DATABASE",
            env.config.mongodb.as_ref().unwrap().database.clone(),
        ),
    ];
    let sync = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_walletctl"))
            .arg("--data-dir")
            .arg(&env.config.data_dir)
            .args(args)
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    sync(&["campaigns", "sync", "-o", "json"]);
    // Plant errors: the active campaign's hash gone, an orphan in the pool.
    redis::cmd("DEL")
        .arg(key("campaign:sync-1"))
        .query_async::<()>(&mut r)
        .await
        .unwrap();
    redis::cmd("SADD")
        .arg(key("campaigns:active"))
        .arg("ghost")
        .query_async::<()>(&mut r)
        .await
        .unwrap();
    let dry = sync(&["campaigns", "sync", "--dry-run", "-o", "json"]);
    assert_eq!(
        (dry["missing"].as_u64(), dry["orphaned"].as_u64()),
        (Some(1), Some(1)),
        "{dry}"
    );
    let planted: bool = redis::cmd("SISMEMBER")
        .arg(key("campaigns:active"))
        .arg("ghost")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(planted, "a dry run changes nothing");
    let fixed = sync(&["campaigns", "sync", "-o", "json"]);
    assert_eq!(fixed["missing"], 1);
    let again = sync(&["campaigns", "sync", "--dry-run", "-o", "json"]);
    assert_eq!(
        (
            again["missing"].as_u64(),
            again["stale"].as_u64(),
            again["orphaned"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{again}"
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(key("campaign:sync-1"))
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(exists, "the missing campaign is cached again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn campaign_assets_upload_and_billing_shows_charged_events() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    let file = env.config.data_dir.join("c.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "campaign_id": "cli-2", "user_id": "emil", "name": "Boots",
            "pricing": {"model": "cpc", "price": 300}, "budget": {"lifetime": 9000, "daily": null},
            "creative": {"title": "Boots", "asset_url": "https://cdn.example/t.png", "landing_url": "https://t.example/"}
        })
        .to_string(),
    )
    .unwrap();
    cli.json(&[
        "wallet",
        "create",
        "emil",
        "--region",
        "SOUTH_EAST",
        "-o",
        "json",
    ]);
    cli.json(&["wallet", "credit", "emil", "1000", "-o", "json"]);
    cli.json(&["campaigns", "create", file.to_str().unwrap(), "-o", "json"]);

    // Not an image: refused before anything is sent, exit code 2.
    let out = cli.run(&["campaigns", "asset", "cli-2", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PNG"));
    let png = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/creative.png"
    );
    let up = cli.json(&["campaigns", "asset", "cli-2", png, "-o", "json"]);
    let asset = up["asset_id"].as_str().unwrap();
    assert_eq!(
        (asset.len(), up["content_type"].as_str()),
        (64, Some("image/png"))
    );
    assert_eq!(up["campaign"]["creative"]["asset_id"], asset);

    // One click, billed at the CPC.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ad: Value = loop {
        let res = http
            .get(format!("{}/ads?slot=s&advertiser=emil", app.display))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break res.json().await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let res = http
        .get(ad["click_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let billing = loop {
        let b = cli.json(&["campaigns", "billing", "cli-2", "-o", "json"]);
        if b["events"].as_array().is_some_and(|e| !e.is_empty()) {
            break b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(billing["totals"]["spent"], 300);
    assert_eq!(billing["events"][0]["status"], "billed");
    let table = cli.run(&["campaigns", "billing", "cli-2"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("click") && table.contains("billed"),
        "{table}"
    );
    app.stop().await;
}

#[test]
fn completions_cover_every_shell_and_subcommand() {
    for (shell, marker) in [
        ("bash", "_walletctl()"),
        ("zsh", "#compdef walletctl"),
        ("fish", "complete -c walletctl"),
    ] {
        let out = walletctl(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {marker}");
        for sub in ["campaigns", "wallet", "shards", "completions"] {
            assert!(text.contains(sub), "{shell} completes {sub}");
        }
    }
    let out = walletctl(&["completions", "tcsh"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

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
    cli.json(&[
        "wallet",
        "create",
        "ida",
        "--region",
        "SOUTH_EAST",
        "-o",
        "json",
    ]);
    cli.json(&["wallet", "credit", "ida", "100", "-o", "json"]);
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

/// Snapshots of what operators read: help text and command output. Review a
/// change with `INSTA_UPDATE=always cargo test -p walletctl --test cli` and
/// `git diff cmd/tests/snapshots`.
fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    // Environment values shown in help differ per machine.
    s.add_filter(r"\[env: ([A-Z_]+)=[^\]]*\]", "[env: $1]");
    s.set_prepend_module_to_snapshot(false);
    s
}

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
    let file = env.config.data_dir.join("c.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "campaign_id": "snap-1", "user_id": "kim", "name": "Snapshot boots",
            "pricing": {"model": "cpm", "price": 1500}, "budget": {"lifetime": 9000, "daily": 1000},
            "creative": {"title": "Boots", "asset_url": "https://cdn.example/b.png", "landing_url": "https://b.example/"}
        })
        .to_string(),
    )
    .unwrap();
    cli.json(&[
        "wallet",
        "create",
        "kim",
        "--region",
        "SOUTH_EAST",
        "-o",
        "json",
    ]);
    cli.json(&["wallet", "credit", "kim", "2500", "-o", "json"]);
    cli.json(&["campaigns", "create", file.to_str().unwrap(), "-o", "json"]);
    let backends = env.backends().await;
    while backends.store.outbox_backlog().await.unwrap() > 0 {
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
