//! The test harness: each test gets its own isolated world, in either mode.
//!
//! * **Embedded**: a fresh temporary data directory (SQLite store and event log).
//! * **Distributed**: the real stack from `scripts/stack up`, with a fresh
//!   PostgreSQL database (migrated by the app, replicated to both standbys),
//!   a Redis key prefix, Kafka topic prefix and MongoDB database, all named
//!   after a random test id, so tests run in parallel.
//!
//! [`TestEnv::spawn`] starts `serve` in-process on port 0, exactly as the
//! binary does. [`proxy::Proxy`] sits in front of a backend so a test can cut
//! it off without disturbing other tests.

pub mod proxy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use walletctl_core::{Backends, Config};
use walletctl_daemon::Listeners;

/// Which world a test runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing installed: SQLite store and event log in a temp dir.
    Embedded,
    /// The real stack.
    Distributed,
}

/// Where `scripts/stack up` wrote its configuration.
pub fn stack_config_path() -> PathBuf {
    let dir =
        std::env::var_os("WALLETCTL_STACK_DIR").unwrap_or_else(|| "/tmp/walletctl-stack".into());
    PathBuf::from(dir).join("walletctl.toml")
}

/// The stack's configuration; panics with the fix if the stack is not up.
pub fn stack_config() -> Config {
    let path = stack_config_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("distributed tests need the real stack: run `scripts/test` (or `scripts/stack up`) first ({}: {e})", path.display()));
    Config::from_toml(&text).expect("the stack's configuration parses")
}

/// Replaces the database name at the end of a connection URL's path.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (prefix, _) = base.rsplit_once('/').expect("URL has a path");
    match query {
        Some(q) => format!("{prefix}/{db}?{q}"),
        None => format!("{prefix}/{db}"),
    }
}

/// One test's isolated world.
pub struct TestEnv {
    /// The mode.
    pub mode: Mode,
    /// The configuration `serve` gets.
    pub config: Config,
    /// The unique id names are made from.
    pub id: String,
    _dir: tempfile::TempDir,
    database: Option<(String, String)>,
}

impl TestEnv {
    /// A fresh world.
    pub async fn new(mode: Mode) -> TestEnv {
        let id = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = match mode {
            Mode::Embedded => Config::default(),
            Mode::Distributed => stack_config(),
        };
        config.data_dir = dir.path().to_owned();
        config.wallet.relay_interval_ms = 50;
        let mut database = None;
        if let Some(pg) = config.postgres.as_mut() {
            let direct = pg.direct_url.clone().expect("the stack sets direct_url");
            let admin = with_database(direct.expose(), "postgres");
            create_database(&admin, &id).await;
            pg.url = walletctl_core::config::SecretUrl::new(with_database(pg.url.expose(), &id));
            pg.direct_url = Some(walletctl_core::config::SecretUrl::new(with_database(
                direct.expose(),
                &id,
            )));
            pg.pool_size = 8;
            for r in pg.replicas.values_mut() {
                r.url = walletctl_core::config::SecretUrl::new(with_database(r.url.expose(), &id));
                r.pool_size = 4;
            }
            database = Some((admin, id.clone()));
        }
        if let Some(r) = config.redis.as_mut() {
            r.key_prefix = format!("{id}:");
        }
        if let Some(k) = config.kafka.as_mut() {
            k.topic_prefix = format!("{id}.");
            k.partitions = 2;
        }
        if let Some(m) = config.mongodb.as_mut() {
            m.database = id.clone();
        }
        TestEnv {
            mode,
            config,
            id,
            _dir: dir,
            database,
        }
    }

    /// Sends group commits to sessions on the primary itself
    /// (`postgres.commit_url`: the app role's credentials, the primary's
    /// address), bypassing PgBouncer.
    pub fn commit_on_primary_sessions(&mut self) {
        let pg = self
            .config
            .postgres
            .as_mut()
            .expect("commit_url is a distributed setting");
        let direct = pg.direct_url.clone().expect("the stack sets direct_url");
        let mut url = reqwest::Url::parse(pg.url.expose()).expect("url");
        let primary = reqwest::Url::parse(direct.expose()).expect("direct_url");
        url.set_port(primary.port()).expect("a port");
        pg.commit_url = Some(walletctl_core::config::SecretUrl::new(url.to_string()));
    }

    /// Opens this world's backends (as a second process would).
    pub async fn backends(&self) -> Backends {
        Backends::open(self.config.clone())
            .await
            .expect("backends open")
    }

    /// Runs one SQL statement on this world's wallet store as its owner
    /// (the PostgreSQL database, or the embedded SQLite file): for tests
    /// that plant what the services would never write.
    pub async fn sql(&self, statement: &str) {
        use sqlx::Connection;
        match &self.config.postgres {
            Some(pg) => {
                let url = pg
                    .direct_url
                    .as_ref()
                    .unwrap_or(&pg.url)
                    .expose()
                    .to_owned();
                let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
                sqlx::query(statement)
                    .execute(&mut conn)
                    .await
                    .expect(statement);
            }
            None => {
                let url = format!("sqlite://{}", self.config.embedded_db_path().display());
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("connect");
                sqlx::query(statement)
                    .execute(&mut conn)
                    .await
                    .expect(statement);
            }
        }
    }

