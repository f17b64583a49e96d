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
use swarm_obs::{Timestamp, WorkerState};

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
    /// Its own cost and tokens from Claude Code's telemetry: the model calls
    /// that name this agent (by id, or by type when it is the session's only
    /// subagent of that type); absent when none do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<SessionTelemetry>,
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
    /// The part of `telemetry` no agent of `agents` can be given: calls that
    /// name no agent, an agent the hooks never reported, or a subagent type
    /// several subagents of the session share. Absent when every call has its
    /// agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributed: Option<SessionTelemetry>,
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
    /// Adds another's sums to these.
    pub fn add(&mut self, other: &SessionTelemetry) {
        self.cost_usd += other.cost_usd;
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(other.cache_read_tokens);
        self.cache_creation_tokens = self
            .cache_creation_tokens
            .saturating_add(other.cache_creation_tokens);
        self.api_requests = self.api_requests.saturating_add(other.api_requests);
        self.api_duration_ms = self.api_duration_ms.saturating_add(other.api_duration_ms);
    }

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

/// One check of a health probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeCheck {
    /// When it finished.
    pub ts: Timestamp,
    /// Whether the target was as expected.
    pub healthy: bool,
    /// What was seen: `HTTP 200`, `connection refused`, …
    pub detail: String,
    /// How long the check took.
    pub latency_ms: u64,
}

/// The last change of a probe's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeLastTransition {
    /// When.
    pub ts: Timestamp,
    /// The state before; absent on first sight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<WorkerState>,
    /// The state after.
    pub to: WorkerState,
    /// What the check saw.
    pub detail: String,
}

/// One health probe, as `GET /v1/probes` reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeSummary {
    /// Its source name.
    pub name: String,
    /// `http`, `tcp`, `pidfile`, `process`, `systemd` or `systemd-user`.
    pub kind: String,
    /// What it checks: a URL, or `KIND:TARGET`.
    pub target: String,
    /// `alive`, `late` or `down`; absent before the first check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<WorkerState>,
    /// Time between checks.
    pub interval_ms: u64,
    /// Failing this long makes it down.
    pub grace_ms: u64,
    /// An `https://` probe that accepts any certificate (`insecure = true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// When its checks started failing, while they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
    /// The last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<ProbeCheck>,
    /// The last change of state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition: Option<ProbeLastTransition>,
    /// Checks per hour over the last day, oldest first.
    #[serde(default)]
    pub rollup: Vec<RollupHour>,
    /// The latest stored transitions, newest first.
    #[serde(default)]
    pub transitions: Vec<ProbeTransition>,
    /// Healthy checks over all checks of the rollup; `None` before any check.
    #[serde(default)]
    pub healthy_ratio: Option<f64>,
}

/// `GET /v1/probes`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbesAnswer {
    /// Every configured probe, in configuration order.
    pub probes: Vec<ProbeSummary>,
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

/// Who said a [`Turn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnRole {
    /// The person (a prompt) or the harness handing back a tool's result.
    User,
    /// The model.
    Assistant,
}

/// What a [`Turn`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnKind {
    /// A prompt: the text a user (or, for a subagent, its caller) sent.
    Prompt,
    /// Text the model wrote.
    Text,
    /// A tool call: `tool` is its name, `text` its input as compact JSON.
    ToolUse,
    /// A tool's result, paired with its call by `tool_use_id`.
    ToolResult,
}

/// One turn of a conversation: a prompt, a piece of the model's text, a tool call
/// or a tool result. Every string is redacted; control characters are left as
/// they are for viewers to show as escapes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Its ordinal among the transcript's turns, from 0; a paging cursor.
    pub seq: u64,
    /// When Claude Code wrote it; absent when the line had no readable time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Timestamp>,
    /// Who said it.
    pub role: TurnRole,
    /// What it is.
    pub kind: TurnKind,
    /// The text, the tool input as compact JSON, or the result; cut at 2 KiB
    /// with a marker saying so.
    pub text: String,
    /// The whole text's length in bytes, present when `text` was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_bytes: Option<u64>,
    /// The tool called (a tool use), or the tool whose result this is when its
    /// call was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Pairs a tool use with its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// A tool result that reported an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// `GET /v1/sessions/{id}/conversation`: one page of an agent's conversation,
/// read from its transcript on request.
///
/// ```
/// use swarm_obs_collector::api::ConversationAnswer;
///
/// let page: ConversationAnswer = serde_json::from_str(
///     r#"{"session":"s","path":"/p.jsonl","turns":[],"total":0}"#,
/// ).unwrap();
/// assert!(page.turns.is_empty() && !page.lags);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationAnswer {
    /// The session.
    pub session: String,
    /// The subagent; absent for the main agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The transcript read, resolved.
    pub path: String,
    /// The page, in transcript order (its oldest turn first): by default the
    /// newest `limit` turns; with `before`, the newest ones older than it; with
    /// `after`, the oldest ones newer than it.
    pub turns: Vec<Turn>,
    /// Turns in the whole transcript.
    pub total: u64,
    /// Pass back as `before` for the turns older than this page; absent when the
    /// page starts at the first turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
    /// Pass back as `after` for the turns newer than this page (or written since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
    /// The last line had no end and did not parse: Claude Code is writing it (or
    /// it was cut); it was skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Lines skipped because they are not JSON objects, or are turns that cannot
    /// be read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_lines: u64,
    /// Lines skipped, unread, for being over the line cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub oversized_lines: u64,
    /// The transcript is behind the agent's hook events: a prompt, tool call or
    /// final answer the events report is not in it yet (`lag` says which).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lags: bool,
    /// What the transcript lacks, when it lags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<String>,
    /// Time of the transcript's newest turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_turn: Option<Timestamp>,
    /// Time of the agent's newest hook event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<Timestamp>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
