//! A small client of the wallet service's HTTP API, for the `wallet` commands.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use crate::GlobalOpts;

/// Where the wallet service is and who we are.
#[derive(Debug, Clone, Args)]
pub struct ConnOpts {
    /// Wallet service URL. Default: http:// plus [listen] wallet from the configuration.
    #[arg(long, env = "WALLETCTL_URL", global = true, value_name = "URL")]
    pub url: Option<String>,
    /// Bearer token. Default: the operator token that `serve` wrote to the data directory.
    #[arg(
        long,
        env = "WALLETCTL_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

/// The service refused or failed a request.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiFailure {
    /// HTTP status.
    pub status: u16,
    /// The stable error code.
    pub code: String,
    /// The service's explanation.
    pub message: String,
    /// The whole error body.
    pub body: Value,
}

/// How many times a money command with an unknown outcome is retried.
pub const RETRIES: u32 = 3;

/// Whether a request's outcome is unknown, so that a retry with the same key
/// is the way to learn it: a 503, or a transport error (a timeout, a dropped
/// connection).
fn outcome_unknown(res: &anyhow::Result<Value>) -> bool {
    let Err(e) = res else { return false };
    match e.downcast_ref::<ApiFailure>() {
        Some(f) => f.status == 503,
        None => e.downcast_ref::<reqwest::Error>().is_some(),
    }
}

/// A connected client.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A client of the wallet service: URL and token from flags, environment,
    /// configuration and the data directory.
    pub fn new(g: &GlobalOpts, conn: &ConnOpts) -> anyhow::Result<Client> {
        Self::of(g, conn.url.clone(), conn.token.clone(), |c| c.listen.wallet)
    }

    /// A client of the service at `url`, or (by default) at the address
    /// `listen` picks from the configuration, with `token` or the operator token.
    pub fn of(
        g: &GlobalOpts,
        url: Option<String>,
        token: Option<String>,
        listen: impl FnOnce(&walletctl_core::Config) -> std::net::SocketAddr,
    ) -> anyhow::Result<Client> {
        let config = g.load_config()?;
        let base = url.unwrap_or_else(|| format!("http://{}", listen(&config)));
        let token = match &token {
            Some(t) => t.clone(),
            None => {
                let path = config.operator_token_path();
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!("no --token given and cannot read the operator token at {} (run `walletctl serve` once to create it)", path.display())
                    })?
                    .trim()
                    .to_owned()
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// The underlying HTTP client, base URL and token, for load generation.
    pub fn parts(&self) -> (&reqwest::Client, &str, &str) {
        (&self.http, &self.base, &self.token)
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        Self::send(req).await
    }

    /// POST `body` to `path`, with an idempotency key if given.
    ///
    /// With a key, an unknown outcome (a 503, a timeout, a dropped
    /// connection) is retried with the same key up to [`RETRIES`] times: the
    /// key makes the retry either replay the attempt that took effect or
    /// apply the request once. Without a key nothing is retried.
    pub async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> anyhow::Result<Value> {
        let mut attempt = 0;
        loop {
            let mut req = self
                .http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(body);
            if let Some(k) = key {
                req = req.header("Idempotency-Key", k);
            }
            let res = Self::send(req).await;
            if key.is_none() || attempt >= RETRIES || !outcome_unknown(&res) {
                return res;
            }
            attempt += 1;
            let pause = Duration::from_millis(200 * (1 << attempt));
            eprintln!(
                "walletctl: outcome unknown ({}); retrying with the same idempotency key in {pause:?} ({attempt}/{RETRIES})",
                res.as_ref()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            );
            tokio::time::sleep(pause).await;
        }
    }

    async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        Self::send_with_status(req).await.map(|(_, v)| v)
    }

    /// Sends, answering the success status with the body; a failure as [`ApiFailure`].
    pub async fn send_with_status(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let res = req
            .send()
            .await
            .context("cannot reach the wallet service (is `walletctl serve` running? see --url)")?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok((status.as_u16(), body));
        }
        Err(ApiFailure {
            status: status.as_u16(),
            code: body["error"]["code"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned(),
            message: body["error"]["message"].as_str().unwrap_or("").to_owned(),
            body,
        }
        .into())
    }
}
