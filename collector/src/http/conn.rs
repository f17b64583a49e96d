//! Accepting connections, guarded against a local user who opens many and sends
//! nothing: a request's headers must arrive within [`HEADER_TIMEOUT`] (a
//! keep-alive connection that sends no next request is closed after the same
//! time), and the number of connections is capped below the descriptor limit. At
//! the cap the connection idle the longest (no request in progress, no response
//! streaming) is closed to make room; only when every one is busy is the new one
//! refused.
//!
//! Besides its TCP port the collector serves a Unix socket in its state root,
//! where local hooks and workers connect: no TCP handshake, and the kernel names
//! the peer's user with the connection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use super::peer::Peer;

/// Longest wait for a request's headers, and for the next request on a kept-alive
/// connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors kept free of connections: the store, event files, WebSocket
/// viewers (counted by the hub, not here), probes.
const RESERVED_FDS: u64 = 1024 + 128;
/// Fewest connections allowed whatever the descriptor limit says.
const MIN_CONNECTIONS: usize = 64;
/// Most connections allowed whatever the descriptor limit allows.
const MAX_CONNECTIONS: usize = 16_384;

/// The connection cap for this process: below its descriptor limit, raised to
/// the hard limit first.
pub fn connection_cap() -> usize {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct given.
        let soft = unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return MIN_CONNECTIONS;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max.min(65_536),
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim.rlim_cur = raised.rlim_cur;
                }
            }
            lim.rlim_cur
        };
        usize::try_from(soft.saturating_sub(RESERVED_FDS))
            .unwrap_or(MAX_CONNECTIONS)
            .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// How many connections are open, were closed to make room, refused for want of
/// any, and came in on the Unix socket.
#[derive(Debug, Default)]
pub struct ConnMetrics {
    open: AtomicUsize,
    shed: AtomicU64,
    refused: AtomicU64,
    unix: AtomicU64,
}

impl ConnMetrics {
    /// `[open, shed, refused, accepted on the Unix socket]`.
    pub fn snapshot(&self) -> [u64; 4] {
        [
            self.open.load(Ordering::Relaxed) as u64,
            self.shed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.unix.load(Ordering::Relaxed),
        ]
    }
}

/// What the collector listens on: its TCP port, and its Unix socket where it has one.
pub struct Listeners {
    /// The TCP port.
    pub tcp: TcpListener,
    /// The Unix socket.
    #[cfg(unix)]
    pub unix: Option<tokio::net::UnixListener>,
}

/// One accepted connection, either way.
enum Accepted {
    Tcp(tokio::net::TcpStream, Peer),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream, Peer),
}

