//! `walletctl token`: API tokens, written straight to the store.

use clap::Subcommand;
use tabled::Tabled;
use walletctl_core::platform::auth::{Accounts, Grant, Scopes, TokenStore, parse_token_name};
use walletctl_core::platform::sql::Db;

use crate::output::{Format, OutputOpts, print};

/// One row of `token list`.
#[derive(Tabled)]
struct Row {
    name: String,
    scopes: String,
    accounts: String,
    revoked: String,
}
use crate::{GlobalOpts, UsageError};

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a token and print its secret once.
    ///
    /// With --account the token is an advertiser's: it reaches only those
    /// accounts' wallets (read) and campaigns, never the serving pool, and
    /// cannot move money. Without it, the token is an operator's or a
    /// service's and reaches every account.
    Create {
        /// A unique name of 1-64 characters of A-Z a-z 0-9 _ - .: recorded as the
        /// actor of everything the token does. walletctl's own callers' names
        /// (billing, operator, ads-service*, display-service*) are reserved.
        name: String,
        /// Scopes, comma-separated: read, deduct, credit, adjust, campaigns_read,
        /// campaigns_write.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Bind the token to this advertiser account (a wallet user id);
        /// repeat or separate with commas for several. A bound token cannot
        /// have deduct, credit or adjust.
        #[arg(long = "account", value_name = "USER_ID", value_delimiter = ',')]
        accounts: Vec<String>,
        /// Who is doing this, for the audit trail.
        #[arg(long, env = "USER", default_value = "operator")]
        actor: String,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// List every token: its scopes, the accounts it is bound to, and whether
    /// it is revoked (never a secret).
    List {
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Revoke a token by name (takes effect within 10 seconds on every instance).
    Revoke {
        /// The token's name.
        name: String,
        /// Who is doing this, for the audit trail.
        #[arg(long, env = "USER", default_value = "operator")]
        actor: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        out: OutputOpts,
    },
}

/// Runs a token command.
pub async fn run(g: &GlobalOpts, cmd: Cmd) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let db = Db::open(&config)?;
    db.migrate().await?;
    let store = TokenStore::new(db.clone());
    let result = async {
        match cmd {
            Cmd::Create {
                name,
                scopes,
                accounts,
                actor,
                out,
            } => {
                let usage = |e: walletctl_core::domain::ParseError| UsageError(e.to_string());
                let name = parse_token_name(&name).map_err(usage)?;
                let scopes = Scopes::parse(&scopes).map_err(usage)?;
                let accounts = Accounts::parse(&accounts.join(",")).map_err(usage)?;
                let grant = Grant::new(scopes, accounts).map_err(usage)?;
                let t = store.create_token(&name, grant, &actor).await?;
                match out.format {
                    Format::Json => println!(
                        "{}",
                        serde_json::json!({
                            "name": t.name, "scopes": t.scopes.to_string(),
                            "accounts": t.accounts.to_string(), "token": t.secret,
                        })
                    ),
                    Format::Table => {
                        let bound = match t.accounts {
                            Accounts::All => "every account".to_owned(),
                            ref a => format!("accounts {a}"),
                        };
                        eprintln!(
                            "token {} ({}; {bound}); shown once, store it now:",
                            t.name, t.scopes
                        );
                        println!("{}", t.secret);
                    }
                }
                Ok(())
            }
            Cmd::List { out } => {
                let tokens = store.list_tokens().await?;
                let rows = tokens.iter().map(|t| Row {
                    name: t.name.clone(),
                    scopes: t.scopes.clone(),
                    accounts: if t.accounts.is_empty() {
                        "(all)".into()
                    } else {
                        t.accounts.clone()
                    },
                    revoked: if t.revoked_at_ms.is_some() { "yes" } else { "" }.into(),
                });
                print(out.format, &tokens, rows)
            }
            Cmd::Revoke {
                name,
                actor,
                yes,
                out,
            } => {
                if !yes {
                    eprintln!("revoke token {name}: every client using it is refused within 10 s");
                    if !crate::prompt::confirm("revoke a token")? {
                        return Err(UsageError("not confirmed; nothing changed".into()).into());
                    }
                }
                if store.revoke_token(&name, &actor).await? {
                    match out.format {
                        Format::Json => println!("{}", serde_json::json!({ "revoked": name })),
                        Format::Table => println!("revoked {name}"),
                    }
                    Ok(())
                } else {
                    Err(UsageError(format!("no active token named {name:?}")).into())
                }
            }
        }
    }
    .await;
    db.close().await;
    result
}
