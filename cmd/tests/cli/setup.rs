//! `config`, `migrate`, `completions`, and `--help` on every subcommand.

use serde_json::Value;
use std::process::Command;

use crate::walletctl;

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
