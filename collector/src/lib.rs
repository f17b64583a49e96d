//! # swarm-obs-collector
//!
//! The local collector behind `swarm-obs serve`: hooks and workers post events to it,
//! it stores them in SQLite (deduplicated by event id), follows the event log so no
//! event whose POST failed is lost, and streams everything live to viewers over
//! Server-Sent Events and WebSocket.
//!
//! ```no_run
//! use swarm_obs::StateRoot;
//! use swarm_obs_collector::Options;
//!
//! let options = Options::new(StateRoot::resolve());
//! // Blocks until SIGINT or SIGTERM, then flushes the store and removes collector.json.
//! swarm_obs_collector::run(options).unwrap();
//! ```
//!
//! HTTP surface: `POST /v1/events` (one event, a JSON array or NDJSON; it answers once
//! they are committed, or with `?ack=queued` once they are queued, for events already
//! in the event log, which catch-up reads again if the collector dies first),
//! `GET /v1/events`, `/v1/sources`, `/v1/sessions` (and a session's conversation, read
//! from its transcript on request: [`transcript`]), `/v1/stream` (SSE), `/v1/ws`
//! (WebSocket), `POST /v1/heartbeats`, `GET /v1/workers`, `/v1/activity`, `/v1/probes`,
//! OTLP/HTTP ingest on `POST /v1/logs` and `/v1/metrics`, `/healthz`, `/metrics`, and
//! the web dashboard at `/`. With [`Options::export`] it also exports every stored
//! event to an OpenTelemetry receiver ([`export`]).
#![warn(missing_docs)]

pub mod api;
mod catchup;
pub mod dashboard;
pub mod export;
pub mod filter;
mod grpc;
pub mod heartbeats;
mod http;
pub mod hub;
pub mod ingest;
pub mod otlp_ingest;
mod otlp_json;
pub mod probes;
mod session_book;
mod session_watch;
mod stop;
pub mod store;
pub mod transcript;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use swarm_obs::notify::{Notifier, NotifyConfig, NotifyHandle};
use swarm_obs::{
    CollectorInfo, DEFAULT_PORT, Event, EventLog, StateRoot, Timestamp, write_collector_info,
};
use tokio::sync::watch;

pub use session_book::SessionBook;
pub use stop::Stop;
pub use store::{Retention, StoreError};

/// How the collector runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Address to bind; port 0 picks a free port (see `collector.json` for the result).
    pub addr: SocketAddr,
    /// State root: event log to follow, `collector.db`, `collector.json`.
    pub root: StateRoot,
    /// Bearer token every request must carry; required for a non-loopback bind.
    pub token: Option<String>,
    /// Retention limits.
    pub retention: Retention,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How often the event log is checked for new lines.
    pub catchup_interval: Duration,
    /// Events a live viewer may fall behind before it is told it lagged.
    pub viewer_queue: usize,
    /// How often heartbeats are re-read and classified.
    pub watch_interval: Duration,
    /// Time past a worker's interval before it is down; `None`: twice the
    /// interval, at least 10 s.
    pub heartbeat_grace: Option<Duration>,
    /// Sound rules and backend for alerts (`[notify]` of `config.toml`).
    pub notify: NotifyConfig,
    /// Health probes to run (`[[probe]]` of `config.toml`, `serve --probe`).
    pub probes: Vec<swarm_obs::ProbeSpec>,
    /// OTLP export of events and metrics; `None`: off.
    pub export: Option<export::ExportOptions>,
    /// Redaction and size caps for records ingested over OTLP (their senders,
    /// Claude Code say, do not redact).
    pub redaction: swarm_obs::RedactConfig,
    /// Rows a regex filter (`q`) scans at most for one page before it answers
    /// with what it found and where to go on.
    pub scan_limit: usize,
    /// Quiet time after which a live Claude Code session whose process cannot be
    /// checked (another host, or no pid) shows as `stale`.
    pub session_stale_after: Duration,
    /// How long a session may wait on a permission prompt before one reminder.
    pub permission_reminder: Duration,
    /// How often the `claude` processes of live sessions on this host are checked.
    pub session_check_interval: Duration,
    /// Host names besides the bound address's that requests may name
    /// (`serve --allow-host`); any other `Host` is refused (DNS rebinding).
    pub allow_hosts: Vec<String>,
    /// Origins besides the collector's own that may send requests
    /// (`serve --allow-origin`, e.g. `http://localhost:3000`).
    pub allow_origins: Vec<String>,
    /// Directories whose Claude Code transcripts `GET /v1/sessions/{id}/conversation`
    /// may read: [`transcript::default_roots`] (`$CLAUDE_CONFIG_DIR`, else
    /// `~/.claude`), plus `serve --transcript-root` and `[transcripts] roots`.
    pub transcript_roots: Vec<PathBuf>,
}

