//! The `walletctl` binary as an operator uses it, against a running `serve`:
//! one module per command group.

mod bench;
mod campaigns;
mod ops;
mod setup;
mod shards;
mod snapshots;
mod token;
mod wallet;

use std::process::{Command, Output, Stdio};

use harness::{App, TestEnv};
use serde_json::Value;

pub(crate) struct Cli<'a> {
    pub(crate) env: &'a TestEnv,
    pub(crate) app: &'a App,
}
impl Cli<'_> {
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
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
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("walletctl runs")
    }

    /// A wallet in SOUTH_EAST with `amount` credited, made with the CLI.
    pub(crate) fn funded(&self, user: &str, amount: i64) {
        let amount = amount.to_string();
        self.json(&[
            "wallet",
            "create",
            user,
            "--region",
            "SOUTH_EAST",
            "-o",
            "json",
        ]);
        self.json(&["wallet", "credit", user, &amount, "-o", "json"]);
    }

    /// Writes `value` as `name` in the data directory (a campaign file, say).
    pub(crate) fn file(&self, name: &str, value: Value) -> std::path::PathBuf {
        let path = self.env.config.data_dir.join(name);
        std::fs::write(&path, value.to_string()).expect("the data directory is writable");
        path
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
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

pub(crate) fn walletctl(args: &[&str], env: &[(&str, &str)]) -> Output {
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

/// Snapshots of what operators read: help text and command output. Review a
/// change with `INSTA_UPDATE=always cargo test -p walletctl --test cli` and
/// `git diff cmd/tests/snapshots`.
pub(crate) fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    // Environment values shown in help differ per machine.
    s.add_filter(r"\[env: ([A-Z_]+)=[^\]]*\]", "[env: $1]");
    s.set_prepend_module_to_snapshot(false);
    // The snapshots stay beside the test binary's folder: cmd/tests/snapshots.
    s.set_snapshot_path("../snapshots");
    s
}
