//! `-o table|json`: tables for people, JSON for scripts.

use clap::ValueEnum;
use serde::Serialize;
use tabled::settings::Style;

/// How to print results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// `-o`, flattened into each command that prints results.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputOpts {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Prints `value` as JSON, or `rows` as a table.
pub fn print<T: Serialize, R: tabled::Tabled>(
    format: Format,
    value: &T,
    rows: impl IntoIterator<Item = R>,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Table => {
            let mut table = tabled::Table::new(rows);
            table.with(Style::sharp());
            println!("{table}");
        }
    }
    Ok(())
}
