//! One call at start-up: [`init`] builds the layer, the writer, the heartbeat and the
//! shipper, installs the subscriber and returns a [`SwarmGuard`] that shuts them down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

use crate::layer::SwarmLayer;
use crate::log_writer::{self, LogQueue, RotatingFile, Sinks, WriterThread};
use crate::notify::{Notifier, backend_for};
use crate::{
    CollectorAddress, CollectorClient, Config, ConfigError, Event, EventLog, HeartbeatError,
    HeartbeatHandle, HeartbeatWriter, Kind, Overflow, Redactor, Shipper, ShipperConfig,
    ShipperStats, StateRoot,
};

/// Starts configuring swarm-obs for the worker `source` (its name in every event,
/// log file and heartbeat).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let _guard = swarm_obs::init("backend")
///     # .state_root(swarm_obs::StateRoot::new(dir.path())).no_collector()
///     .install()
///     .expect("swarm-obs starts");
/// swarm_obs::start!("TASK_123");
/// swarm_obs::progress!(3, 5, "Analysing file X");
/// swarm_obs::done!("Finished TASK_123");
/// ```
pub fn init(source: impl Into<String>) -> SwarmBuilder {
    SwarmBuilder::new(source)
}

/// Where the shipper posts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CollectorChoice {
    Discover,
    Off,
    At(CollectorAddress),
}

/// Configures and starts swarm-obs in a worker; made by [`init`].
///
/// Defaults: a heartbeat every 5 s, the state root from [`StateRoot::resolve`], the
/// collector found by [`CollectorAddress::discover`], text and JSON outputs on and
/// stderr off, level `info` unless `RUST_LOG` says otherwise, local time in text
/// lines, a queue of 65,536 events that drops (and counts) when full, text logs
/// rotated at 16 MiB keeping 3, and a panic hook.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `install` or `build`"]
pub struct SwarmBuilder {
    source: String,
    interval: Duration,
    state_root: Option<StateRoot>,
    collector: CollectorChoice,
    text: bool,
    json: bool,
    stderr: bool,
    filter: String,
    notifications: bool,
    utc: bool,
    queue_capacity: usize,
    overflow: Overflow,
    max_log_bytes: u64,
    keep_logs: usize,
    fields: Map<String, Value>,
    heartbeat: bool,
    panic_hook: bool,
    post_budget: Duration,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::otlp::OtlpTarget>,
}