impl Options {
    /// Defaults: 127.0.0.1:4780, no token, 7 days and 1 GiB retention, 16 MiB bodies,
    /// catch-up every 250 ms, 4096 events of viewer queue, heartbeats checked every
    /// 500 ms with the default grace.
    pub fn new(root: StateRoot) -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            root,
            token: None,
            retention: Retention {
                max_age_ms: 7 * 24 * 3600 * 1000,
                max_bytes: 1 << 30,
            },
            body_limit: 16 << 20,
            notify: NotifyConfig::default(),
            catchup_interval: Duration::from_millis(250),
            viewer_queue: 4096,
            watch_interval: Duration::from_millis(500),
            heartbeat_grace: None,
            probes: Vec::new(),
            export: None,
            redaction: swarm_obs::RedactConfig::default(),
            scan_limit: store::SCAN_CAP,
            session_stale_after: Duration::from_secs(30 * 60),
            permission_reminder: Duration::from_secs(120),
            session_check_interval: Duration::from_secs(1),
            allow_hosts: Vec::new(),
            allow_origins: Vec::new(),
            transcript_roots: transcript::default_roots(),
        }
    }
}

/// The collector could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A non-loopback address without a token.
    #[error(
        "refusing to listen on {0} without a token: a non-loopback address needs --token or SWARM_OBS_TOKEN"
    )]
    TokenRequired(SocketAddr),
    /// A token too short to guard a non-loopback address, or one that cannot be
    /// sent in a header.
    #[error("{0}")]
    WeakToken(String),
    /// The state root could have been written by another user.
    #[error(transparent)]
    Untrusted(#[from] swarm_obs::TrustError),
    /// Binding the address failed.
    #[error("cannot listen on {addr}: {reason} ({hint})")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error (in the message, so not also a `source`).
        reason: std::io::Error,
        /// Who holds the address, when known, and what to do.
        hint: String,
    },
    /// A file or directory of the state root could not be written.
    #[error(
        "cannot write {path}: {reason} (check that the state root is writable, or set SWARM_OBS_HOME)"
    )]
    File {
        /// The path.
        path: PathBuf,
        /// The OS error (in the message, so not also a `source`).
        reason: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// OTLP export cannot start (a TLS file it names cannot be used, say).
    #[error(
        "cannot start OTLP export: {0} (fix the OTEL_EXPORTER_OTLP_* variables or [otlp] in config.toml)"
    )]
    Export(String),
    /// A probe's settings cannot be used (its CA file, say).
    #[error("{0}")]
    Probe(String),
    /// The async runtime or a signal handler could not start.
    #[error("cannot start the collector runtime: {0}")]
    Runtime(std::io::Error),
}

/// Refuses a token that cannot travel in a header (spaces, control characters)
/// or, off loopback, one shorter than [`MIN_TOKEN_BYTES`].
fn check_token(token: &str, addr: SocketAddr) -> Result<(), Error> {
    if token.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(Error::WeakToken(
            "the token holds spaces, control or non-ASCII characters; use printable ASCII only \
             (e.g. `openssl rand -hex 32`)"
                .into(),
        ));
    }
    if !addr.ip().is_loopback() && token.len() < MIN_TOKEN_BYTES {
        return Err(Error::WeakToken(format!(
            "refusing to listen on {addr} with a {}-byte token: off loopback it must be at least \
             {MIN_TOKEN_BYTES} bytes (e.g. `openssl rand -hex 32`)",
            token.len()
        )));
    }
    Ok(())
}

