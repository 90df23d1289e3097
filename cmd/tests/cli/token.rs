//! `walletctl token`: bound tokens, what they are refused, and the list.

use harness::{Mode, TestEnv};

use crate::Cli;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_bind_to_accounts_refuse_money_and_list_their_grant() {
    let env = TestEnv::new(Mode::Embedded).await;
    let app = env.spawn().await;
    let cli = Cli {
        env: &env,
        app: &app,
    };
    cli.funded("acme", 500);
    let created = cli.json(&[
        "token",
        "create",
        "acme-api",
        "--account",
        "acme",
        "--scopes",
        "read,campaigns_read,campaigns_write",
        "-o",
        "json",
    ]);
    assert_eq!(created["accounts"], "acme", "{created}");
    let secret = created["token"].as_str().expect("a secret").to_owned();

    // The bound token reads its own wallet through the CLI, not another's.
    cli.funded("globex", 700);
    let own = cli
        .cmd(&["wallet", "balance", "acme", "-o", "json"])
        .env("WALLETCTL_TOKEN", &secret)
        .output()
        .unwrap();
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    let theirs = cli
        .cmd(&["wallet", "balance", "globex", "-o", "json"])
        .env("WALLETCTL_TOKEN", &secret)
        .output()
        .unwrap();
    assert!(
        !theirs.status.success()
            && String::from_utf8_lossy(&theirs.stderr).contains("wallet_not_found"),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );

    // Money-moving scopes and reserved names are refused with a clear message.
    for (args, says) in [
        (
            &[
                "token",
                "create",
                "acme-pay",
                "--account",
                "acme",
                "--scopes",
                "read,deduct",
            ][..],
            "cannot move money",
        ),
        (
            &["token", "create", "billing", "--scopes", "read"][..],
            "reserved",
        ),
    ] {
        let out = cli.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }

    // The list shows each token's scopes and accounts, never a secret.
    let list = cli.json(&["token", "list", "-o", "json"]);
    let row = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["name"] == "acme-api"))
        .unwrap_or_else(|| panic!("listed: {list}"));
    assert_eq!(
        (row["accounts"].as_str(), row["scopes"].as_str()),
        (Some("acme"), Some("read,campaigns_read,campaigns_write"))
    );
    assert!(!list.to_string().contains(&secret), "no secret is listed");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "acme-pay")
    );
    let table = cli.run(&["token", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("acme-api") && table.contains("(all)"),
        "{table}"
    );
    app.stop().await;
}