/// Starting swarm-obs failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `config.toml` is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state root could have been written by another user.
    #[error(transparent)]
    Untrusted(#[from] crate::TrustError),
    /// The level filter (`RUST_LOG` or the builder's) does not parse.
    #[error(
        "invalid log filter {directives:?}: {message} (expected e.g. `info` or `info,my_crate=debug`)"
    )]
    Filter {
        /// The directives given.
        directives: String,
        /// What is wrong.
        message: String,
    },
    /// A log file could not be opened.
    #[error(
        "cannot open log file {path}: {source} (check that the state root is writable, or set SWARM_OBS_HOME)"
    )]
    LogFile {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The heartbeat could not start.
    #[error(transparent)]
    Heartbeat(#[from] HeartbeatError),
    /// The OTLP target's TLS files cannot be used.
    #[cfg(feature = "otlp")]
    #[error("OTLP export: {0}")]
    OtlpTls(#[from] crate::tls::TlsError),
    /// A background thread could not start.
    #[error("cannot start the swarm-obs {what} thread: {source}")]
    Spawn {
        /// Which thread.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another global subscriber is already installed; use [`SwarmBuilder::build`]
    /// and add the layer to it instead.
    #[error(
        "a global tracing subscriber is already installed: use SwarmBuilder::build and add the SwarmLayer to it"
    )]
    AlreadyInstalled,
}

impl SwarmBuilder {
    /// A builder with the defaults above.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            interval: crate::DEFAULT_INTERVAL,
            state_root: None,
            collector: CollectorChoice::Discover,
            text: true,
            json: true,
            stderr: false,
            filter: "info".to_owned(),
            notifications: true,
            utc: false,
            queue_capacity: 65_536,
            overflow: Overflow::Drop,
            max_log_bytes: 16 << 20,
            keep_logs: 3,
            fields: Map::new(),
            heartbeat: true,
            panic_hook: true,
            post_budget: Duration::from_millis(500),
            #[cfg(feature = "otlp")]
            otlp: None,
        }
    }

    /// Time between heartbeats (default 5 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The state root (default [`StateRoot::resolve`]).
    pub fn state_root(mut self, root: StateRoot) -> Self {
        self.state_root = Some(root);
        self
    }

    /// Posts events to this collector.
    pub fn collector(mut self, address: CollectorAddress) -> Self {
        self.collector = CollectorChoice::At(address);
        self
    }

    /// Posts events to no collector (it can still catch up from the event log).
    pub fn no_collector(mut self) -> Self {
        self.collector = CollectorChoice::Off;
        self
    }

    /// Human lines to `logs/<source>.log` (default on).
    pub fn text(mut self, on: bool) -> Self {
        self.text = on;
        self
    }

    /// JSON events to `events/*.jsonl` (default on).
    pub fn json(mut self, on: bool) -> Self {
        self.json = on;
        self
    }

    /// Human lines to stderr too (default off).
    pub fn stderr(mut self, on: bool) -> Self {
        self.stderr = on;
        self
    }

    /// Level filter used when `RUST_LOG` is unset, in `EnvFilter` syntax (default `info`).
    pub fn filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = directives.into();
        self
    }

    /// Notifications of start, done and error events through the sound rules and
    /// the backend of `config.toml`'s `[notify]` (default on). They are delivered
    /// from a background thread; no thread starts when the backend is `off` (as
    /// `auto` is without the `desktop` feature and without a `notify.command`).
    pub fn notifications(mut self, on: bool) -> Self {
        self.notifications = on;
        self
    }

    /// UTC instead of local time in human lines (event timestamps are always UTC).
    pub fn utc(mut self, on: bool) -> Self {
        self.utc = on;
        self
    }

    /// Events that may wait for the writer (default 65,536).
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events;
        self
    }

    /// What a full queue does (default [`Overflow::Drop`], counted in the heartbeat).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Rotate the text log when it would pass `bytes`, keeping `keep` old files.
    pub fn rotate_text_log(mut self, bytes: u64, keep: usize) -> Self {
        self.max_log_bytes = bytes;
        self.keep_logs = keep;
        self
    }

    /// A field added to every event.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Whether to write a heartbeat file (default on).
    pub fn heartbeat(mut self, on: bool) -> Self {
        self.heartbeat = on;
        self
    }

    /// Whether to record panics as `error` events (default on).
    pub fn panic_hook(mut self, on: bool) -> Self {
        self.panic_hook = on;
        self
    }

    /// Also sends every event straight to an OTLP/HTTP receiver as a log record
    /// (feature `otlp`), with or without a collector. Best effort like collector
    /// posts: see [`OtlpSink`](crate::otlp::OtlpSink).
    #[cfg(feature = "otlp")]
    pub fn otlp(mut self, target: crate::otlp::OtlpTarget) -> Self {
        self.otlp = Some(target);
        self
    }

    /// Starts everything and installs a global subscriber: the registry, the level
    /// filter and the [`SwarmLayer`].
    pub fn install(self) -> Result<SwarmGuard, InitError> {
        let filter = match std::env::var("RUST_LOG") {
            Ok(env) if !env.trim().is_empty() => env,
            _ => self.filter.clone(),
        };
        let env_filter = EnvFilter::try_new(&filter).map_err(|e| InitError::Filter {
            directives: filter.clone(),
            message: e.to_string(),
        })?;
        let (layer, guard) = self.build()?;
        let subscriber = tracing_subscriber::registry().with(env_filter).with(layer);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| InitError::AlreadyInstalled)?;
        Ok(guard)
    }

    /// Starts everything and returns the layer for a subscriber of your own.
    ///
    /// The layer filters nothing itself: add a filter (an `EnvFilter`, say) to the
    /// subscriber or to the layer.
    pub fn build(self) -> Result<(SwarmLayer, SwarmGuard), InitError> {
        let root = self.state_root.clone().unwrap_or_else(StateRoot::resolve);
        root.check_trusted()?;
        let config = Config::load(&root.config_file())?;
        let dropped = Arc::new(AtomicU64::new(0));
        let mut sinks = Sinks::new(Redactor::new(config.redaction.clone()), dropped.clone());
        sinks.offset_secs = if self.utc { 0 } else { local_offset_secs() };
        sinks.stderr = self.stderr;
        if self.json {
            sinks.events = Some(EventLog::new(root.clone()));
        }
        if self.text {
            let path = root.log_file(&self.source);
            let file = RotatingFile::open(&path, self.max_log_bytes, self.keep_logs)
                .map_err(|source| InitError::LogFile { path, source })?;
            sinks.text = Some(file);
        }
        let heartbeat = if self.heartbeat {
            let w = HeartbeatWriter::start_with_counter(
                &root,
                &self.source,
                self.interval,
                dropped.clone(),
                Redactor::new(config.redaction.clone()),
            )?;
            sinks.heartbeat = Some(w.handle().clone());
            Some(w)
        } else {
            None
        };
        let address = match &self.collector {
            CollectorChoice::Discover => CollectorAddress::discover(&root, &config),
            CollectorChoice::Off => None,
            CollectorChoice::At(a) => Some(a.clone()),
        };
        let shipper = address
            .map(|a| {
                let client = CollectorClient::new(a, self.post_budget);
                start_shipper(client, "shipper", &mut sinks)
            })
            .transpose()?;
        #[cfg(feature = "otlp")]
        let otlp_shipper = self
            .otlp
            .clone()
            .map(|target| {
                let sink = crate::otlp::OtlpSink::new(target)?;
                start_shipper(sink, "OTLP exporter", &mut sinks)
            })
            .transpose()?;
        let notifier = match backend_for(&config.notify) {
            backend if self.notifications && backend.name() != "off" => {
                Some(Notifier::with_backend(&root, &config.notify, backend))
            }
            _ => None,
        };
        sinks.notify = notifier.as_ref().map(Notifier::handle);
        let (queue, pending) = log_writer::channel(self.queue_capacity, self.overflow, sinks);
        let writer = pending.spawn().map_err(|source| InitError::Spawn {
            what: "log writer",
            source,
        })?;
        if self.panic_hook {
            install_panic_hook(self.source.clone(), queue.clone());
        }
        let layer = SwarmLayer::new(self.source, self.fields, queue.clone());
        let guard = SwarmGuard {
            queue,
            writer,
            shipper,
            #[cfg(feature = "otlp")]
            otlp_shipper,
            heartbeat,
            notifier,
        };
        Ok((layer, guard))
    }
}