/// Shortest token accepted on a non-loopback address, in bytes.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Runs the collector until SIGINT or SIGTERM, then stops accepting, ends live
/// streams, commits everything queued and removes `collector.json`.
pub fn run(options: Options) -> Result<(), Error> {
    let token = options.token.as_deref().filter(|t| !t.is_empty());
    if !options.addr.ip().is_loopback() && token.is_none() {
        return Err(Error::TokenRequired(options.addr));
    }
    if let Some(t) = token {
        check_token(t, options.addr)?;
    }
    // Listen first: a collector that cannot serve its address touches no state root.
    let listener = bind(options.addr, &options.root)?;
    let dir = options.root.dir().to_owned();
    swarm_obs::ensure_private_dir(&dir).map_err(|reason| Error::File {
        path: dir.clone(),
        reason,
    })?;
    options.root.check_trusted()?;
    let hub = hub::Hub::new(options.viewer_queue);
    let store = store::Store::open(&options.root.collector_db(), hub.clone())?;
    let stop = Stop::default();
    let follower = catchup::spawn(
        options.root.clone(),
        store.clone(),
        options.catchup_interval,
        options.retention.max_age_ms,
        swarm_obs::Redactor::new(options.redaction.clone()),
        stop.clone(),
    )?;
    let maintainer = spawn_maintenance(store.clone(), options.retention, stop.clone());
    let notifier = Notifier::start(&options.root, &options.notify);
    let alerts = Arc::new(Alerts {
        log: EventLog::new(options.root.clone()),
        store: store.clone(),
        notify: notifier.handle(),
    });
    let probes = Arc::new(probes::Probes::new(options.probes.clone()).map_err(Error::Probe)?);
    let probers = probes::spawn(&probes, store.clone(), alerts.clone(), stop.clone());
    let session_watch = session_watch::spawn(
        store.clone(),
        alerts.clone(),
        hub.clone(),
        session_watch::Timing {
            interval: options.session_check_interval,
            reminder: options.permission_reminder,
            stale_after: options.session_stale_after,
        },
        stop.clone(),
    );
    let watch = Arc::new(heartbeats::Watch::new(options.heartbeat_grace));
    let watcher = spawn_watch(
        watch.clone(),
        options.root.clone(),
        alerts,
        options.watch_interval,
        stop.clone(),
    );

    let exporter = match options.export.clone() {
        Some(export) => {
            eprintln!(
                "swarm-obs serve: exporting to OTLP receiver {}",
                export.target.urls().next().unwrap_or("")
            );
            Some(
                export::Exporter {
                    options: export,
                    store: store.clone(),
                    metrics: hub.metrics.clone(),
                    watch: watch.clone(),
                    stop: stop.clone(),
                }
                .spawn()
                .map_err(Error::Export)?,
            )
        }
        None => None,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("collector")
        .build()
        .map_err(Error::Runtime)?;
    // Hooks hand this collector their notifications only when it can show them.
    let shows = (notifier.backend() != "off").then(|| (notifier.handle(), notifier.backend()));
    let served = runtime.block_on(serve(
        &options,
        listener,
        store.clone(),
        hub,
        watch,
        probes,
        shows,
    ));

    // Stop the threads feeding the writer, then let it commit what is queued.
    stop.set();
    let _ = follower.join();
    let _ = maintainer.join();
    let _ = watcher.join();
    let _ = session_watch.join();
    for prober in probers {
        let _ = prober.join();
    }
    // A request to a hung receiver may hold the exporter for its whole timeout;
    // do not let that hold up shutdown. Its cursor only moves after an accepted
    // batch, so leaving it mid-request loses nothing (at worst a re-send).
    if let Some(e) = exporter {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !e.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if e.is_finished() {
            let _ = e.join();
        }
    }
    store.close();
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(notifier);
    served
}

/// Binds `addr` (listening starts in [`serve`]); when it is taken, the error
/// names the collector of `root` that holds it, if that is who does.
fn bind(addr: SocketAddr, root: &StateRoot) -> Result<tokio::net::TcpSocket, Error> {
    let fail = |reason: std::io::Error| {
        let holder = (reason.kind() == std::io::ErrorKind::AddrInUse)
            .then(|| swarm_obs::CollectorInfo::read(&root.collector_file()))
            .flatten()
            .filter(|info| {
                info.addr
                    .parse::<SocketAddr>()
                    .is_ok_and(|a| a.port() == addr.port())
            });
        let hint = match holder {
            Some(info) => format!(
                "the collector of {} already listens there: pid {}, since {}; use it, stop it, or pick another port with --addr 127.0.0.1:0",
                root.dir().display(),
                info.pid,
                info.started_at
            ),
            None if reason.kind() == std::io::ErrorKind::AddrInUse => {
                "another program, or another state root's collector, listens there; pick another port with --addr 127.0.0.1:0".to_owned()
            }
            None => "check the address, or pick another with --addr".to_owned(),
        };
        Error::Bind { addr, reason, hint }
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(fail)?;
    // As every server does: a restarted collector gets its port back at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(addr).map_err(fail)?;
    Ok(socket)
}

/// Connections waiting to be accepted: a burst of hooks or viewers must not be
/// refused by the kernel while the accept loop catches up.
const LISTEN_BACKLOG: u32 = 1024;

#[allow(clippy::too_many_arguments)]
async fn serve(
    options: &Options,
    socket: tokio::net::TcpSocket,
    store: store::Store,
    hub: hub::Hub,
    watch: Arc<heartbeats::Watch>,
    probes: Arc<probes::Probes>,
    shows: Option<(NotifyHandle, &'static str)>,
) -> Result<(), Error> {
    let bind_error = |reason| Error::Bind {
        addr: options.addr,
        reason,
        hint: "the listening socket could not be used".to_owned(),
    };
    let listener = socket.listen(LISTEN_BACKLOG).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let conn_metrics = Arc::new(http::conn::ConnMetrics::default());
    // Four bodies at the cap, at least 64 MiB: enough for bursts of big batches,
    // not for a dozen at once to take the collector's memory with them.
    let body_budget_kib = (options.body_limit.saturating_mul(4).max(64 << 20) / 1024)
        .min(tokio::sync::Semaphore::MAX_PERMITS);
    let state = http::AppState {
        connections: conn_metrics.clone(),
        body_budget: Arc::new(tokio::sync::Semaphore::new(body_budget_kib)),
        body_budget_kib,
        root: options.root.clone(),
        store,
        hub,
        watch,
        probes,
        token: options
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .map(Arc::from),
        body_limit: options.body_limit,
        scan_limit: options.scan_limit.max(1),
        stale_after_ms: i64::try_from(options.session_stale_after.as_millis()).unwrap_or(i64::MAX),
        redactor: Arc::new(swarm_obs::Redactor::new(options.redaction.clone())),
        shutdown: shutdown_rx.clone(),
        notify: shows.as_ref().map(|(handle, _)| handle.clone()),
        allowed: Arc::new(http::guard::Allowed::new(
            local,
            &options.allow_hosts,
            &options.allow_origins,
        )),
        transcripts: Arc::new(transcript::Transcripts::new(
            options.transcript_roots.clone(),
            &options.redaction,
        )),
    };
    let signals = signals().map_err(Error::Runtime)?;
    #[cfg(unix)]
    let (unix, socket) = bind_socket(&options.root).unzip();
    #[cfg(not(unix))]
    let socket = None;
    let listeners = http::conn::Listeners {
        tcp: listener,
        #[cfg(unix)]
        unix,
    };

    let info_path = options.root.collector_file();
    let info = CollectorInfo {
        addr: local.to_string(),
        pid: std::process::id(),
        started_at: Timestamp::now(),
        token: state.token.as_deref().map(str::to_owned),
        notifications: shows.map(|(_, backend)| backend.to_owned()),
        socket,
    };
    write_collector_info(&info_path, &info).map_err(|reason| Error::File {
        path: info_path.clone(),
        reason,
    })?;
    eprintln!(
        "swarm-obs serve: listening on http://{local} (state root {})",
        options.root.dir().display()
    );

    let cap = http::conn::connection_cap();
    // The accept loop runs on a worker, not on this thread: a connection it
    // spawns then starts on the same worker (tokio's LIFO slot) instead of waking
    // another thread. For a client that opens a connection, asks once and waits
    // (the CLI, doctor, a page load) an idle collector spent about a third more
    // CPU per connection the other way.
    let mut server = tokio::spawn(http::conn::serve(
        listeners,
        http::router(state),
        cap,
        conn_metrics,
        shutdown_rx.clone(),
    ));
    tokio::spawn(async move {
        signals.await;
        let _ = shutdown_tx.send(true);
    });
    // Connections that do not close within a grace period are dropped.
    let mut deadline = shutdown_rx.clone();
    let result = tokio::select! {
        _ = &mut server => Ok(()),
        _ = async move {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        } => Ok(()),
    };
    // Past the grace period: stop accepting, whatever is still open.
    server.abort();
    // Only remove the files if they are still ours (another collector of this
    // state root may have taken them over).
    if CollectorInfo::read(&info_path).is_some_and(|i| i.pid == info.pid) {
        if let Some(socket) = &info.socket {
            let _ = std::fs::remove_file(socket);
        }
        let _ = std::fs::remove_file(&info_path);
    }
    eprintln!("swarm-obs serve: stopped");
    result
}

/// Listens on `collector.sock` in the state root, besides the TCP port: local hooks
/// and workers connect there (no TCP handshake; the kernel names the peer's user).
/// `None`, said once on stderr, where it cannot be had; clients then use TCP.
#[cfg(unix)]
fn bind_socket(root: &StateRoot) -> Option<(tokio::net::UnixListener, PathBuf)> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let path = root.socket_file();
    let warn = |what: String| {
        eprintln!("swarm-obs serve: {what}; local clients use TCP");
    };
    // A socket left by a collector that was killed, or one another collector of
    // this state root serves: the newest takes it over, as it does collector.json.
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_socket() => {
            let _ = std::fs::remove_file(&path);
        }
        Ok(_) => {
            warn(format!(
                "{} exists and is not a socket; remove it to serve the Unix socket",
                path.display()
            ));
            return None;
        }
        Err(_) => {}
    }
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            warn(format!(
                "cannot serve the Unix socket {}: {e}",
                path.display()
            ));
            return None;
        }
    };
    // Private as the rest of the state root (whose directory already keeps other
    // users out): only this user, and root, may connect.
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        let _ = std::fs::remove_file(&path);
        warn(format!("cannot make {} private: {e}", path.display()));
        return None;
    }
    Some((listener, path))
}

