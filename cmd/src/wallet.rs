//! `walletctl wallet`: a client of the wallet service.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tabled::Tabled;

use crate::client::{ApiFailure, Client, ConnOpts};
use crate::output::{Format, OutputOpts, print};
use crate::{GlobalOpts, UsageError};

/// Wallet commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create an empty wallet in a region.
    Create {
        /// The user id.
        user: String,
        /// The region (shard key), e.g. SOUTH_EAST.
        #[arg(long)]
        region: String,
        #[command(flatten)]
        conn: ConnOpts,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Show a balance.
    Balance {
        /// The user id.
        user: String,
        /// Read from the primary or synchronous standby instead of a region replica.
        #[arg(long)]
        strong: bool,
        #[command(flatten)]
        conn: ConnOpts,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Deduct an amount (minor units). Refused, changing nothing, if the balance is short.
    Deduct(MoveOpts),
    /// Credit an amount (minor units): a top-up.
    Credit(MoveOpts),
    /// Make an operator adjustment, positive or negative, with a reason.
    ///
    /// Shows the balance before and after, and asks for confirmation unless --yes.
    Adjust {
        #[command(flatten)]
        mv: MoveOpts,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Only show what would happen.
        #[arg(long)]
        dry_run: bool,
    },
    /// List ledger entries, newest first.
    History {
        /// The user id.
        user: String,
        /// Entries per page.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Start below this entry id (the `next_before` of the previous page).
        #[arg(long)]
        before: Option<i64>,
        #[command(flatten)]
        conn: ConnOpts,
        #[command(flatten)]
        out: OutputOpts,
    },
}

/// Options of a money movement.
#[derive(Debug, Args)]
pub struct MoveOpts {
    /// The user id.
    pub user: String,
    /// Minor units (for adjust, may be negative).
    #[arg(allow_negative_numbers = true)]
    pub amount: i64,
    /// Why (required for adjust).
    #[arg(long)]
    pub reason: Option<String>,
    /// Your reference, e.g. an order id.
    #[arg(long)]
    pub reference: Option<String>,
    /// Idempotency key: reuse it to retry safely. Default: a new random key.
    /// An unknown outcome (a 503, a timeout, a dropped connection) is retried
    /// with the same key up to 3 times before it is reported.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub conn: ConnOpts,
    #[command(flatten)]
    pub out: OutputOpts,
}

#[derive(Tabled)]
struct WalletRow {
    user_id: String,
    region: String,
    balance: i64,
    version: i64,
}

#[derive(Tabled)]
struct EntryRow {
    id: i64,
    kind: String,
    amount: i64,
    balance_after: i64,
    actor: String,
    reason: String,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn wallet_row(v: &Value) -> WalletRow {
    WalletRow {
        user_id: s(&v["user_id"]),
        region: s(&v["region"]),
        balance: v["balance"].as_i64().unwrap_or_default(),
        version: v["version"].as_i64().unwrap_or_default(),
    }
}

fn entry_row(e: &Value) -> EntryRow {
    EntryRow {
        id: e["id"].as_i64().unwrap_or_default(),
        kind: s(&e["kind"]),
        amount: e["amount"].as_i64().unwrap_or_default(),
        balance_after: e["balance_after"].as_i64().unwrap_or_default(),
        actor: s(&e["actor"]),
        reason: s(&e["reason"]),
    }
}

/// Runs a wallet command.
pub async fn run(g: &GlobalOpts, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Create {
            user,
            region,
            conn,
            out,
        } => {
            let v = Client::new(g, &conn)?
                .post(
                    &format!("/wallet/{user}"),
                    &json!({ "region": region }),
                    None,
                )
                .await?;
            print(out.format, &v, [wallet_row(&v)])
        }
        Cmd::Balance {
            user,
            strong,
            conn,
            out,
        } => {
            let q = if strong { "?consistency=strong" } else { "" };
            let v = Client::new(g, &conn)?
                .get(&format!("/wallet/{user}/balance{q}"))
                .await?;
            print(out.format, &v, [wallet_row(&v)])
        }
        Cmd::Deduct(mv) => move_money(g, "deduct", mv).await,
        Cmd::Credit(mv) => move_money(g, "credit", mv).await,
        Cmd::Adjust { mv, yes, dry_run } => {
            let Some(reason) = mv.reason.as_deref().filter(|r| !r.trim().is_empty()) else {
                return Err(UsageError("an adjustment needs --reason".into()).into());
            };
            let client = Client::new(g, &mv.conn)?;
            let current = client
                .get(&format!("/wallet/{}/balance?consistency=strong", mv.user))
                .await?;
            let before = current["balance"].as_i64().unwrap_or_default();
            eprintln!(
                "adjust {} by {:+}: balance {} -> {} (reason: {reason})",
                mv.user,
                mv.amount,
                before,
                before.saturating_add(mv.amount)
            );
            if dry_run {
                eprintln!("dry run: nothing changed");
                return Ok(());
            }
            if !yes && !crate::prompt::confirm("adjust")? {
                return Err(UsageError(
                    "not confirmed; nothing changed (pass --yes to skip the question)".into(),
                )
                .into());
            }
            move_money(g, "adjust", mv).await
        }
        Cmd::History {
            user,
            limit,
            before,
            conn,
            out,
        } => {
            let mut path = format!("/wallet/{user}/history?limit={limit}");
            if let Some(b) = before {
                path.push_str(&format!("&before={b}"));
            }
            let v = Client::new(g, &conn)?.get(&path).await?;
            let entries = v["entries"].as_array().cloned().unwrap_or_default();
            print(out.format, &v, entries.iter().map(entry_row))?;
            if out.format == Format::Table && !v["next_before"].is_null() {
                eprintln!("more: --before {}", v["next_before"]);
            }
            Ok(())
        }
    }
}

async fn move_money(g: &GlobalOpts, action: &str, mv: MoveOpts) -> anyhow::Result<()> {
    let key = mv
        .idempotency_key
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let body = json!({ "amount": mv.amount, "reason": mv.reason, "reference": mv.reference });
    let client = Client::new(g, &mv.conn)?;
    match client
        .post(&format!("/wallet/{}/{action}", mv.user), &body, Some(&key))
        .await
    {
        Ok(v) => {
            let rows = [entry_row(&v["entry"])];
            print(mv.out.format, &v, rows)?;
            if mv.out.format == Format::Table {
                eprintln!(
                    "idempotency key: {key}{}",
                    if v["replayed"] == json!(true) {
                        " (replayed)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        Err(e) => {
            if mv.out.format == Format::Json
                && let Some(f) = e.downcast_ref::<ApiFailure>()
            {
                println!("{}", serde_json::to_string_pretty(&f.body)?);
            }
            Err(e)
        }
    }
}
