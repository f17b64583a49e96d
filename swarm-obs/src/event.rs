//! The one event model every part of swarm-obs reads and writes (schema v1).
//!
//! One JSON object per line; optional fields are omitted when empty. The schema is
//! documented for other producers in `docs/events.md`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{EventId, Timestamp};

/// The schema version this crate writes.
pub const SCHEMA_VERSION: u32 = 1;

/// What an event says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An ordinary log line.
    Log,
    /// A session, task or process started.
    Start,
    /// Progress on a task (`progress` holds done/total).
    Progress,
    /// A task or agent turn finished.
    Done,
    /// Something failed.
    Error,
    /// A person is needed (a permission prompt, say).
    Attention,
    /// A worker's heartbeat.
    Heartbeat,
    /// Any other Claude Code hook event.
    Hook,
    /// A watcher's verdict: a worker is late, down, dead or recovered.
    Alert,
}

impl Kind {
    /// Every kind, in schema order.
    pub const ALL: [Kind; 9] = [
        Kind::Log,
        Kind::Start,
        Kind::Progress,
        Kind::Done,
        Kind::Error,
        Kind::Attention,
        Kind::Heartbeat,
        Kind::Hook,
        Kind::Alert,
    ];

    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Start => "start",
            Kind::Progress => "progress",
            Kind::Done => "done",
            Kind::Error => "error",
            Kind::Attention => "attention",
            Kind::Heartbeat => "heartbeat",
            Kind::Hook => "hook",
            Kind::Alert => "alert",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity, ordered from `Trace` (least) to `Error` (most).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Very fine detail.
    Trace,
    /// Detail for developers.
    Debug,
    /// Normal operation.
    Info,
    /// Something needs a look.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// The uppercase label of human lines: `INFO`, `WARN`, …
    pub fn label(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Progress of a task: `done` of `total` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Units finished.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// One event, as written to `events/*.jsonl`, posted to the collector and streamed to
/// viewers.
///
/// ```
/// use swarm_obs::{Event, Kind, Level};
/// let ev = Event::new("backend", Kind::Start, "Started TASK_123");
/// assert_eq!(ev.level, Level::Info);
/// let line = ev.to_json_line();
/// assert!(line.ends_with('\n'));
/// let back = Event::from_json(line.trim_end()).unwrap();
/// assert_eq!(back, ev);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Schema version, 1.
    pub v: u32,
    /// Unique, time-ordered id; the dedup key.
    pub id: EventId,
    /// When it happened (UTC, millisecond precision).
    pub ts: Timestamp,
    /// Who emitted it: a worker name, or for hooks the project (plus agent type).
    pub source: String,
    /// What happened.
    pub kind: Kind,
    /// How severe it is.
    pub level: Level,
    /// One human line.
    pub msg: String,
    /// Host the event came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Process id of the emitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The worker's current task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Progress of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Claude Code session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Subagent id; absent for the main agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Subagent type (`general-purpose`, …); absent for the main agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// Claude Code prompt id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// Claude Code hook event name (`PreToolUse`, `Stop`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
    /// Tool name for tool events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Pairs a PreToolUse with its PostToolUse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// How long the tool or task took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The Claude Code process that ran the hook (on `host`): its pid, so a
    /// collector on the same host can tell the session died without `SessionEnd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_pid: Option<u32>,
    /// When that Claude Code process started, which guards `claude_pid` against reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_started_at: Option<Timestamp>,
    /// Structured fields (from `tracing`), flattened.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// The raw hook input, size-capped and redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// Why a line is not a valid event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or JSON that does not match the schema.
    #[error("not a valid swarm-obs event: {0}")]
    Invalid(#[from] serde_json::Error),
    /// A schema version this build does not know.
    #[error("unsupported event schema version {0} (this build reads version {SCHEMA_VERSION})")]
    Version(u32),
    /// A required text field is empty.
    #[error("event field `{0}` must not be empty")]
    Empty(&'static str),
}

impl Event {
    /// A new event stamped now, with a fresh id, this host and this pid.
    /// The level follows the kind: `error` for errors, `warn` for attention, else `info`.
    pub fn new(source: impl Into<String>, kind: Kind, msg: impl Into<String>) -> Self {
        Self::from_process(
            source,
            kind,
            msg,
            crate::host::hostname(),
            std::process::id(),
        )
    }

    /// Like [`new`](Self::new), naming the host and pid it came from: for producers
    /// that know them already (asking the kernel for the pid costs a system call per
    /// event).
    pub fn from_process(
        source: impl Into<String>,
        kind: Kind,
        msg: impl Into<String>,
        host: &str,
        pid: u32,
    ) -> Self {
        let ts = Timestamp::now();
        Self {
            v: SCHEMA_VERSION,
            id: EventId::at(ts),
            ts,
            source: source.into(),
            kind,
            level: match kind {
                Kind::Error => Level::Error,
                Kind::Attention => Level::Warn,
                _ => Level::Info,
            },
            msg: msg.into(),
            host: Some(host.to_owned()),
            pid: Some(pid),
            task: None,
            progress: None,
            session: None,
            agent: None,
            agent_type: None,
            prompt_id: None,
            hook: None,
            tool: None,
            tool_use_id: None,
            duration_ms: None,
            claude_pid: None,
            claude_started_at: None,
            fields: Map::new(),
            payload: None,
        }
    }

    /// Sets the level.
    #[must_use]
    pub fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Parses one JSON object and checks it against the schema.
    pub fn from_json(s: &str) -> Result<Self, EventError> {
        Self::from_json_bytes(s.as_bytes())
    }

    /// Parses one JSON object from bytes and checks it against the schema.
    pub fn from_json_bytes(b: &[u8]) -> Result<Self, EventError> {
        let ev: Event = serde_json::from_slice(b)?;
        ev.validate()?;
        Ok(ev)
    }

    /// Checks what serde cannot: the version and non-empty required text.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.v != SCHEMA_VERSION {
            return Err(EventError::Version(self.v));
        }
        if self.source.is_empty() {
            return Err(EventError::Empty("source"));
        }
        Ok(())
    }

    /// The event as one JSON line, newline included: the event-log format.
    pub fn to_json_line(&self) -> String {
        // Serialising a struct of strings, numbers and JSON values cannot fail.
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The label of human lines: the level, or the kind for kinds a person scans for.
    pub fn label(&self) -> &'static str {
        match self.kind {
            Kind::Progress => "PROGRESS",
            Kind::Done => "DONE",
            Kind::Start => "START",
            Kind::Attention => "ATTENTION",
            Kind::Alert => "ALERT",
            _ => self.level.label(),
        }
    }

    /// The human line `[TIMESTAMP] [LEVEL] [SOURCE] message`, in the zone `offset_secs`
    /// east of UTC, without a trailing newline. Newlines in the message become `⏎` so
    /// one event is always one line.
    ///
    /// ```
    /// use swarm_obs::{Event, Kind, Timestamp};
    /// let mut ev = Event::new("backend", Kind::Log, "Started TASK_123");
    /// ev.ts = "2026-01-05T14:32:15.000Z".parse::<Timestamp>().unwrap();
    /// assert_eq!(ev.human_line(0), "[2026-01-05 14:32:15] [INFO] [backend] Started TASK_123");
    /// ```
    pub fn human_line(&self, offset_secs: i32) -> String {
        let mut line = String::with_capacity(64 + self.source.len() + self.msg.len());
        self.push_human_line(&mut line, offset_secs);
        line
    }

    /// Appends [`human_line`](Self::human_line) to `out`, for writers that gather many
    /// lines in one buffer.
    pub fn push_human_line(&self, out: &mut String, offset_secs: i32) {
        out.push('[');
        self.ts.push_human(out, offset_secs);
        out.push_str("] [");
        out.push_str(self.label());
        out.push_str("] [");
        crate::visible::push_visible(out, &self.source);
        out.push_str("] ");
        if let Some(p) = self.progress
            && self.kind == Kind::Progress
        {
            use std::fmt::Write;
            let _ = write!(out, "({}/{}) ", p.done, p.total);
        }
        crate::visible::push_visible(out, &self.msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut ev = Event::new("backend", Kind::Progress, "Analysing file X");
        ev.ts = "2026-01-05T14:32:15.123Z".parse().unwrap();
        ev.progress = Some(Progress { done: 3, total: 5 });
        ev
    }

    #[test]
    fn json_omits_empty_fields_and_round_trips() {
        let ev = sample();
        let line = ev.to_json_line();
        assert!(line.starts_with(r#"{"v":1,"id":""#), "{line}");
        assert!(line.contains(r#""ts":"2026-01-05T14:32:15.123Z""#));
        assert!(line.contains(r#""kind":"progress","level":"info""#));
        assert!(!line.contains("session") && !line.contains("fields"));
        assert_eq!(Event::from_json(&line).unwrap(), ev);
    }

    #[test]
    fn human_lines_label_kinds() {
        let ev = sample();
        assert_eq!(
            ev.human_line(0),
            "[2026-01-05 14:32:15] [PROGRESS] [backend] (3/5) Analysing file X"
        );
        let mut err = Event::new("w", Kind::Error, "boom\nsecond line\tx\u{7}");
        err.ts = ev.ts;
        assert_eq!(
            err.human_line(0),
            "[2026-01-05 14:32:15] [ERROR] [w] boom⏎second line x\\x07"
        );
        let warn = Event::new("w", Kind::Log, "m").with_level(Level::Warn);
        assert!(warn.human_line(0).contains("[WARN]"));
    }

    #[test]
    fn validation_names_the_problem() {
        let good = sample().to_json_line();
        for (bad, want) in [
            (good.replace(r#""v":1"#, r#""v":2"#), "version 2"),
            (
                good.replace(r#""source":"backend""#, r#""source":"""#),
                "`source`",
            ),
            (
                good.replace(r#""kind":"progress""#, r#""kind":"bogus""#),
                "unknown variant",
            ),
            (good.replace(r#""ts":"2026"#, r#""ts":"x2026"#), "RFC 3339"),
            ("{}".to_string(), "missing field"),
            ("[1,2]".to_string(), "invalid type"),
            ("".to_string(), "EOF"),
        ] {
            let e = Event::from_json(&bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad} -> {e}");
        }
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let line = sample()
            .to_json_line()
            .replacen('{', r#"{"future":true,"#, 1);
        assert!(Event::from_json(&line).is_ok());
    }
}
