//! `walletctl token`: API tokens, written straight to the store.

use clap::Subcommand;
use walletctl_core::platform::auth::Scopes;
use walletctl_core::platform::auth::TokenStore;
use walletctl_core::platform::sql::Db;

use crate::output::{Format, OutputOpts};
use crate::{GlobalOpts, UsageError};

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create a token and print its secret once.
    Create {
        /// A unique name: recorded as the actor of everything the token does.
        name: String,
        /// Scopes, comma-separated: read, deduct, credit, adjust.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Who is doing this, for the audit trail.
        #[arg(long, env = "USER", default_value = "operator")]
        actor: String,
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
                actor,
                out,
            } => {
                let scopes = Scopes::parse(&scopes).map_err(|e| UsageError(e.to_string()))?;
                let t = store.create_token(&name, &scopes, &actor).await?;
                match out.format {
                    Format::Json => println!(
                        "{}",
                        serde_json::json!({ "name": t.name, "scopes": t.scopes.to_string(), "token": t.secret })
                    ),
                    Format::Table => {
                        eprintln!("token {} ({}); shown once, store it now:", t.name, t.scopes);
                        println!("{}", t.secret);
                    }
                }
                Ok(())
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
