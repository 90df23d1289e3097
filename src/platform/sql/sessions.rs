//! Sessions on one PostgreSQL server, for the hot paths that own their
//! connections outright: coalesced replica reads and group commits on the
//! primary itself (`postgres.commit_url`).
//!
//! sqlx's `PgPool` tests every connection it gets back: the release spawns a
//! task that sends a `Sync` and waits for the server's answer, a round trip
//! per query that wakes the backend a second time (on the read path it was
//! half of the server's work and of the service's socket writes). Here a
//! session goes back idle only when the caller says its statement finished
//! ([`Session::finish`]); a session dropped in the middle of a statement (a
//! cancelled request, a client error) is closed instead, so no half-read
//! answer can reach the next user of the connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Up to `max` connections to one server, opened on first use.
pub(crate) struct Sessions {
    options: PgConnectOptions,
    /// Run once on each new connection (a `SET`).
    setup: Option<&'static str>,
    /// Oldest first: sessions go back on top.
    idle: Mutex<Vec<Idle>>,
    slots: Arc<Semaphore>,
    acquire_timeout: Duration,
}

/// An idle session; a session idle longer than [`IDLE_TIMEOUT`], or older
/// than [`MAX_LIFETIME`], is closed instead of handed out (as a `PgPool`
/// does), so a connection some middlebox or server timeout has cut is rarely
/// the one a group commit gets.
struct Idle {
    conn: PgConnection,
    opened: Instant,
    since: Instant,
}

/// How long a session may sit idle before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a session may live.
const MAX_LIFETIME: Duration = Duration::from_secs(1800);

/// A connection checked out of [`Sessions`]; dropped, it is closed.
pub(crate) struct Session {
    conn: Option<PgConnection>,
    opened: Instant,
    home: Arc<Sessions>,
    _slot: OwnedSemaphorePermit,
}

impl Sessions {
    /// Sessions on `url`; nothing connects until the first [`Sessions::get`].
    pub(crate) fn new(
        url: &str,
        max: u32,
        setup: Option<&'static str>,
        acquire_timeout: Duration,
    ) -> Result<Arc<Self>, sqlx::Error> {
        Ok(Arc::new(Sessions {
            options: url.parse::<PgConnectOptions>()?,
            setup,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(max.max(1) as usize)),
            acquire_timeout,
        }))
    }

    /// An idle session (the most recently used, whose backend is warm) or a
    /// new one; waits for a free slot up to the acquire timeout.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Session, sqlx::Error> {
        // A free slot is taken without arming a timer.
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(sqlx::Error::PoolClosed),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                tokio::time::timeout(self.acquire_timeout, self.slots.clone().acquire_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?
                    .map_err(|_| sqlx::Error::PoolClosed)?
            }
        };
        let (idle, stale) = {
            let now = Instant::now();
            let mut idle = self.lock();
            let fresh = idle
                .iter()
                .position(|i| now - i.since < IDLE_TIMEOUT && now - i.opened < MAX_LIFETIME)
                .unwrap_or(idle.len());
            let stale: Vec<Idle> = idle.drain(..fresh).collect();
            (idle.pop(), stale)
        };
        if !stale.is_empty() {
            tokio::spawn(async move {
                for i in stale {
                    let _ = i.conn.close().await;
                }
            });
        }
        let (conn, opened) = match idle {
            Some(i) if i.opened.elapsed() < MAX_LIFETIME => (i.conn, i.opened),
            _ => (
                tokio::time::timeout(self.acquire_timeout, self.open())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??,
                Instant::now(),
            ),
        };
        Ok(Session {
            conn: Some(conn),
            opened,
            home: self.clone(),
            _slot: slot,
        })
    }

    /// A new connection, set up. Boxed: a `Send` future with a concrete
    /// lifetime, which the spawned tasks calling [`Sessions::get`] need.
    fn open(&self) -> BoxFuture<'_, Result<PgConnection, sqlx::Error>> {
        Box::pin(async move {
            let mut conn = self.options.connect().await?;
            if let Some(setup) = self.setup {
                conn.execute(setup).await?;
            }
            Ok(conn)
        })
    }

    /// Closes the idle sessions and refuses new ones.
    pub(crate) async fn close(&self) {
        self.slots.close();
        let idle = std::mem::take(&mut *self.lock());
        for i in idle {
            let _ = i.conn.close().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Session {
    /// The connection, for one statement.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a session holds its connection until finished")
    }

    /// Ends the use of the session. `answered`: the statement ran to its
    /// end (an answer read whole, or an error the server sent; sqlx reads on
    /// to the server's ready signal before the next statement), and the
    /// session goes back idle. Otherwise the link broke or the server went
    /// away: the session is closed, and so are the server's other idle
    /// sessions, which most likely broke too.
    pub(crate) fn finish(mut self, answered: bool) {
        let Some(conn) = self.conn.take() else { return };
        let mut idle = self.home.lock();
        if answered {
            idle.push(Idle {
                conn,
                opened: self.opened,
                since: Instant::now(),
            });
        } else {
            idle.clear();
        }
    }

    /// [`Session::finish`] by what `result` says, and passes `result` on.
    pub(crate) fn keep_if<T>(self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        self.finish(matches!(&result, Ok(_) | Err(sqlx::Error::Database(_))));
        result
    }
}
