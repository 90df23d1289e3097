//! `walletctl bench pause` and `walletctl bench ingest`: advertising
//! management measured against a running `serve` and its backends.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use tabled::Tabled;
use walletctl_core::Backends;
use walletctl_core::events::{Record, topic};

use crate::GlobalOpts;
use crate::client::{Client, ConnOpts};
use crate::output::{OutputOpts, print};

/// What a pause-latency run measured.
#[derive(Debug, Serialize, Tabled)]
pub struct PauseReport {
    /// Runs measured.
    pub runs: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// What an ingest run measured.
#[derive(Debug, Serialize, Tabled)]
pub struct IngestReport {
    /// Events published.
    pub events: u64,
    /// Seconds from the first publish until every campaign was stored.
    pub seconds: f64,
    /// Campaigns stored per second.
    pub per_second: f64,
}

pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// The time from the deduction that empties a wallet until its campaign is
/// gone from both `GET /campaigns/{userId}` and the cache's active pool, over
/// `runs` fresh advertisers.
pub async fn pause(
    g: &GlobalOpts,
    runs: u64,
    conn: ConnOpts,
    ads_url: Option<String>,
    out: OutputOpts,
) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let backends = Backends::open(config).await?;
    let wallet = Client::new(g, &conn)?;
    let ads = Client::of(g, ads_url, conn.token.clone(), |c| c.listen.ads)?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let progress = bar(runs, "pause latency");
    for i in 0..runs {
        let user = format!("pause{run_id}x{i}");
        let id = format!("pc-{run_id}-{i}");
        wallet
            .post(
                &format!("/wallet/{user}"),
                &json!({"region": "SOUTH_EAST"}),
                None,
            )
            .await?;
        wallet
            .post(
                &format!("/wallet/{user}/credit"),
                &json!({"amount": 1000}),
                Some(&format!("{id}-fund")),
            )
            .await?;
        let body = json!({
            "campaign_id": id, "user_id": user, "name": "bench",
            "pricing": {"model": "cpc", "price": 1000}, "budget": {"lifetime": 1_000_000, "daily": null},
            "creative": {"title": "bench", "asset_url": "https://cdn.example/b.png", "landing_url": "https://b.example/"}
        });
        ads.post("/campaigns", &body, None).await?;
        // Served before we start: listed as active and in the cache's pool.
        let listed = || async {
            let v = ads.get(&format!("/campaigns/{user}")).await?;
            anyhow::Ok(v["campaigns"].as_array().is_some_and(|a| !a.is_empty()))
        };
        // The embedded cache lives in the serve process: only the HTTP answer shows there.
        let shared_cache = backends.campaign_cache.kind() != "memory";
        let cached = || async {
            anyhow::Ok(shared_cache && backends.campaign_cache.get(&id).await?.is_some())
        };
        let ready_by = Instant::now() + Duration::from_secs(30);
        while !(listed().await? && (cached().await? || !shared_cache)) {
            anyhow::ensure!(
                Instant::now() < ready_by,
                "campaign {id} never became active in the cache"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let start = Instant::now();
        wallet
            .post(
                &format!("/wallet/{user}/deduct"),
                &json!({"amount": 1000}),
                Some(&format!("{id}-drain")),
            )
            .await?;
        let gone_by = start + Duration::from_secs(60);
        while listed().await? || cached().await? {
            anyhow::ensure!(Instant::now() < gone_by, "campaign {id} was never paused");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        hist.record(start.elapsed().as_micros() as u64)?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
    let report = PauseReport {
        runs,
        p50_ms: ms(hist.value_at_quantile(0.50)),
        p99_ms: ms(hist.value_at_quantile(0.99)),
        max_ms: ms(hist.max()),
    };
    print(out.format, &report, [&report])
}

/// Publishes `events` new campaigns to `campaign_created` and measures how
/// fast the running ads service stores them.
pub async fn ingest(g: &GlobalOpts, events: u64, out: OutputOpts) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let backends = Backends::open(config).await?;
    backends.events.ensure_topics().await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let payloads: Vec<(String, String)> = (0..events)
        .map(|i| {
            let id = format!("ing-{run_id}-{i:07}");
            let body = json!({
                "campaign_id": id, "user_id": format!("ingest{run_id}"), "name": "ingest",
                "pricing": {"model": "cpm", "price": 2000}, "budget": {"lifetime": 1_000_000, "daily": null},
                "creative": {"title": "t", "asset_url": "https://cdn.example/i.png", "landing_url": "https://i.example/"}
            });
            (id, body.to_string())
        })
        .collect();
    let progress = bar(events, "campaigns stored");
    let start = Instant::now();
    for chunk in payloads.chunks(200) {
        let records: Vec<Record<'_>> = chunk
            .iter()
            .map(|(id, p)| Record {
                topic: topic::CAMPAIGN_CREATED,
                key: id,
                payload: p,
            })
            .collect();
        backends.events.publish(&records).await?;
    }
    // Stored when the last one is (one partition keeps them in order; with more,
    // every one is checked).
    let mut stored = 0;
    let deadline = start + Duration::from_secs(600);
    while stored < events {
        let id = walletctl_core::domain::CampaignId::parse(&payloads[stored as usize].0)?;
        if backends.campaigns.get(&id).await?.is_some() {
            stored += 1;
            progress.set_position(stored);
        } else {
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {stored} of {events} campaigns were stored"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let report = IngestReport {
        events,
        seconds: (seconds * 100.0).round() / 100.0,
        per_second: (events as f64 / seconds).round(),
    };
    print(out.format, &report, [&report])
}