/// Resolves on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
fn signals() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Store upkeep off the ingest path: a passive WAL checkpoint every second, retention
/// soon after start and then every minute.
fn spawn_maintenance(
    store: store::Store,
    retention: Retention,
    stop: Stop,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next_retention = std::time::Instant::now() + Duration::from_secs(5);
        while !stop.sleep(Duration::from_secs(1)) {
            if let Err(e) = store.checkpoint() {
                eprintln!("swarm-obs serve: checkpoint of the store failed: {e}");
            }
            if std::time::Instant::now() >= next_retention {
                if store.retain(retention).is_err() {
                    return;
                }
                next_retention += Duration::from_secs(60);
            }
        }
    })
}

/// Where the collector's own alerts go: the event log first (so file readers see
/// them too, and catch-up recognises them as stored), then the store and its live
/// viewers, then the sound rules.
pub(crate) struct Alerts {
    log: EventLog,
    store: store::Store,
    notify: NotifyHandle,
}

impl Alerts {
    /// Records and announces `alerts`; false once the store has closed.
    pub(crate) fn emit(&self, alerts: Vec<Event>) -> bool {
        if alerts.is_empty() {
            return true;
        }
        for alert in &alerts {
            if let Err(e) = self.log.append(alert) {
                eprintln!("swarm-obs serve: {e}");
            }
            self.notify.notify(alert);
        }
        match self.store.insert_blocking(alerts, None) {
            Ok(_) => true,
            Err(StoreError::Closed) => false,
            Err(e) => {
                eprintln!("swarm-obs serve: storing alerts failed: {e}");
                true
            }
        }
    }
}

fn spawn_watch(
    watch: Arc<heartbeats::Watch>,
    root: StateRoot,
    alerts: Arc<Alerts>,
    interval: Duration,
    stop: Stop,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.is_set() {
            if !alerts.emit(watch.tick(&root, Timestamp::now())) {
                return;
            }
            stop.sleep(interval);
        }
    })
}
