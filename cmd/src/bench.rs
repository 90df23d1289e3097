//! `walletctl bench`: measured load against a running wallet service.
//! `scripts/bench` runs these beside `pgbench` and writes `docs/benchmarks.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Subcommand;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde::Serialize;
use tabled::Tabled;
use tokio::sync::Mutex;

use crate::GlobalOpts;
use crate::bench_http::{Conn, Req};
use crate::client::{Client, ConnOpts};
use crate::output::{OutputOpts, print};
use hyper::body::Bytes;

/// Load generators. Wallets `{prefix}0 .. {prefix}{users-1}` must exist
/// (`scripts/bench` seeds them).
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Closed loop: CONCURRENCY workers each deduct from a random wallet, sending the next request when the last is answered.
    Deduct {
        /// How many wallets to spread over (1 = one hot wallet).
        #[arg(long, default_value_t = 100_000)]
        users: u32,
        /// Wallet id prefix.
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// Concurrent requests.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Minor units per deduction.
        #[arg(long, default_value_t = 1)]
        amount: i64,
        #[command(flatten)]
        conn: ConnOpts,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Open loop: balance reads at a fixed RATE per second from random wallets; latency counts from each read's scheduled time.
    Read {
        /// How many wallets to spread over.
        #[arg(long, default_value_t = 100_000)]
        users: u32,
        /// Wallet id prefix.
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// Reads per second.
        #[arg(long, default_value_t = 1_000)]
        rate: u32,
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Seconds of the same load before measuring (fills connection pools and caches).
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Closed loop instead: this many workers, each reading as soon as
        /// the last read is answered (throughput, not latency at a rate).
        #[arg(long, conflicts_with = "rate")]
        concurrency: Option<usize>,
        #[command(flatten)]
        conn: ConnOpts,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Pause latency: from the deduction that empties an advertiser's wallet until its
    /// campaign is gone from GET /campaigns/{userId} and from the cache's active pool.
    ///
    /// Each run funds a fresh advertiser with one click, creates a campaign, waits until it
    /// is served, drains the wallet and times the pause. Needs the wallet and ads services
    /// running, and this process configured like them (it reads the cache).
    Pause {
        /// How many advertisers to measure.
        #[arg(long, default_value_t = 100)]
        runs: u64,
        #[command(flatten)]
        conn: ConnOpts,
        /// Ads management service URL. Default: http:// plus [listen] ads.
        #[arg(long, env = "WALLETCTL_ADS_URL")]
        ads_url: Option<String>,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// Ad decisions against a trivial axum endpoint answering 204, with the same load in
    /// the same run; then impressions from beacon to charged ledger entry.
    ///
    /// Seeds CAMPAIGNS funded CPM campaigns, waits until the display service serves them
    /// all (the pool is warm), runs CONCURRENCY connections for SECONDS against each, then
    /// fires IMPRESSIONS beacons and waits until billing has recorded every one. Needs the
    /// three services running, and this process configured like them (it reads the store).
    Display {
        /// Active campaigns to seed.
        #[arg(long, default_value_t = 100)]
        campaigns: u32,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// How long each load runs, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Impressions to fire and bill.
        #[arg(long, default_value_t = 5_000)]
        impressions: u64,
        #[command(flatten)]
        conn: ConnOpts,
        /// Ads management service URL. Default: http:// plus [listen] ads.
        #[arg(long, env = "WALLETCTL_ADS_URL")]
        ads_url: Option<String>,
        /// Ad display service URL. Default: http:// plus [listen] display.
        #[arg(long)]
        display_url: Option<String>,
        #[command(flatten)]
        out: OutputOpts,
    },
    /// The baseline of `bench display`: serves GET / with 204 and prints its address.
    #[command(hide = true)]
    NoopServer {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Ingest rate: publish EVENTS new campaigns to campaign_created and time until the
    /// running ads service has stored them all.
    Ingest {
        /// How many campaigns to publish.
        #[arg(long, default_value_t = 2_000)]
        events: u64,
        #[command(flatten)]
        out: OutputOpts,
    },
}

/// What a run measured.
#[derive(Debug, Serialize, Tabled)]
pub struct Report {
    /// `deduct` or `read`.
    pub kind: String,
    /// Requests answered.
    pub requests: u64,
    /// 2xx answers.
    pub ok: u64,
    /// 409 answers (refused deductions).
    pub refused: u64,
    /// Anything else, including transport failures.
    pub errors: u64,
    /// Answered requests per second.
    pub throughput: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
}

impl Counts {
    fn record(&self, status: Option<u16>) {
        match status {
            Some(s) if (200..300).contains(&s) => &self.ok,
            Some(409) => &self.refused,
            _ => &self.errors,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads the whole answer (so the connection is reused) and returns its status; `None` on a transport failure.
async fn drain(res: reqwest::Result<reqwest::Response>) -> Option<u16> {
    let r = res.ok()?;
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    Some(status)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

fn progress(seconds: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(seconds);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}s")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    let b = bar.clone();
    tokio::spawn(async move {
        for _ in 0..seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            b.inc(1);
        }
    });
    bar
}

fn report(kind: &str, counts: &Counts, hist: &Histogram<u64>, elapsed: Duration) -> Report {
    let (ok, refused, errors) = (
        counts.ok.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
    );
    let ms = |us: u64| us as f64 / 1000.0;
    Report {
        kind: kind.into(),
        requests: ok + refused + errors,
        ok,
        refused,
        errors,
        throughput: ((ok + refused + errors) as f64 / elapsed.as_secs_f64() * 10.0).round() / 10.0,
        p50_ms: ms(hist.value_at_quantile(0.50)),
        p99_ms: ms(hist.value_at_quantile(0.99)),
        max_ms: ms(hist.max()),
    }
}

/// Closed loop: `concurrency` workers, each on its own keep-alive
/// connection ([`crate::bench_http`]), each send the request `make` builds
/// as soon as the last one is answered, for `seconds`.
async fn closed_loop<F>(
    client: &Arc<Client>,
    kind: &str,
    concurrency: usize,
    seconds: u64,
    make: F,
) -> anyhow::Result<Report>
where
    F: Fn() -> Req + Clone + Send + Sync + 'static,
{
    let (_, base, token) = client.parts();
    let conns = (0..concurrency.max(1))
        .map(|_| Conn::new(base, token))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let counts = Arc::new(Counts::default());
    let bar = progress(seconds, kind);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let workers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (counts, make) = (counts.clone(), make.clone());
            tokio::spawn(async move {
                let mut hist = histogram();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let status = conn.send(make()).await;
                    hist.saturating_record(t.elapsed().as_micros() as u64);
                    counts.record(status);
                }
                hist
            })
        })
        .collect();
    let mut hist = histogram();
    for w in workers {
        hist.add(w.await?)?;
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    Ok(report(kind, &counts, &hist, elapsed))
}

/// Runs a bench command.
pub async fn run(g: &GlobalOpts, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Pause {
            runs,
            conn,
            ads_url,
            out,
        } => crate::bench_ads::pause(g, runs, conn, ads_url, out).await,
        Cmd::Ingest { events, out } => crate::bench_ads::ingest(g, events, out).await,
        Cmd::Display {
            campaigns,
            concurrency,
            seconds,
            impressions,
            conn,
            ads_url,
            display_url,
            out,
        } => {
            crate::bench_display::display(
                g,
                campaigns,
                concurrency,
                seconds,
                impressions,
                conn,
                ads_url,
                display_url,
                out,
            )
            .await
        }
        Cmd::NoopServer { listen } => crate::bench_display::noop_server(&listen).await,
        Cmd::Deduct {
            users,
            prefix,
            concurrency,
            seconds,
            amount,
            conn,
            out,
        } => {
            let client = Arc::new(Client::new(g, &conn)?);
            let body = Bytes::from(serde_json::json!({ "amount": amount }).to_string());
            let r = closed_loop(&client, "deduct", concurrency, seconds, move || {
                let user = rand::rng().random_range(0..users.max(1));
                Req {
                    method: hyper::Method::POST,
                    path: format!("/wallet/{prefix}{user}/deduct"),
                    key: Some(uuid::Uuid::new_v4().to_string()),
                    body: Some(body.clone()),
                }
            })
            .await?;
            print(out.format, &r, [&r])
        }
        Cmd::Read {
            users,
            prefix,
            rate: _,
            seconds,
            warmup,
            concurrency: Some(concurrency),
            conn,
            out,
        } => {
            let client = Arc::new(Client::new(g, &conn)?);
            let read = move || {
                let user = rand::rng().random_range(0..users.max(1));
                Req {
                    method: hyper::Method::GET,
                    path: format!("/wallet/{prefix}{user}/balance"),
                    key: None,
                    body: None,
                }
            };
            if warmup > 0 {
                closed_loop(&client, "read", concurrency, warmup, read.clone()).await?;
            }
            let r = closed_loop(&client, "read", concurrency, seconds, read).await?;
            print(out.format, &r, [&r])
        }
        Cmd::Read {
            users,
            prefix,
            rate,
            seconds,
            warmup,
            concurrency: None,
            conn,
            out,
        } => {
            let client = Arc::new(Client::new(g, &conn)?);
            if warmup > 0 {
                open_loop(&client, &prefix, users, rate, warmup, None).await;
            }
            let sink: Sink = (
                Arc::new(Counts::default()),
                Arc::new(Mutex::new(histogram())),
            );
            let bar = progress(seconds, "read");
            let start = Instant::now();
            open_loop(&client, &prefix, users, rate, seconds, Some(sink.clone())).await;
            let elapsed = start.elapsed();
            bar.finish_and_clear();
            let r = report("read", &sink.0, &*sink.1.lock().await, elapsed);
            print(out.format, &r, [&r])
        }
    }
}

/// Where an open loop records: counts and latencies.
type Sink = (Arc<Counts>, Arc<Mutex<Histogram<u64>>>);

/// Sends `rate` balance reads a second for `seconds`, each to a random
/// wallet, without waiting for earlier answers; records into `sink` if given.
/// Latency counts from each read's scheduled time, so a slow answer cannot
/// hide the reads queued behind it.
async fn open_loop(
    client: &Arc<Client>,
    prefix: &str,
    users: u32,
    rate: u32,
    seconds: u64,
    sink: Option<Sink>,
) {
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..u64::from(rate) * seconds {
        let scheduled = ticker.tick().await;
        let (client, sink, prefix) = (client.clone(), sink.clone(), prefix.to_owned());
        let user = rand::rng().random_range(0..users.max(1));
        tasks.spawn(async move {
            let (http, base, token) = client.parts();
            let res = http
                .get(format!("{base}/wallet/{prefix}{user}/balance"))
                .bearer_auth(token)
                .send()
                .await;
            let status = drain(res).await;
            if let Some((counts, hist)) = sink {
                hist.lock()
                    .await
                    .saturating_record(scheduled.elapsed().as_micros() as u64);
                counts.record(status);
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}
