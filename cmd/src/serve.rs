//! `walletctl serve`.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Args, ValueEnum};
use tokio::net::TcpListener;
use walletctl_core::Backends;
use walletctl_daemon::Listeners;

use crate::GlobalOpts;

/// `walletctl serve`'s options (its help text is on `Command::Serve`).
#[derive(Debug, Args)]
pub struct Opts {
    /// Run only these services (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<ServiceArg>,
}

/// A service name for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceArg {
    /// Balances and money movements.
    Wallet,
    /// Advertising campaign management.
    Ads,
    /// Ad serving.
    Display,
}

async fn bind(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {name} service to {addr}"))
}

/// Runs `serve`.
pub async fn run(g: &GlobalOpts, opts: Opts) -> anyhow::Result<()> {
    let config = g.load_config()?;
    walletctl_daemon::http::telemetry::init_tracing(&config.log);
    let on = |s: ServiceArg| opts.only.is_empty() || opts.only.contains(&s);
    let listen = config.listen.clone();
    let listeners = Listeners {
        wallet: if on(ServiceArg::Wallet) {
            Some(bind(listen.wallet, "wallet").await?)
        } else {
            None
        },
        ads: if on(ServiceArg::Ads) {
            Some(bind(listen.ads, "ads").await?)
        } else {
            None
        },
        display: if on(ServiceArg::Display) {
            Some(bind(listen.display, "display").await?)
        } else {
            None
        },
        admin: Some(bind(listen.admin, "admin").await?),
    };
    tracing::info!(
        data_dir = %config.data_dir.display(),
        store = if config.postgres.is_some() { "postgres" } else { "embedded" },
        events = if config.kafka.is_some() { "kafka" } else { "embedded" },
        locks = if config.redis.is_some() { "redis" } else { "memory" },
        "starting walletctl"
    );
    let backends = Backends::open(config).await?;
    walletctl_daemon::serve(backends, listeners, stop_signals()).await
}

/// One item per SIGINT (Ctrl-C) or SIGTERM: the first starts a graceful
/// stop, a second cuts its drain short. Installed once the backends are
/// open, so a signal that arrives while serve prepares is kept for it.
fn stop_signals() -> futures::stream::BoxStream<'static, ()> {
    use futures::StreamExt;
    use tokio::signal::unix::{SignalKind, signal};
    let (mut interrupt, mut terminate) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot listen for SIGINT/SIGTERM; stop serve with SIGKILL");
            return futures::stream::pending().boxed();
        }
    };
    futures::stream::poll_fn(
        move |cx| match (interrupt.poll_recv(cx), terminate.poll_recv(cx)) {
            (std::task::Poll::Pending, std::task::Poll::Pending) => std::task::Poll::Pending,
            _ => std::task::Poll::Ready(Some(())),
        },
    )
    .boxed()
}
