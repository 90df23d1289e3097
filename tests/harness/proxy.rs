//! A TCP proxy a test can cut: in front of a backend, it lets one test take
//! "its" PostgreSQL replica, Redis or MongoDB down without touching the
//! shared server other tests use.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A running proxy.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    cut: CancellationToken,
}

impl Proxy {
    /// Proxies a fresh local port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = CancellationToken::new();
        let stop = Arc::new(cut.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
            // Dropping the listener refuses new connections from here on.
        });
        Proxy { addr, cut }
    }

    /// Cuts every connection and refuses new ones: the backend is "down".
    pub fn cut(&self) {
        self.cut.cancel();
    }

    /// Rewrites `url`'s `host:port` to point at this proxy.
    pub fn rewrite(&self, url: &str, upstream: SocketAddr) -> String {
        url.replace(&upstream.to_string(), &self.addr.to_string())
    }
}

/// The `host:port` in a URL like `scheme://user:pw@127.0.0.1:5432/db`.
pub fn url_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hostport
        .parse()
        .unwrap_or_else(|e| panic!("{hostport:?} is not an address: {e}"))
}
