//! `walletctl completions SHELL`: completions for bash, zsh, fish, elvish
//! or PowerShell, printed to standard output.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Which shell.
#[derive(Debug, Args)]
pub struct Opts {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

/// Prints the completions.
pub fn run(opts: Opts) -> anyhow::Result<()> {
    use std::io::Write;
    let mut cmd = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(opts.shell, &mut cmd, "walletctl", &mut script);
    match std::io::stdout().write_all(&script) {
        // `walletctl completions bash | head` closes the pipe early: not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
