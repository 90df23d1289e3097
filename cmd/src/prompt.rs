//! Asking before a destructive operation.

use std::io::{BufRead, IsTerminal, Write};

use crate::UsageError;

/// Asks "proceed?" on the terminal; refuses (exit 2) without one: pass
/// `--yes` from scripts and cron.
pub fn confirm(what: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(UsageError(format!(
            "refusing to {what} without confirmation: stdin is not a terminal; pass --yes"
        ))
        .into());
    }
    eprint!("proceed? [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
