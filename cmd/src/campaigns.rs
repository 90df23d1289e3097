//! `walletctl campaigns`: a client of the advertising management service.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tabled::Tabled;

use walletctl_core::Backends;
use walletctl_core::ads::AdsService;
use walletctl_core::ads::assets::ImageType;
use walletctl_core::ads::wallet_client::{BalanceError, Balances};
use walletctl_core::domain::UserId;

use crate::GlobalOpts;
use crate::client::Client;
use crate::output::{OutputOpts, print};

/// Where the ads service is and who we are.
#[derive(Debug, Clone, Args)]
pub struct AdsConn {
    /// Ads management service URL. Default: http:// plus [listen] ads from the configuration.
    #[arg(long, env = "WALLETCTL_ADS_URL", global = true, value_name = "URL")]
    pub ads_url: Option<String>,
    /// Bearer token with the campaigns_read / campaigns_write scopes. Default: the operator token.
    #[arg(
        long,
        env = "WALLETCTL_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

/// Campaign commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List an advertiser's campaigns: the active ones, or all with --all.
    List {
        /// The advertiser's user id.
        user: String,
        /// Every campaign, whatever its status.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        conn: AdsConn,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Show one campaign, with its targeting and metadata (use -o json for all of it).
    Show {
        /// The campaign id.
        campaign: String,
        #[command(flatten)]
        conn: AdsConn,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Create a campaign from a JSON file (`-` reads standard input).
    ///
    /// The file is the body of `POST /campaigns` (see docs/api.md). Creating
    /// the same campaign again is harmless: it answers with the stored one.
    Create {
        /// The JSON file, or `-`.
        file: PathBuf,
        #[command(flatten)]
        conn: AdsConn,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Pause a campaign. A paused campaign resumes only by `resume`.
    Pause {
        /// The campaign id.
        campaign: String,
        #[command(flatten)]
        conn: AdsConn,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Upload an image (PNG, JPEG, GIF or WebP, at most 1 MiB) as a campaign's creative.
    ///
    /// The image is named by the SHA-256 of its bytes and served by the
    /// display service at /assets/{asset_id} (behind display.cdn_base_url),
    /// cacheable forever. Uploading the same file again changes nothing.
    Asset {
        /// The campaign id.
        campaign: String,
        /// The image file.
        file: PathBuf,
        #[command(flatten)]
        conn: AdsConn,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Show a campaign's billing: what its impressions and clicks cost, and
    /// each ad event billed or refused (with the reason).
    Billing {
        /// The campaign id.
        campaign: String,
        /// How many events to list, oldest first (1-1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[command(flatten)]
        conn: AdsConn,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Rebuild the active-campaign cache (Redis, or memory) from the campaign store.
    ///
    /// Reports every difference found: active campaigns missing from the
    /// cache, cached states that are not the store's, and cached campaigns
    /// that are not active. Reads the store directly (not through a running
    /// service). With --dry-run it only reports.
    Sync {
        /// Only report the differences; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Resume a paused campaign; refused if its advertiser's wallet cannot pay its smallest charge.
    Resume {
        /// The campaign id.
        campaign: String,
        #[command(flatten)]
        conn: AdsConn,
        #[command(flatten)]
        out: OutputOpts,
    },
}

#[derive(Tabled)]
struct Row {
    campaign_id: String,
    user_id: String,
    name: String,
    status: String,
    pricing: String,
    budget: String,
    spent: i64,
    version: i64,
}

fn row(c: &Value) -> Row {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let status = match c["status_reason"].as_str() {
        Some(reason) => format!("{} ({reason})", s(&c["status"])),
        None => s(&c["status"]),
    };
    let budget = match c["budget"]["daily"].as_i64() {
        Some(daily) => format!("{} (daily {daily})", c["budget"]["lifetime"]),
        None => c["budget"]["lifetime"].to_string(),
    };
    Row {
        campaign_id: s(&c["campaign_id"]),
        user_id: s(&c["user_id"]),
        name: s(&c["name"]),
        status,
        pricing: format!("{} {}", s(&c["pricing"]["model"]), c["pricing"]["price"]),
        budget,
        spent: c["spent"].as_i64().unwrap_or_default(),
        version: c["version"].as_i64().unwrap_or_default(),
    }
}

#[derive(Tabled)]
struct AssetRow {
    campaign_id: String,
    asset_id: String,
    content_type: String,
    size: i64,
}

#[derive(Tabled)]
struct BillingRow {
    campaign_id: String,
    impressions: i64,
    clicks: i64,
    spent: i64,
    unbilled: String,
}

#[derive(Tabled)]
struct EventRow {
    event_id: String,
    kind: String,
    status: String,
    amount: i64,
    reason: String,
}

fn event_row(e: &Value) -> EventRow {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    EventRow {
        event_id: s(&e["event_id"]),
        kind: s(&e["kind"]),
        status: s(&e["status"]),
        amount: e["amount"].as_i64().unwrap_or_default(),
        reason: s(&e["reason"]),
    }
}

fn client(g: &GlobalOpts, conn: &AdsConn) -> anyhow::Result<Client> {
    Client::of(g, conn.ads_url.clone(), conn.token.clone(), |c| {
        c.listen.ads
    })
}

/// Runs a campaigns command.
pub async fn run(g: &GlobalOpts, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::List {
            user,
            all,
            conn,
            out,
        } => {
            let query = if all { "?status=all" } else { "" };
            let v = client(g, &conn)?
                .get(&format!("/campaigns/{user}{query}"))
                .await?;
            let rows: Vec<Row> = v["campaigns"]
                .as_array()
                .map(|a| a.iter().map(row).collect())
                .unwrap_or_default();
            print(out.format, &v, rows)
        }
        Cmd::Show {
            campaign,
            conn,
            out,
        } => {
            let v = client(g, &conn)?
                .get(&format!("/campaign/{campaign}"))
                .await?;
            print(out.format, &v, [row(&v)])
        }
        Cmd::Create { file, conn, out } => {
            let mut text = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            }
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| crate::UsageError(format!("{} is not JSON: {e}", file.display())))?;
            let v = client(g, &conn)?.post("/campaigns", &body, None).await?;
            print(out.format, &v, [row(&v)])
        }
        Cmd::Sync { dry_run, out } => sync(g, dry_run, out).await,
        Cmd::Asset {
            campaign,
            file,
            conn,
            out,
        } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let kind = ImageType::sniff(&bytes).ok_or_else(|| {
                crate::UsageError(format!(
                    "{} is not a PNG, JPEG, GIF or WebP image",
                    file.display()
                ))
            })?;
            let c = client(g, &conn)?;
            let (http, base, token) = c.parts();
            let req = http
                .post(format!("{base}/campaigns/{campaign}/asset"))
                .bearer_auth(token)
                .header("content-type", kind.mime())
                .body(bytes);
            let (_, v) = Client::send_with_status(req).await?;
            print(
                out.format,
                &v,
                [AssetRow {
                    campaign_id: campaign,
                    asset_id: v["asset_id"].as_str().unwrap_or_default().to_owned(),
                    content_type: v["content_type"].as_str().unwrap_or_default().to_owned(),
                    size: v["size"].as_i64().unwrap_or_default(),
                }],
            )
        }
        Cmd::Billing {
            campaign,
            limit,
            conn,
            out,
        } => {
            let v = client(g, &conn)?
                .get(&format!("/campaign/{campaign}/billing?limit={limit}"))
                .await?;
            let t = &v["totals"];
            let n = |v: &Value| v.as_i64().unwrap_or_default();
            print(
                out.format,
                &v,
                [BillingRow {
                    campaign_id: campaign,
                    impressions: n(&t["impressions"]),
                    clicks: n(&t["clicks"]),
                    spent: n(&t["spent"]),
                    unbilled: {
                        let by: Vec<String> = t["unbilled_by_reason"]
                            .as_object()
                            .map(|m| m.iter().map(|(r, k)| format!("{r} {}", n(k))).collect())
                            .unwrap_or_default();
                        if by.is_empty() {
                            n(&t["unbilled"]).to_string()
                        } else {
                            format!("{} ({})", n(&t["unbilled"]), by.join(", "))
                        }
                    },
                }],
            )?;
            if out.format == crate::output::Format::Table {
                let events: Vec<EventRow> = v["events"]
                    .as_array()
                    .map(|a| a.iter().map(event_row).collect())
                    .unwrap_or_default();
                if !events.is_empty() {
                    println!("{}", tabled::Table::new(events));
                }
            }
            Ok(())
        }
        Cmd::Pause {
            campaign,
            conn,
            out,
        } => action(g, &campaign, &conn, out, "pause").await,
        Cmd::Resume {
            campaign,
            conn,
            out,
        } => action(g, &campaign, &conn, out, "resume").await,
    }
}

async fn action(
    g: &GlobalOpts,
    campaign: &str,
    conn: &AdsConn,
    out: OutputOpts,
    action: &str,
) -> anyhow::Result<()> {
    let v = client(g, conn)?
        .post(
            &format!("/campaigns/{campaign}/update"),
            &json!({ "action": action }),
            None,
        )
        .await?;
    print(out.format, &v, [row(&v)])
}

/// Balances are not needed to compare the cache with the store.
struct NoBalances;

#[async_trait::async_trait]
impl Balances for NoBalances {
    async fn balance(&self, _: &UserId) -> Result<Option<i64>, BalanceError> {
        Err(BalanceError("not used by sync".into()))
    }
}

#[derive(Tabled)]
struct SyncRow {
    checked: u64,
    missing: u64,
    stale: u64,
    orphaned: u64,
    result: String,
}

async fn sync(g: &GlobalOpts, dry_run: bool, out: OutputOpts) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let ttl = config.ads.balance_ttl_secs;
    let backends = Backends::open(config).await?;
    if backends.campaign_cache.kind() == "memory" {
        println!(
            "the embedded campaign cache lives in the memory of `walletctl serve` and is rebuilt from the store at every start: nothing to sync"
        );
        return Ok(());
    }
    let ads = AdsService::new(
        backends.campaigns.clone(),
        std::sync::Arc::new(NoBalances),
        backends.events.clone(),
        backends.campaign_cache.clone(),
        ttl,
    );
    // Drawn only on a terminal; hidden when the output is piped.
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} campaigns checked ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let report = ads.sync(dry_run, &|n| bar.set_position(n)).await?;
    bar.finish_and_clear();
    let differences = report.missing + report.stale + report.orphaned;
    let result = match (dry_run, differences) {
        (_, 0) => "the cache matches the store".to_owned(),
        (true, n) => format!("{n} difference(s) found; nothing changed (dry run)"),
        (false, n) => format!("{n} difference(s) repaired"),
    };
    print(
        out.format,
        &report,
        [SyncRow {
            checked: report.checked,
            missing: report.missing,
            stale: report.stale,
            orphaned: report.orphaned,
            result,
        }],
    )?;
    if out.format == crate::output::Format::Table {
        for line in &report.differences {
            println!("  {line}");
        }
    }
    Ok(())
}
