//! A TCP proxy a test can cut and restore: in front of a backend, it lets
//! one test take "its" PostgreSQL replica, Redis or MongoDB down (and back
//! up) without touching the shared server other tests use.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Whether the backend is "down", and the token that ends today's connections.
struct State {
    down: bool,
    connections: CancellationToken,
}

/// A running proxy.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Proxies a fresh local port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(Mutex::new(State {
            down: false,
            connections: CancellationToken::new(),
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let stop = {
                    let s = shared.lock().unwrap();
                    if s.down {
                        continue; // dropped at once: the backend is "down"
                    }
                    s.connections.clone()
                };
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
        });
        Proxy { addr, state }
    }

    /// Cuts every connection and drops new ones: the backend is "down".
    pub fn cut(&self) {
        let mut s = self.state.lock().unwrap();
        s.down = true;
        s.connections.cancel();
    }

    /// Lets connections through again: the backend is back.
    pub fn restore(&self) {
        let mut s = self.state.lock().unwrap();
        s.down = false;
        s.connections = CancellationToken::new();
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
