//! The load generator's HTTP client: one plain HTTP/1.1 keep-alive
//! connection per worker (hyper's connection API), no pool, no redirects,
//! no decompression. It plays the part pgbench plays for the database: a
//! lean client, so the figures measure the server and not the generator
//! (with reqwest the generator took a third of a 2-core machine at 10,000
//! reads/s).

use anyhow::Context as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;

/// One request of a closed loop.
pub struct Req {
    /// `GET` or `POST`.
    pub method: hyper::Method,
    /// Path and query.
    pub path: String,
    /// An `Idempotency-Key` header, if any.
    pub key: Option<String>,
    /// A JSON body, if any.
    pub body: Option<Bytes>,
}

/// One worker's connection to the service.
pub struct Conn {
    authority: String,
    bearer: String,
    open: Option<Open>,
}

/// An open connection: the request handle and the connection future, which
/// the worker polls itself while it waits (no task of its own: a request
/// then wakes one task, not two).
struct Open {
    send: SendRequest<Full<Bytes>>,
    conn: Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>,
}

impl Conn {
    /// A connection to `base` (`http://host:port`), opened on first use.
    pub fn new(base: &str, token: &str) -> anyhow::Result<Conn> {
        let url = reqwest::Url::parse(base).with_context(|| format!("bad URL {base}"))?;
        anyhow::ensure!(
            url.scheme() == "http",
            "the load generator speaks plain HTTP/1.1: point it at the service itself, not {base}"
        );
        let host = url.host_str().context("the URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(Conn {
            authority: format!("{host}:{port}"),
            bearer: format!("Bearer {token}"),
            open: None,
        })
    }

    /// Sends `req` and reads the whole answer; its status, or `None` on a
    /// transport failure (the connection is then opened again next time).
    pub async fn send(&mut self, req: Req) -> Option<u16> {
        let answer = self.try_send(req).await;
        if answer.is_none() {
            self.open = None;
        }
        answer
    }

    async fn try_send(&mut self, req: Req) -> Option<u16> {
        if self.open.as_ref().is_none_or(|o| o.send.is_closed()) {
            let stream = tokio::net::TcpStream::connect(&self.authority).await.ok()?;
            let _ = stream.set_nodelay(true);
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .ok()?;
            self.open = Some(Open { send, conn });
        }
        let Open { send, conn } = self.open.as_mut()?;
        let mut b = hyper::Request::builder()
            .method(req.method)
            .uri(req.path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::AUTHORIZATION, &self.bearer);
        if let Some(k) = req.key {
            b = b.header("idempotency-key", k);
        }
        let body = match req.body {
            Some(json) => {
                b = b.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(json)
            }
            None => Full::new(Bytes::new()),
        };
        let request = b.body(body).ok()?;
        let exchange = async {
            send.ready().await.ok()?;
            let res = send.send_request(request).await.ok()?;
            let status = res.status().as_u16();
            res.into_body().collect().await.ok()?;
            Some(status)
        };
        // The connection future ends only when the connection does: while
        // the exchange runs, it is what reads and writes the socket.
        tokio::select! {
            answer = exchange => answer,
            _ = conn => None,
        }
    }
}