/// Starts a shipper thread posting to `sink` and adds its queue to the writer's.
fn start_shipper(
    sink: impl crate::ShipSink,
    what: &'static str,
    sinks: &mut Sinks,
) -> Result<Shipper, InitError> {
    let s = Shipper::start(sink, ShipperConfig::default())
        .map_err(|source| InitError::Spawn { what, source })?;
    sinks.shippers.push(s.queue().clone());
    Ok(s)
}

/// Keeps swarm-obs running; dropping it writes every queued event, posts what the
/// shipper holds, and writes the final `stopped` heartbeat. Keep it alive until the
/// end of `main`.
#[must_use = "dropping the guard stops logging and the heartbeat; bind it: `let _guard = ...`"]
#[derive(Debug)]
pub struct SwarmGuard {
    queue: LogQueue,
    writer: WriterThread,
    shipper: Option<Shipper>,
    #[cfg(feature = "otlp")]
    otlp_shipper: Option<Shipper>,
    heartbeat: Option<HeartbeatWriter>,
    notifier: Option<Notifier>,
}

impl SwarmGuard {
    /// Waits until every event queued so far is written; false if the writer stopped.
    pub fn flush(&self) -> bool {
        self.queue.flush()
    }

    /// Records a ready-made event exactly as the layer records a `tracing` event:
    /// redacted, written to the text and event logs, shipped, and offered to the
    /// heartbeat and the notifier. For events built from outside input (a child's
    /// output, say) that `tracing`'s static fields cannot carry.
    pub fn record(&self, event: Event) {
        self.queue.push(event);
    }

    /// The heartbeat handle, to set task, action and progress directly.
    pub fn heartbeat(&self) -> Option<&HeartbeatHandle> {
        self.heartbeat.as_ref().map(HeartbeatWriter::handle)
    }

    /// Events dropped so far because the queue was full (or a write failed).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped().load(Ordering::Relaxed)
    }

    /// What the shipper posted and dropped, when there is a collector.
    pub fn shipper_stats(&self) -> Option<ShipperStats> {
        self.shipper.as_ref().map(Shipper::stats)
    }

    /// What the OTLP sink sent and dropped, when one was configured with
    /// [`SwarmBuilder::otlp`].
    #[cfg(feature = "otlp")]
    pub fn otlp_stats(&self) -> Option<ShipperStats> {
        self.otlp_shipper.as_ref().map(Shipper::stats)
    }

    /// The notification backend in use (`desktop` or `command`), or `None` when
    /// notifications are off.
    pub fn notifications(&self) -> Option<&'static str> {
        self.notifier.as_ref().map(Notifier::backend)
    }

    /// Notifications dropped so far because their queue was full.
    pub fn notifications_dropped(&self) -> u64 {
        self.notifier.as_ref().map_or(0, Notifier::dropped)
    }
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        // Order matters: the writer hands its last batch to the shipper, and the
        // final heartbeat carries the final dropped count.
        self.writer.stop(&self.queue);
        drop(self.shipper.take());
        #[cfg(feature = "otlp")]
        drop(self.otlp_shipper.take());
        drop(self.heartbeat.take());
        // Last: the writer's final events may still have offered notifications.
        drop(self.notifier.take());
    }
}