impl Listeners {
    /// The next connection on either listener.
    async fn accept(&self) -> std::io::Result<Accepted> {
        #[cfg(unix)]
        let unix = async {
            match &self.unix {
                Some(l) => {
                    let (stream, _) = l.accept().await?;
                    let uid = stream.peer_cred().ok().map(|c| c.uid());
                    Ok(Accepted::Unix(stream, Peer::local(uid)))
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let unix = std::future::pending::<std::io::Result<Accepted>>();
        tokio::select! {
            a = self.tcp.accept() => {
                let (tcp, addr) = a?;
                // Small responses must not wait for delayed ACKs (Nagle).
                let _ = tcp.set_nodelay(true);
                // Looked up once, while the peer's socket is surely open; every
                // request on the connection carries it.
                let peer = match tcp.local_addr() {
                    Ok(local) => Peer::accepted(addr, local),
                    Err(_) => Peer { addr: Some(addr), uid: None },
                };
                Ok(Accepted::Tcp(tcp, peer))
            }
            a = unix => a,
        }
    }
}

/// One open connection, as the cap sees it.
#[derive(Clone)]
struct Tracked {
    /// Requests in progress, responses included until their body is done.
    busy: Arc<AtomicUsize>,
    /// Milliseconds after `epoch` when it last became idle.
    idle_since: Arc<AtomicU64>,
    close: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Tracked>,
}

/// Serves `app` on `listeners` until `shutdown` turns true, then lets requests in
/// progress finish (their streams end on the same signal); the caller bounds the wait.
pub async fn serve(
    listeners: Listeners,
    app: Router,
    cap: usize,
    metrics: Arc<ConnMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let epoch = Instant::now();
    let table = Arc::new(Mutex::new(Table::default()));
    // Signalled as each connection ends, so shutdown can wait for the last.
    let ended = Arc::new(Notify::new());
    loop {
        let accepted = tokio::select! {
            a = listeners.accept() => a,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let accepted = match accepted {
            Ok(a) => a,
            // Out of descriptors or a connection reset before it was taken: wait
            // a moment rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some((id, tracked)) = admit(&table, cap, epoch, &metrics) else {
            metrics.refused.fetch_add(1, Ordering::Relaxed);
            drop(accepted);
            continue;
        };
        let conn = Connection {
            app: app.clone(),
            id,
            tracked,
            epoch,
            table: table.clone(),
            metrics: metrics.clone(),
            ended: ended.clone(),
            shutdown: shutdown.clone(),
        };
        match accepted {
            Accepted::Tcp(io, peer) => conn.spawn(io, peer),
            #[cfg(unix)]
            Accepted::Unix(io, peer) => {
                metrics.unix.fetch_add(1, Ordering::Relaxed);
                conn.spawn(io, peer);
            }
        }
    }
    drop(listeners);
    while metrics.open.load(Ordering::Relaxed) > 0 {
        let _ = tokio::time::timeout(Duration::from_millis(50), ended.notified()).await;
    }
}

/// What serving one admitted connection needs.
struct Connection {
    app: Router,
    id: u64,
    tracked: Tracked,
    epoch: Instant,
    table: Arc<Mutex<Table>>,
    metrics: Arc<ConnMetrics>,
    ended: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    /// Serves HTTP/1.1 (and WebSocket upgrades) on `io` in a task of its own.
    fn spawn<I>(self, io: I, peer: Peer)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            app,
            id,
            tracked,
            epoch,
            table,
            metrics,
            ended,
            mut shutdown,
        } = self;
        let service = {
            let (busy, idle_since) = (tracked.busy.clone(), tracked.idle_since.clone());
            hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let app = app.clone();
                req.extensions_mut().insert(peer);
                let guard = Busy::start(busy.clone(), idle_since.clone(), epoch);
                async move {
                    let resp = app.oneshot(req.map(Body::new)).await?;
                    Ok::<_, Infallible>(resp.map(|body| {
                        Body::new(Guarded {
                            body,
                            _guard: guard,
                        })
                    }))
                }
            })
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            // A client may write its request and close without reading the
            // answer (the hook, for an event already in its log): serve it out
            // rather than drop the request at the end of input.
            .half_close(true)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let close = tracked.close.clone();
        metrics.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = close.notified() => {}
                () = async {
                    let _ = shutdown.wait_for(|s| *s).await;
                } => {
                    // Finish the request in progress, take no next one.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .open
                .remove(&id);
            metrics.open.fetch_sub(1, Ordering::Relaxed);
            ended.notify_waiters();
        });
    }
}

/// Makes room for one more connection: its id and tracking, or `None` when the
/// cap is reached and every connection is busy.
fn admit(
    table: &Mutex<Table>,
    cap: usize,
    epoch: Instant,
    metrics: &ConnMetrics,
) -> Option<(u64, Tracked)> {
    let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
    if t.open.len() >= cap {
        let idlest = t
            .open
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Relaxed) == 0)
            .min_by_key(|(_, c)| c.idle_since.load(Ordering::Relaxed))
            .map(|(id, _)| *id)?;
        if let Some(gone) = t.open.remove(&idlest) {
            gone.close.notify_one();
            metrics.shed.fetch_add(1, Ordering::Relaxed);
        }
    }
    let id = t.next;
    t.next += 1;
    let entry = Tracked {
        busy: Arc::new(AtomicUsize::new(0)),
        idle_since: Arc::new(AtomicU64::new(millis(epoch))),
        close: Arc::new(Notify::new()),
    };
    t.open.insert(id, entry.clone());
    Some((id, entry))
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Counts one request as in progress until its response body is done.
struct Busy {
    busy: Arc<AtomicUsize>,
    idle_since: Arc<AtomicU64>,
    epoch: Instant,
}

impl Busy {
    fn start(busy: Arc<AtomicUsize>, idle_since: Arc<AtomicU64>, epoch: Instant) -> Self {
        busy.fetch_add(1, Ordering::Relaxed);
        Self {
            busy,
            idle_since,
            epoch,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.idle_since.store(millis(self.epoch), Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as busy while it streams.
struct Guarded {
    body: Body,
    _guard: Busy,
}

impl hyper::body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
