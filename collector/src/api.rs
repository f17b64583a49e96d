//! The JSON of every `/v1/*` answer, as one set of types: the collector serialises
//! them, and `swarm-obs status`, `top` and `tail` read them back with the same types.
//!
//! ```
//! use swarm_obs_collector::api::SessionsAnswer;
//!
//! let answer: SessionsAnswer = serde_json::from_str(r#"{"sessions":[]}"#).unwrap();
//! assert!(answer.sessions.is_empty());
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use swarm_obs::Timestamp;

/// One source, as `GET /v1/sources` reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSummary {
    /// The source name.
    pub source: String,
    /// Events stored.
    pub events: i64,
    /// Events of kind `error` or level `error`.
    pub errors: i64,
    /// First event time.
    pub first_seen: Timestamp,
    /// Last event time.
    pub last_seen: Timestamp,
}

/// `GET /v1/sources`: most recently active first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SourcesAnswer {
    /// Every source.
    pub sources: Vec<SourceSummary>,
}

/// What a Claude Code session or one of its agents is doing now.
///
/// Kept by the collector as events are stored, never recomputed from history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Handling a prompt (with the current tool, when one runs).
    Working,
    /// Waiting on a permission prompt: it needs a person.
    NeedsPermission,
    /// The turn ended; waiting for input.
    Waiting,
    /// Ended cleanly (`SessionEnd`, or a subagent's `SubagentStop`).
    Ended,
    /// Ended with an error (`StopFailure`).
    Failed,
    /// Its `claude` process is gone without a `SessionEnd`.
    Dead,
    /// No liveness can be checked (another host) and it has been quiet too long.
    Stale,
}

impl AgentState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::NeedsPermission => "needs_permission",
            Self::Waiting => "waiting",
            Self::Ended => "ended",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Stale => "stale",
        }
    }

    /// Whether the agent can still do something (not ended, failed or dead).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Self::Working | Self::NeedsPermission | Self::Waiting | Self::Stale
        )
    }

    /// Whether this state means something went wrong (`status` exits 1).
    pub fn is_bad(self) -> bool {
        matches!(self, Self::Failed | Self::Dead)
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One agent (the main agent or a subagent) within a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentSummary {
    /// Subagent id; absent for the main agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Subagent type; absent for the main agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// Events.
    #[serde(default)]
    pub events: i64,
    /// Tool calls (PreToolUse events).
    #[serde(default)]
    pub tool_calls: i64,
    /// Errors.
    #[serde(default)]
    pub errors: i64,
    /// First event time.
    pub first_seen: Timestamp,
    /// Last event time.
    pub last_seen: Timestamp,
    /// What it is doing now.
    pub state: AgentState,
    /// When that state began.
    pub since: Timestamp,
    /// The tool running now (working) or asking for permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// When the current tool started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_since: Option<Timestamp>,
    /// Why it ended or failed (SessionEnd's reason, the error), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What it answered last (the end of its turn), cut to a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
}

/// One Claude Code session, as `GET /v1/sessions` reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session id.
    pub session: String,
    /// Sources that reported for it.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Events.
    #[serde(default)]
    pub events: i64,
    /// Errors.
    #[serde(default)]
    pub errors: i64,
    /// Tool calls by tool name.
    #[serde(default)]
    pub tools: HashMap<String, i64>,
    /// The main agent and every subagent, in order of first appearance.
    #[serde(default)]
    pub agents: Vec<AgentSummary>,
    /// First event time.
    pub first_seen: Timestamp,
    /// Last event time.
    pub last_seen: Timestamp,
    /// `last_seen - first_seen` in milliseconds.
    #[serde(default)]
    pub duration_ms: i64,
    /// The session's state: ended, failed or dead for the whole session; else
    /// `needs_permission` when any agent waits on a prompt, else the main agent's.
    pub state: AgentState,
    /// When that state began.
    pub since: Timestamp,
    /// Why it ended or failed, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The tool running now or asking for permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The last prompt (UserPromptSubmit), cut to a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Host of its `claude` process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Pid of its `claude` process, as the hook saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_pid: Option<u32>,
    /// Cost, tokens and API latency from Claude Code's own telemetry (OTLP ingest);
    /// absent when the session has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<SessionTelemetry>,
}

/// `GET /v1/sessions`: most recently active first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SessionsAnswer {
    /// The sessions.
    pub sessions: Vec<SessionSummary>,
}

/// A session's model usage from Claude Code's telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionTelemetry {
    /// Estimated cost in US dollars.
    pub cost_usd: f64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Tokens written to the prompt cache.
    pub cache_creation_tokens: u64,
    /// Model requests.
    pub api_requests: u64,
    /// Time spent in model requests, summed, in milliseconds.
    pub api_duration_ms: u64,
}

impl SessionTelemetry {
    /// Every token counted.
    pub fn tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_creation_tokens)
    }
}

/// `GET /v1/events`: a page of stored events, newest first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EventsPage {
    /// The events.
    pub events: Vec<swarm_obs::Event>,
    /// Pass back as `cursor` for the next (older) page; `null` at the end.
    #[serde(default)]
    pub next_cursor: Option<String>,
    /// True when a regex filter stopped after its scan limit before filling the
    /// page: `next_cursor` then continues the scan where it stopped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Rows a regex filter looked at for this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned: Option<u64>,
}

/// Events of one minute, counted by kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActivityBucket {
    /// The minute's start.
    pub start: Timestamp,
    /// Events in it, by kind; kinds without events are left out.
    pub counts: BTreeMap<String, i64>,
}

/// `GET /v1/activity`: events per minute by kind over the last minutes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Activity {
    /// Bucket width in milliseconds.
    pub bucket_ms: i64,
    /// Every minute from the oldest to the current (partial) one, empty ones included.
    pub buckets: Vec<ActivityBucket>,
}

/// One hour of a probe's checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollupHour {
    /// The hour's start, RFC 3339.
    pub hour: Timestamp,
    /// Checks run.
    pub checks: i64,
    /// Checks passed.
    pub healthy: i64,
    /// `healthy / checks`.
    pub healthy_ratio: f64,
}

/// One stored state transition of a probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeTransition {
    /// When it happened.
    pub ts: Timestamp,
    /// The state before; absent on first sight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The state after.
    pub to: String,
    /// What the check saw.
    pub detail: String,
}