/// Records a panic as an `error` event, written synchronously before the previous
/// hook runs (the process may abort right after).
fn install_panic_hook(source: String, queue: LogQueue) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        let thread = std::thread::current();
        let mut ev = Event::new(source.clone(), Kind::Error, format!("panic: {payload}"));
        if let Some(loc) = info.location() {
            ev.fields
                .insert("panic.location".into(), Value::from(loc.to_string()));
        }
        if let Some(name) = thread.name() {
            ev.fields.insert("thread".into(), Value::from(name));
        }
        // The writer thread itself may hold the lock while panicking: do not wait on it.
        if thread.name() != Some(log_writer::THREAD_NAME) {
            queue.write_now(ev);
        }
        previous(info);
    }));
}

/// The local zone's offset from UTC, in seconds east, as the C library reports it
/// now: the zone human lines are written in unless UTC is asked for.
///
/// Asked once, at init: `localtime_r` consults the `TZ` environment and zone files, which is
/// not safe while another thread may call `setenv`, and costs a lock per call; a fixed
/// offset makes every line of one run comparable (a DST change mid-run shifts nothing).
pub fn local_offset_secs() -> i32 {
    #[cfg(unix)]
    {
        // SAFETY: `time` accepts a null pointer; `tm` is plain data that
        // `localtime_r` fills, and we read it only when the call succeeded.
        unsafe {
            let now = libc::time(std::ptr::null_mut());
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&now, &mut tm).is_null() {
                return 0;
            }
            i32::try_from(tm.tm_gmtoff).unwrap_or(0)
        }
    }
    #[cfg(not(unix))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventReader, HeartbeatState, Level, Progress};
    use tracing_subscriber::layer::SubscriberExt;

    fn builder(dir: &std::path::Path) -> SwarmBuilder {
        init("backend")
            .state_root(StateRoot::new(dir))
            .no_collector()
            .utc(true)
            .heartbeat(false)
            .panic_hook(false)
    }

    fn events(dir: &std::path::Path) -> Vec<Event> {
        let root = StateRoot::new(dir);
        let mut out = Vec::new();
        for f in EventLog::files(&root).unwrap() {
            let mut r = EventReader::open(&f, 0).unwrap();
            out.extend(r.by_ref());
            assert_eq!(r.stats().invalid, 0, "every JSON line parses as an Event");
            assert!(!r.stats().torn);
        }
        out
    }

    fn text_lines(dir: &std::path::Path) -> Vec<String> {
        let text = std::fs::read_to_string(StateRoot::new(dir).log_file("backend")).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn run<F: FnOnce()>(layer: SwarmLayer, f: F) {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    }

    #[test]
    fn human_lines_match_the_format_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = builder(dir.path()).filter("trace").build().unwrap();
        run(layer, || {
            tracing::info!("Started TASK_123");
            crate::start!("TASK_123");
            crate::progress!(3, 5, "Analysing file X");
            crate::done!("Finished TASK_123");
            tracing::warn!(disk = "sda", "Disk almost full");
            tracing::error!("Upload failed:\nconnection reset");
            tracing::debug!(n = 1, "detail");
            tracing::info!(files = 3, ok = true);
        });
        drop(guard);
        let lines = text_lines(dir.path());
        let evs = events(dir.path());
        assert_eq!(lines.len(), 8);
        assert_eq!(evs.len(), 8);
        let want = [
            "[INFO] [backend] Started TASK_123",
            "[START] [backend] Started TASK_123",
            "[PROGRESS] [backend] (3/5) Analysing file X",
            "[DONE] [backend] Finished TASK_123",
            "[WARN] [backend] Disk almost full",
            "[ERROR] [backend] Upload failed:⏎connection reset",
            "[DEBUG] [backend] detail",
            "[INFO] [backend] files=3 ok=true",
        ];
        for ((line, ev), want) in lines.iter().zip(&evs).zip(want) {
            // `[YYYY-MM-DD HH:MM:SS] ` is 22 bytes.
            assert_eq!(&line[22..], want);
            assert_eq!(line, &ev.human_line(0), "text line and event agree");
            assert_eq!(&line[..22], format!("[{}] ", ev.ts.human(0)));
        }
        let kinds: Vec<Kind> = evs.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Log,
                Kind::Start,
                Kind::Progress,
                Kind::Done,
                Kind::Log,
                Kind::Error,
                Kind::Log,
                Kind::Log
            ]
        );
        assert_eq!(evs[1].task.as_deref(), Some("TASK_123"));
        assert_eq!(evs[2].progress, Some(Progress { done: 3, total: 5 }));
        assert_eq!(evs[4].level, Level::Warn);
        assert_eq!(evs[4].fields["disk"], "sda");
        assert!(!evs[1].fields.contains_key("kind"), "kind is not a field");
        assert_eq!(evs[0].pid, Some(std::process::id()));
    }

    #[test]
    fn span_and_static_fields_are_flattened_and_secrets_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = builder(dir.path()).field("region", "eu-1").build().unwrap();
        run(layer, || {
            let outer = tracing::info_span!("job", job_id = 7_u64, task = "TASK_9", depth = 1);
            let _o = outer.enter();
            let inner = tracing::info_span!("step", depth = 2, late = tracing::field::Empty);
            let _i = inner.enter();
            inner.record("late", "yes");
            tracing::info!(
                file = "a.rs",
                api_key = "sk-ant-0123456789abcdefghij",
                "uploading with ghp_0123456789abcdefghijklmnopqrstuvwxyz"
            );
        });
        drop(guard);
        let evs = events(dir.path());
        let f = &evs[0].fields;
        assert_eq!(f["region"], "eu-1");
        assert_eq!(f["job_id"], 7);
        assert_eq!(f["depth"], 2, "the inner span wins");
        assert_eq!(f["late"], "yes");
        assert_eq!(f["file"], "a.rs");
        assert_eq!(f["api_key"], crate::REDACTED);
        assert_eq!(evs[0].task.as_deref(), Some("TASK_9"));
        assert!(!evs[0].msg.contains("ghp_0123"), "{}", evs[0].msg);
        assert!(!text_lines(dir.path())[0].contains("ghp_0123"));
    }

    #[test]
    fn nothing_is_lost_across_a_guard_drop() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = builder(dir.path()).queue_capacity(100_000).build().unwrap();
        run(layer, || {
            for i in 0..100_000u32 {
                tracing::info!(i, "event");
            }
        });
        drop(guard);
        let evs = events(dir.path());
        assert_eq!(evs.len(), 100_000);
        for (n, ev) in evs.iter().enumerate() {
            assert_eq!(ev.fields["i"], n, "in order");
        }
        assert_eq!(text_lines(dir.path()).len(), 100_000);
    }

    #[test]
    fn blocking_mode_loses_nothing_through_a_small_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = builder(dir.path())
            .queue_capacity(16)
            .overflow(Overflow::Block)
            .build()
            .unwrap();
        run(layer, || {
            for i in 0..5_000u32 {
                tracing::info!(i, "event");
            }
        });
        assert_eq!(guard.dropped(), 0);
        drop(guard);
        assert_eq!(events(dir.path()).len(), 5_000);
    }

    #[test]
    fn dropped_counter_is_exact_in_lossy_mode() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = Arc::new(AtomicU64::new(0));
        let mut sinks = Sinks::new(Redactor::default(), dropped.clone());
        sinks.events = Some(EventLog::new(StateRoot::new(dir.path())));
        // The writer is not running yet, so exactly `capacity` events fit.
        let (queue, pending) = log_writer::channel(100, Overflow::Drop, sinks);
        let layer = SwarmLayer::new("backend".into(), Map::new(), queue.clone());
        run(layer, || {
            for i in 0..250u32 {
                tracing::info!(i, "event");
            }
        });
        assert_eq!(dropped.load(Ordering::Relaxed), 150);
        // The heartbeat reports the same counter.
        let root = StateRoot::new(dir.path());
        let hb = HeartbeatWriter::start_with_counter(
            &root,
            "backend",
            Duration::from_secs(3600),
            dropped.clone(),
            Redactor::default(),
        )
        .unwrap();
        assert_eq!(hb.handle().snapshot().dropped, 150);
        hb.stop();
        assert_eq!(
            crate::Heartbeat::read(&root.heartbeat_file("backend"))
                .unwrap()
                .dropped,
            150
        );
        let mut writer = pending.spawn().unwrap();
        assert!(queue.flush());
        writer.stop(&queue);
        let evs = events(dir.path());
        assert_eq!(evs.len(), 100);
        assert_eq!(evs[99].fields["i"], 99, "the first 100 were kept");
    }

    #[test]
    fn macros_drive_the_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = builder(dir.path())
            .heartbeat(true)
            .interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let hb = guard.heartbeat().unwrap().clone();
        run(layer, || {
            crate::start!("TASK_7");
            crate::progress!(2, 9, "Analysing file X");
        });
        assert!(guard.flush());
        let beat = hb.snapshot();
        assert_eq!(beat.task.as_deref(), Some("TASK_7"));
        assert_eq!(beat.action.as_deref(), Some("Analysing file X"));
        assert_eq!(beat.progress, Some(Progress { done: 2, total: 9 }));
        assert_eq!(beat.state, HeartbeatState::Working);
        run(
            SwarmLayer::new("backend".into(), Map::new(), guard.queue.clone()),
            || crate::done!("Finished"),
        );
        assert!(guard.flush());
        assert_eq!(hb.snapshot().state, HeartbeatState::Idle);
        let evs = events(dir.path());
        let tasks: Vec<Option<&str>> = evs.iter().map(|e| e.task.as_deref()).collect();
        assert_eq!(
            tasks,
            [Some("TASK_7"); 3],
            "progress and done carry the task"
        );
        drop(guard);
        let last =
            crate::Heartbeat::read(&StateRoot::new(dir.path()).heartbeat_file("backend")).unwrap();
        assert_eq!(last.state, HeartbeatState::Stopped);
        assert_eq!(last.task.as_deref(), Some("TASK_7"));
    }

    #[test]
    fn an_error_as_the_last_word_makes_the_stop_failed() {
        for (last_words, want) in [
            (&["working", "!disk full"][..], HeartbeatState::Failed),
            (&["!disk full", "recovered"][..], HeartbeatState::Stopped),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (layer, guard) = builder(dir.path())
                .heartbeat(true)
                .interval(Duration::from_secs(3600))
                .build()
                .unwrap();
            run(layer, || {
                for w in last_words {
                    match w.strip_prefix('!') {
                        Some(e) => tracing::error!("{e}"),
                        None => tracing::info!("{w}"),
                    }
                }
            });
            drop(guard);
            let last =
                crate::Heartbeat::read(&StateRoot::new(dir.path()).heartbeat_file("backend"))
                    .unwrap();
            assert_eq!(last.state, want, "after {last_words:?}");
        }
    }

    #[test]
    fn a_panic_is_recorded_as_an_error_event() {
        let dir = tempfile::tempdir().unwrap();
        let (_layer, guard) = builder(dir.path()).panic_hook(true).build().unwrap();
        let joined = std::thread::Builder::new()
            .name("doomed".into())
            .spawn(|| panic!("boom at step 3"))
            .unwrap()
            .join();
        assert!(joined.is_err());
        drop(guard);
        let evs = events(dir.path());
        let ev = evs
            .iter()
            .find(|e| e.msg == "panic: boom at step 3")
            .expect("the panic was recorded");
        assert_eq!((ev.kind, ev.level), (Kind::Error, Level::Error));
        assert_eq!(ev.fields["thread"], "doomed");
        assert!(
            ev.fields["panic.location"]
                .as_str()
                .unwrap()
                .contains("init.rs")
        );
    }

    #[test]
    fn the_layer_composes_with_other_layers_and_filters() {
        use tracing_subscriber::Layer;
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = builder(dir.path()).build().unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        struct Count(Arc<AtomicU64>);
        impl<S: tracing::Subscriber> Layer<S> for Count {
            fn on_event(
                &self,
                _: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let subscriber = tracing_subscriber::registry()
            .with(Count(seen.clone()))
            .with(layer.with_filter(EnvFilter::new("warn")));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("only the other layer sees this");
            tracing::warn!("both see this");
        });
        drop(guard);
        assert_eq!(seen.load(Ordering::Relaxed), 2);
        let evs = events(dir.path());
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].msg, "both see this");
    }

    #[test]
    fn a_bad_filter_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let e = builder(dir.path())
            .filter("info,=[")
            .install()
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid log filter"), "{e}");
    }
}
