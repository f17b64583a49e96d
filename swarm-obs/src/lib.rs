//! # swarm-obs
//!
//! Live visibility for a swarm of workers and Claude Code agents: a log file, a tail,
//! and an optional UI, made fast and impossible to lose data through.
//!
//! A worker needs one call at start-up:
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # unsafe { std::env::set_var("SWARM_OBS_HOME", dir.path()) };
//! let _guard = swarm_obs::init("backend").install().expect("swarm-obs starts");
//! swarm_obs::start!("TASK_123");                     // [START] Started TASK_123
//! swarm_obs::progress!(3, 5, "Analysing file X");    // [PROGRESS] (3/5) Analysing file X
//! tracing::info!(rows = 42, "Loaded the index");     // any tracing event, fields kept
//! swarm_obs::done!("Finished TASK_123");             // [DONE] Finished TASK_123
//! ```
//!
//! That gives the process a heartbeat file (`heartbeats/backend.json`, judged by
//! [`read_heartbeats`] as alive, late, down, dead or stopped), human lines in
//! `logs/backend.log`, JSON events in `events/*.jsonl`, and live shipping to a local
//! collector when one runs. The guard flushes everything and writes a final `stopped`
//! heartbeat when dropped. [`SwarmBuilder`] has the options, and
//! [`SwarmBuilder::build`] returns the [`SwarmLayer`] for a subscriber of your own.
//!
//! Every part reads and writes one [`Event`] model, appended as JSON lines to daily
//! files under the state root ([`StateRoot`]) by the [`EventLog`], and offered to the
//! local collector by a [`CollectorClient`].
//!
//! ```
//! use swarm_obs::{Event, EventLog, Kind, StateRoot};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # unsafe { std::env::set_var("SWARM_OBS_HOME", dir.path()) };
//! let log = EventLog::new(StateRoot::resolve());
//! let event = Event::new("backend", Kind::Start, "Started TASK_123");
//! log.append(&event).unwrap();
//! println!("{}", event.human_line(0)); // [2026-01-05 14:32:15] [START] [backend] Started TASK_123
//! ```
//!
//! Secrets are redacted and sizes capped with a [`Redactor`] before anything is
//! written or sent.
//!
//! Start, done and error events become notifications by the sound rules of
//! `config.toml` (see [`notify`]). Desktop notifications (D-Bus on Linux, Notification
//! Center on macOS) need the `desktop` feature, which brings their clients; without
//! it the library stays small and the rules drive a `command` backend (ntfy, a
//! script), or nothing.
//!
//! With the `otlp` feature, the `otlp` module maps events to OpenTelemetry log
//! records and [`SwarmBuilder`] gains `otlp(target)`, which sends a worker's events
//! straight to an OTLP/HTTP receiver (plain or HTTPS, with a CA file or client
//! certificates), with or without a collector. The `http-client` feature (part of
//! `otlp`) is the one outbound HTTP(S) client: [`http_client`] and [`tls`].
#![warn(missing_docs)]

mod atomic_file;
mod collector;
mod config;
pub mod duration;
mod event;
mod event_log;
mod health;
mod heartbeat;
mod host;
#[cfg(feature = "http-client")]
pub mod http_client;
mod http_post;
mod id;
mod init;
mod layer;
mod log_writer;
pub mod notify;
#[cfg(feature = "otlp")]
pub mod otlp;
mod probe_config;
mod redact;
mod shipper;
mod state;
mod timestamp;
#[cfg(feature = "http-client")]
pub mod tls;
mod trust;
pub mod url;
pub mod visible;

pub use atomic_file::write_atomic;
pub use collector::{
    AddressError, COLLECTOR_ENV, CollectorAddress, CollectorClient, CollectorInfo, DEFAULT_PORT,
    PostError, PostedAndHanded, TOKEN_ENV, write_collector_info,
};
pub use config::{
    CollectorConfig, Config, ConfigError, HookConfig, OtlpConfig, OtlpSignalConfig,
    TranscriptsConfig,
};
pub use event::{Event, EventError, Kind, Level, Progress, SCHEMA_VERSION};
pub use event_log::{EventLog, EventLogError, EventReader, MAX_LINE_BYTES, ReadStats};
pub use health::{
    LocalProcesses, ProcessInfo, ProcessStatus, ProcessTable, WorkerReport, WorkerState, classify,
    classify_with_grace, default_grace, process_info, read_heartbeats,
};
pub use heartbeat::{
    DEFAULT_INTERVAL, Heartbeat, HeartbeatError, HeartbeatHandle, HeartbeatState, HeartbeatWriter,
};
pub use host::hostname;
pub use id::{EventId, EventIdError};
pub use init::local_offset_secs;
pub use init::{InitError, SwarmBuilder, SwarmGuard, init};
pub use layer::SwarmLayer;
pub use log_writer::Overflow;
pub use probe_config::{ProbeConfig, ProbeSpec, ProbeTarget};
pub use redact::{REDACTED, RedactConfig, Redactor};
pub use shipper::{ShipSink, Shipper, ShipperConfig, ShipperQueue, ShipperStats};
pub use state::{HOME_ENV, StateRoot, file_stem};
pub use timestamp::{Timestamp, TimestampError};
pub use trust::{TrustError, check_trusted, ensure_private_dir, no_follow};

/// Re-exports for the macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use tracing;
}
