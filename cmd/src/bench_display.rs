//! `walletctl bench display`: ad decisions against a trivial axum endpoint
//! in the same run, and impressions from beacon to charged entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use tabled::Tabled;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Mutex;
use walletctl_core::Backends;

use crate::GlobalOpts;
use crate::bench_ads::bar;
use crate::client::{Client, ConnOpts};
use crate::output::{OutputOpts, print};

/// One closed-loop load run.
#[derive(Debug, Clone, Serialize, Tabled)]
pub struct Load {
    /// What was asked for.
    pub target: String,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Anything else.
    pub errors: u64,
    /// Answered requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// What `bench display` measured.
#[derive(Debug, Serialize)]
pub struct DisplayReport {
    /// Active campaigns in the pool.
    pub campaigns: u32,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Seconds per load run.
    pub seconds: u64,
    /// The trivial axum endpoint answering 204.
    pub baseline: Load,
    /// `GET /ads`.
    pub decisions: Load,
    /// decisions.rps / baseline.rps.
    pub ratio: f64,
    /// Impressions fired.
    pub impressions: u64,
    /// Beacons answered per second.
    pub beacons_per_s: f64,
    /// Impressions billed per second, from the first beacon until the last is charged.
    pub billed_per_s: f64,
}

/// Serves `GET /` with 204 on `listen` and prints the bound address: the
/// baseline `bench display` measures against (a separate process, like `serve`).
pub async fn noop_server(listen: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// Closed loop: `concurrency` workers GET `url` for `seconds` after one second of warm-up.
async fn load(url: &str, target: &str, concurrency: usize, seconds: u64) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .build()?;
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let (ok, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let recording = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let warm_until = start + Duration::from_secs(1);
    let end = warm_until + Duration::from_secs(seconds);
    let workers = (0..concurrency).map(|_| {
        let (http, url) = (http.clone(), url.to_owned());
        let (hist, ok, errors, recording) =
            (hist.clone(), ok.clone(), errors.clone(), recording.clone());
        async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            while Instant::now() < end {
                let t = Instant::now();
                let res = http.get(&url).send().await;
                let good = match res {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if t < warm_until {
                    continue;
                }
                recording.store(true, Ordering::Relaxed);
                if good {
                    ok.fetch_add(1, Ordering::Relaxed);
                    let _ = local.record(t.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = hist.lock().await.add(&local);
        }
    });
    let handles: Vec<_> = workers.map(tokio::spawn).collect();
    for h in handles {
        h.await?;
    }
    let hist = hist.lock().await;
    let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
    let ok = ok.load(Ordering::Relaxed);
    Ok(Load {
        target: target.to_owned(),
        ok,
        errors: errors.load(Ordering::Relaxed),
        rps: (ok as f64 / seconds as f64).round(),
        p50_ms: ms(hist.value_at_quantile(0.50)),
        p99_ms: ms(hist.value_at_quantile(0.99)),
    })
}

/// The run: seed `campaigns` funded CPM campaigns, wait until the display
/// service serves them, measure the baseline and `GET /ads` with the same
/// load, then fire `impressions` beacons and time them until charged.
#[allow(clippy::too_many_arguments)]
pub async fn display(
    g: &GlobalOpts,
    campaigns: u32,
    concurrency: usize,
    seconds: u64,
    impressions: u64,
    conn: ConnOpts,
    ads_url: Option<String>,
    display_url: Option<String>,
    out: OutputOpts,
) -> anyhow::Result<()> {
    let config = g.load_config()?;
    let display = display_url.unwrap_or_else(|| format!("http://{}", config.listen.display));
    let backends = Backends::open(config).await?;
    let wallet = Client::new(g, &conn)?;
    let ads = Client::of(g, ads_url, conn.token.clone(), |c| c.listen.ads)?;
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let ids: Vec<String> = (0..campaigns).map(|i| format!("bd-{run}-{i}")).collect();

    let seeding = bar(u64::from(campaigns), "seeding campaigns");
    for chunk in (0..campaigns).collect::<Vec<_>>().chunks(16) {
        let made = chunk.iter().map(|&i| {
            let (wallet, ads, run) = (&wallet, &ads, &run);
            async move {
                let user = format!("bd{run}x{i}");
                wallet
                    .post(&format!("/wallet/{user}"), &json!({"region": "SOUTH_EAST"}), None)
                    .await?;
                wallet
                    .post(
                        &format!("/wallet/{user}/credit"),
                        &json!({"amount": 1_000_000_000_000_i64}),
                        Some(&format!("bd-{run}-{i}-fund")),
                    )
                    .await?;
                let body = json!({
                    "campaign_id": format!("bd-{run}-{i}"), "user_id": user, "name": "bench",
                    "pricing": {"model": "cpm", "price": 1_000 + 10 * i64::from(i)},
                    "budget": {"lifetime": 1_000_000_000_000_i64, "daily": null},
                    "creative": {"title": "bench", "asset_url": "https://cdn.example/b.png", "landing_url": "https://b.example/"}
                });
                ads.post("/campaigns", &body, None).await?;
                anyhow::Ok(())
            }
        });
        for r in join_all(made).await {
            r?;
        }
        seeding.inc(chunk.len() as u64);
    }
    seeding.finish_and_clear();
    // Warm: every campaign of this run in the pool the display service holds.
    let http = reqwest::Client::new();
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        let pool = ads.get("/campaigns").await?;
        let held = pool["campaigns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|c| {
                        c["campaign_id"]
                            .as_str()
                            .is_some_and(|id| id.starts_with(&format!("bd-{run}-")))
                    })
                    .count()
            })
            .unwrap_or(0);
        let serving = http
            .get(format!("{display}/ads?slot=bench"))
            .send()
            .await?
            .status()
            == 200;
        if held == campaigns as usize && serving {
            break;
        }
        anyhow::ensure!(
            Instant::now() < ready_by,
            "the display service never served the campaigns"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One more candidate refresh so the display holds the whole pool.
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // The baseline, a process of its own like serve.
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["bench", "noop-server", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = lines
        .next_line()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the baseline server did not start"))?;
    eprintln!("[bench display] baseline: {concurrency} connections for {seconds} s");
    let baseline = load(
        &format!("http://{addr}/"),
        "axum 204 (baseline)",
        concurrency,
        seconds,
    )
    .await?;
    child.kill().await.ok();
    eprintln!("[bench display] GET /ads: {concurrency} connections for {seconds} s");
    let decisions = load(
        &format!("{display}/ads?slot=bench"),
        "GET /ads",
        concurrency,
        seconds,
    )
    .await?;

    // Impressions, beacon to charged entry.
    let mut urls = Vec::with_capacity(impressions as usize);
    while (urls.len() as u64) < impressions {
        let batch = join_all((0..concurrency).map(|_| async {
            let v: Value = http
                .get(format!("{display}/ads?slot=beacon"))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(v["impression_url"].as_str().unwrap_or_default().to_owned())
        }))
        .await;
        for u in batch {
            let u = u?;
            if !u.is_empty() && (urls.len() as u64) < impressions {
                urls.push(u);
            }
        }
    }
    let before = billed(&backends, &ids).await?;
    let firing = bar(impressions, "beacons");
    let start = Instant::now();
    for chunk in urls.chunks(concurrency) {
        for r in join_all(chunk.iter().map(|u| http.get(u).send())).await {
            anyhow::ensure!(r?.status().as_u16() == 204, "a beacon was refused");
        }
        firing.inc(chunk.len() as u64);
    }
    let beacon_secs = start.elapsed().as_secs_f64();
    firing.finish_and_clear();
    let charging = bar(impressions, "billed");
    let done_by = Instant::now() + Duration::from_secs(600);
    loop {
        let n = billed(&backends, &ids).await? - before;
        charging.set_position(n);
        if n >= impressions {
            break;
        }
        anyhow::ensure!(
            Instant::now() < done_by,
            "only {n} of {impressions} impressions billed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let billed_secs = start.elapsed().as_secs_f64();
    charging.finish_and_clear();
    let report = DisplayReport {
        campaigns,
        concurrency,
        seconds,
        ratio: (decisions.rps / baseline.rps.max(1.0) * 100.0).round() / 100.0,
        baseline: baseline.clone(),
        decisions: decisions.clone(),
        impressions,
        beacons_per_s: (impressions as f64 / beacon_secs).round(),
        billed_per_s: (impressions as f64 / billed_secs).round(),
    };
    print(out.format, &report, [baseline, decisions])?;
    if out.format == crate::output::Format::Table {
        println!(
            "ratio {:.2}; {impressions} impressions: beacons {:.0}/s, billed {:.0}/s end to end",
            report.ratio, report.beacons_per_s, report.billed_per_s
        );
    }
    Ok(())
}

/// Ad events of these campaigns recorded by billing so far.
async fn billed(backends: &Backends, ids: &[String]) -> anyhow::Result<u64> {
    let mut n = 0;
    for id in ids {
        if let Some(b) = backends.billing.campaign_billing(id).await? {
            n += (b.impressions + b.clicks + b.unbilled) as u64;
        }
    }
    Ok(n)
}
