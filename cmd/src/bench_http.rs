//! The load generator's HTTP client: one plain HTTP/1.1 keep-alive
//! connection per worker, written straight to the socket. It plays the part
//! pgbench (over libpq) plays for the database: a lean client, so the
//! figures measure the server and not the generator. Each request is one
//! `write` of bytes built in a reused buffer; each answer is read until its
//! head parses (`httparse`, the parser hyper uses) and its `Content-Length`
//! body has arrived. The service answers every request with a length (it
//! never chunks a JSON body); an answer without one counts as a transport
//! failure, so it shows in the error column instead of passing unseen.
//! (With reqwest the generator took a third of a 2-core machine at 10,000
//! reads/s; with hyper's connection API, 16.6 µs of CPU per read against
//! pgbench's 9.8 µs per `SELECT`.)

use std::io::Write as _;

use anyhow::Context as _;
use hyper::body::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

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
    stream: Option<TcpStream>,
    /// The request being sent, then the answer being read (reused).
    out: Vec<u8>,
    input: Vec<u8>,
}

/// Most headers an answer may carry.
const MAX_HEADERS: usize = 32;

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
            stream: None,
            out: Vec::with_capacity(512),
            input: Vec::with_capacity(4096),
        })
    }

    /// Sends `req` and reads the whole answer; its status, or `None` on a
    /// transport failure (the connection is then opened again next time).
    pub async fn send(&mut self, req: Req) -> Option<u16> {
        let answer = self.try_send(req).await;
        if answer.is_none() {
            self.stream = None;
        }
        answer
    }

    async fn try_send(&mut self, req: Req) -> Option<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.authority).await.ok()?;
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
        }
        self.out.clear();
        write!(
            self.out,
            "{} {} HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\n",
            req.method, req.path, self.authority, self.bearer
        )
        .ok()?;
        if let Some(k) = &req.key {
            write!(self.out, "idempotency-key: {k}\r\n").ok()?;
        }
        match &req.body {
            Some(json) => {
                write!(
                    self.out,
                    "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    json.len()
                )
                .ok()?;
                self.out.extend_from_slice(json);
            }
            None => self.out.extend_from_slice(b"\r\n"),
        }
        let stream = self.stream.as_mut()?;
        stream.write_all(&self.out).await.ok()?;
        self.input.clear();
        loop {
            if let Some((status, total, close)) = parse_head(&self.input)? {
                while self.input.len() < total {
                    if stream.read_buf(&mut self.input).await.ok()? == 0 {
                        return None;
                    }
                }
                if close {
                    self.stream = None;
                }
                return Some(status);
            }
            if stream.read_buf(&mut self.input).await.ok()? == 0 {
                return None;
            }
        }
    }
}

/// An answer's head, once it has all arrived: the status, the length of head
/// and body together, and whether the server closes the connection after it.
/// `Ok(None)` while the head is incomplete; `None` (outer) for an answer this
/// client cannot frame.
fn parse_head(input: &[u8]) -> Option<Option<(u16, usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let head = match res.parse(input).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Some(None),
    };
    let status = res.code?;
    let (mut length, mut close) = (None, false);
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value).ok()?.trim().parse().ok();
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
    }
    let length = match status {
        204 | 304 => 0,
        _ => length?,
    };
    Some(Some((status, head + length, close)))
}

#[cfg(test)]
mod tests {
    use super::parse_head;

    #[test]
    fn an_answer_is_framed_by_its_content_length() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
        let mut whole = head.to_vec();
        whole.extend_from_slice(b"hello");
        assert_eq!(parse_head(&head[..10]), Some(None), "head not complete yet");
        assert_eq!(parse_head(head), Some(Some((200, head.len() + 5, false))));
        assert_eq!(parse_head(&whole), Some(Some((200, whole.len(), false))));
        let closing =
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_head(closing), Some(Some((503, closing.len(), true))));
    }

    #[test]
    fn an_answer_it_cannot_frame_is_a_failure() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n"), None, "no length");
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
            None
        );
        assert_eq!(parse_head(b"garbage\r\n\r\n"), None);
    }
}
