//! `walletctl config`.

use clap::Subcommand;

use crate::GlobalOpts;

/// Configuration commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print the effective configuration (all layers merged), secrets redacted.
    Show {
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = ShowFormat::Toml)]
        format: ShowFormat,
    },
}

/// Formats of `config show`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ShowFormat {
    /// TOML, as the file is written.
    Toml,
    /// JSON.
    Json,
}

/// Runs a configuration command.
pub fn run(g: &GlobalOpts, cmd: Cmd) -> anyhow::Result<()> {
    let config = g.load_config()?;
    match cmd {
        Cmd::Show {
            format: ShowFormat::Toml,
        } => print!("{}", config.to_redacted_toml()),
        Cmd::Show {
            format: ShowFormat::Json,
        } => println!("{}", serde_json::to_string_pretty(&config)?),
    }
    Ok(())
}