    /// Starts all three services in-process on port 0.
    pub async fn spawn(&self) -> App {
        App::start(self.config.clone()).await
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Best effort: a stack torn down by scripts/test takes everything anyway.
        if let Some((admin, db)) = self.database.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

async fn create_database(admin_url: &str, name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to the stack's primary");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create the test database");
}

/// A running `serve`.
pub struct App {
    /// Base URL of the wallet service.
    pub wallet: String,
    /// Base URL of the ads management service.
    pub ads: String,
    /// Base URL of the ad display service.
    pub display: String,
    /// Base URL of the admin listener (`/metrics`, no token).
    pub admin: String,
    /// The operator token (all scopes) written on first run.
    pub token: String,
    /// A client.
    pub http: reqwest::Client,
    stop: Option<mpsc::UnboundedSender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A sender of stop signals, as SIGTERM would give, and the stream `serve`
/// reads them from (it ends when the sender is dropped).
fn stop_signals() -> (
    mpsc::UnboundedSender<()>,
    impl futures::Stream<Item = ()> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let signals =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|()| ((), rx)) },
        );
    (tx, signals)
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let a = l.local_addr().expect("local addr");
    (l, a)
}

impl App {
    /// Starts `serve` with `config` and waits until the wallet service answers.
    pub async fn start(config: Config) -> App {
        let token_path = config.operator_token_path();
        let backends = Backends::open(config).await.expect("backends open");
        let ((w, wa), (a, aa), (d, da)) = (listener().await, listener().await, listener().await);
        let (m, ma) = listener().await;
        let (tx, signals) = stop_signals();
        let task = tokio::spawn(walletctl_daemon::serve(
            backends,
            Listeners {
                wallet: Some(w),
                ads: Some(a),
                display: Some(d),
                admin: Some(m),
            },
            signals,
        ));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let wallet = format!("http://{wa}");
        for _ in 0..300 {
            if http
                .get(format!("{wallet}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
                && token_path.exists()
            {
                break;
            }
            if task.is_finished() {
                let res = task.await;
                panic!("serve stopped during start-up: {res:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let token = std::fs::read_to_string(&token_path)
            .expect("operator token written")
            .trim()
            .to_owned();
        App {
            wallet,
            ads: format!("http://{aa}"),
            display: format!("http://{da}"),
            admin: format!("http://{ma}"),
            token,
            http,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Starts a second ad display instance only (as a load balancer would
    /// have several), reading candidates from `management`'s ads service.
    pub async fn start_display(mut config: Config, management: &App) -> App {
        config.display.management_url = Some(management.ads.clone());
        let backends = Backends::open(config).await.expect("backends open");
        let (d, da) = listener().await;
        let (tx, signals) = stop_signals();
        let task = tokio::spawn(walletctl_daemon::serve(
            backends,
            Listeners {
                display: Some(d),
                ..Listeners::default()
            },
            signals,
        ));
        let display = format!("http://{da}");
        for _ in 0..300 {
            if management
                .http
                .get(format!("{display}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(
                !task.is_finished(),
                "the display instance stopped during start-up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        App {
            wallet: management.wallet.clone(),
            ads: management.ads.clone(),
            display,
            admin: management.admin.clone(),
            token: management.token.clone(),
            http: management.http.clone(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// GET on the wallet service with the operator token: (status, body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(
            self.http
                .get(format!("{}{path}", self.wallet))
                .bearer_auth(&self.token),
        )
        .await
    }

    /// POST JSON on the wallet service with the operator token and an optional idempotency key.
    pub async fn post(&self, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.wallet))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req).await
    }

    /// Sends any request: (status, JSON body or Null).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Creates a wallet and credits it.
    pub async fn wallet_with(&self, user: &str, region: &str, balance: i64) {
        let (s, b) = self
            .post(
                &format!("/wallet/{user}"),
                serde_json::json!({ "region": region }),
                None,
            )
            .await;
        assert_eq!(s, 201, "create {user}: {b}");
        if balance > 0 {
            let key = format!("seed-{user}-{}", uuid::Uuid::new_v4());
            let (s, b) = self
                .post(
                    &format!("/wallet/{user}/credit"),
                    serde_json::json!({ "amount": balance }),
                    Some(&key),
                )
                .await;
            assert_eq!(s, 200, "credit {user}: {b}");
        }
    }

    /// The balance read strongly.
    pub async fn balance(&self, user: &str) -> i64 {
        let (s, b) = self
            .get(&format!("/wallet/{user}/balance?consistency=strong"))
            .await;
        assert_eq!(s, 200, "balance {user}: {b}");
        b["balance"].as_i64().expect("balance is an integer")
    }

    /// The process's Prometheus text, from the admin listener.
    pub async fn metrics(&self) -> String {
        let res = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .expect("metrics answered");
        res.text().await.expect("metrics text")
    }

    /// Sends the stop signal without waiting for `serve` to end.
    pub fn signal_stop(&mut self) {
        if let Some(tx) = &self.stop {
            let _ = tx.send(());
        }
    }

    /// Waits for `serve` to end, sending nothing (after [`App::signal_stop`]).
    pub async fn stopped(mut self) {
        if let Some(task) = self.task.take() {
            task.await
                .expect("serve task")
                .expect("serve stopped cleanly");
        }
    }

    /// Stops gracefully and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("serve task")
                .expect("serve stopped cleanly");
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs one async test body in both modes, as two `#[test]`s.
#[macro_export]
macro_rules! conformance {
    ($(#[$meta:meta])* $name:ident, |$env:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn case($env: $crate::TestEnv) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                case($crate::TestEnv::new($crate::Mode::Embedded).await).await
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn distributed() {
                case($crate::TestEnv::new($crate::Mode::Distributed).await).await
            }
        }
    };
}
