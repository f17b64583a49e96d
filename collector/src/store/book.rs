//! Aggregates kept as events are stored, so that no read walks the history: per
//! source counts and first/last times, and per Claude Code session its counts, tools,
//! agents with their live state, and Claude Code's telemetry sums.
//!
//! The writer thread owns the [`Book`]: it counts each newly stored event, and at
//! the end of the batch writes the rows it changed into `agg_sources` and
//! `agg_sessions` in the same transaction as the events, so a restart loads what
//! it had (one row per source and session, never one per event). Retention calls
//! [`Book::forget`] with what it deletes, so the counts always describe the events
//! that are stored.

use std::collections::{BTreeSet, HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use swarm_obs::{Event, Kind, Level, Timestamp};

use super::agent_state::{self, Live, SessionMove};
use crate::api::{AgentState, AgentSummary, SessionSummary, SessionTelemetry, SourceSummary};

/// The `event.name` of Claude Code's per-request telemetry record (one model call
/// with cost and tokens).
pub const API_REQUEST: &str = "claude_code.api_request";
const COST_METRIC: &str = "claude_code.cost.usage";
const TOKEN_METRIC: &str = "claude_code.token.usage";
/// The per-agent key of telemetry the CLI counts as the main agent's.
const MAIN_AGENT: &str = "main";
/// Separates the parts of a metric series key.
const SEP: char = '\u{1f}';

/// Counts of one source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceAgg {
    pub events: i64,
    pub errors: i64,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// One agent of a session: counts and live state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AgentAgg {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    pub events: i64,
    pub tool_calls: i64,
    pub errors: i64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub live: Live,
    /// What it said last (Stop / SubagentStop `last_assistant_message`), cut to a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
    /// Its own transcript (SubagentStop's `agent_transcript_path`): where
    /// `GET /v1/sessions/{id}/conversation?agent=<id>` reads it. Only the path is
    /// kept; the transcript is read on request, never copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

/// Telemetry sums of a session. Log records (`api_request`) win when present; the
/// cost and token metrics say the same again and only count for sessions without.
///
/// Each sum is also kept by the agent the telemetry names ([`agent_key`]); which
/// lane that is gets decided when the session is read, against the lanes the
/// hooks reported by then.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TelemetryAgg {
    pub records: SessionTelemetry,
    /// `records` by agent key.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub by_agent: HashMap<String, SessionTelemetry>,
    /// Delta points summed by (metric, token type, agent key).
    #[serde(default)]
    pub delta: HashMap<String, f64>,
    /// Cumulative points: the largest value of each series (metric, type, agent
    /// key, model, effort).
    #[serde(default)]
    pub cumulative: HashMap<String, f64>,
    /// Telemetry events counted; 0 means the session has none.
    pub events: i64,
}

/// One session: counts, tools, agents and the session-wide state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionAgg {
    pub events: i64,
    pub errors: i64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub sources: BTreeSet<String>,
    pub tools: HashMap<String, i64>,
    pub agents: Vec<AgentAgg>,
    /// Ended, failed or dead for the whole session, with when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<(AgentState, Timestamp, Option<String>)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_started_at: Option<Timestamp>,
    /// The permission reminder for the current prompt went out.
    #[serde(default)]
    pub reminded: bool,
    #[serde(default)]
    pub telemetry: TelemetryAgg,
    /// The main agent's transcript (`transcript_path` of the newest hook event
    /// that carried one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

fn is_error(ev_kind: &str, lvl: i64) -> bool {
    ev_kind == "error" || lvl >= 4
}

impl SessionAgg {
    fn new(ts: i64) -> Self {
        Self {
            events: 0,
            errors: 0,
            first_ts: ts,
            last_ts: ts,
            sources: BTreeSet::new(),
            tools: HashMap::new(),
            agents: Vec::new(),
            closed: None,
            prompt: None,
            host: None,
            claude_pid: None,
            claude_started_at: None,
            reminded: false,
            telemetry: TelemetryAgg::default(),
            transcript: None,
        }
    }

    fn agent_mut(&mut self, agent: Option<&str>, ts: Timestamp) -> &mut AgentAgg {
        let i = match self.agents.iter().position(|a| a.agent.as_deref() == agent) {
            Some(i) => i,
            None => {
                let state = if agent.is_some() {
                    AgentState::Working
                } else {
                    AgentState::Waiting
                };
                self.agents.push(AgentAgg {
                    agent: agent.map(str::to_owned),
                    agent_type: None,
                    events: 0,
                    tool_calls: 0,
                    errors: 0,
                    first_ts: ts.unix_ms(),
                    last_ts: ts.unix_ms(),
                    live: Live::new(state, ts),
                    last_message: None,
                    transcript: None,
                });
                self.agents.len() - 1
            }
        };
        &mut self.agents[i]
    }

    /// The session's state: closed states win; then a prompt waiting on a person in
    /// any agent; then the main agent's (or, with no main agent seen, the newest).
    pub fn state_ref(&self) -> (AgentState, Timestamp, Option<&str>, Option<&str>) {
        if let Some((state, since, reason)) = &self.closed {
            return (*state, *since, reason.as_deref(), None);
        }
        if let Some(a) = self
            .agents
            .iter()
            .filter(|a| a.live.state == AgentState::NeedsPermission)
            .min_by_key(|a| a.live.since)
        {
            return (a.live.state, a.live.since, None, a.live.tool.as_deref());
        }
        let main = self
            .agents
            .iter()
            .find(|a| a.agent.is_none())
            .or_else(|| self.agents.iter().max_by_key(|a| a.live.moved_at));
        match main {
            Some(a) => {
                // A main agent that waits while a subagent (one in the background,
                // say) still works: the session is working.
                let working = self
                    .agents
                    .iter()
                    .filter(|s| s.agent.is_some() && s.live.state == AgentState::Working)
                    .min_by_key(|s| s.live.since);
                match (a.live.state, working) {
                    (AgentState::Waiting, Some(s)) => (
                        AgentState::Working,
                        s.live.since,
                        None,
                        s.live.tool.as_deref(),
                    ),
                    _ => (
                        a.live.state,
                        a.live.since,
                        a.live.reason.as_deref(),
                        a.live.tool.as_deref(),
                    ),
                }
            }
            None => (
                AgentState::Waiting,
                Timestamp::from_unix_ms(self.first_ts),
                None,
                None,
            ),
        }
    }

    /// [`state_ref`](Self::state_ref), owned.
    pub fn state(&self) -> (AgentState, Timestamp, Option<String>, Option<String>) {
        let (state, since, reason, tool) = self.state_ref();
        (
            state,
            since,
            reason.map(str::to_owned),
            tool.map(str::to_owned),
        )
    }

    /// What viewers are told when it changes: the state, its start, and a hash of
    /// the tool (cheap to compare on every event, nothing cloned).
    fn state_key(&self) -> (AgentState, Timestamp, u64) {
        use std::hash::{Hash, Hasher};
        let (state, since, _, tool) = self.state_ref();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        tool.hash(&mut h);
        (state, since, h.finish())
    }

    /// Whether the collector should check the session's `claude` process.
    pub fn watchable(&self) -> bool {
        self.closed.is_none() && self.claude_pid.is_some()
    }

    /// The lane (index in `agents`) telemetry under `key` belongs to: the main
    /// agent's, the subagent of that id, or the only subagent of that type; `None`
    /// when no lane can be told (no agent named, an id the hooks never reported,
    /// a type several subagents share).
    fn lane_of(&self, key: &str) -> Option<usize> {
        if key == MAIN_AGENT {
            return self.agents.iter().position(|a| a.agent.is_none());
        }
        if let Some(id) = key.strip_prefix("id:") {
            return self
                .agents
                .iter()
                .position(|a| a.agent.as_deref() == Some(id));
        }
        let ty = key.strip_prefix("type:")?;
        let mut of_type = self
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| a.agent.is_some() && a.agent_type.as_deref() == Some(ty));
        let (first, _) = of_type.next()?;
        of_type.next().is_none().then_some(first)
    }

    /// The session's telemetry, each lane's (in `agents` order) and the part no
    /// lane can be given; `None` when the session has none.
    fn telemetry(&self) -> Option<TelemetrySplit> {
        let t = &self.telemetry;
        if t.events == 0 {
            return None;
        }
        let mut split = TelemetrySplit {
            session: SessionTelemetry::default(),
            agents: vec![None; self.agents.len()],
            unattributed: None,
        };
        let mut give = |key: &str, part: &SessionTelemetry| {
            let slot = match self.lane_of(key) {
                Some(i) => &mut split.agents[i],
                None => &mut split.unattributed,
            };
            slot.get_or_insert_with(SessionTelemetry::default).add(part);
        };
        if t.records.api_requests > 0 {
            let mut named = SessionTelemetry::default();
            for (key, part) in &t.by_agent {
                give(key, part);
                named.add(part);
            }
            // Requests counted before sums were kept by agent name none.
            if named.api_requests < t.records.api_requests {
                let r = &t.records;
                give(
                    "",
                    &SessionTelemetry {
                        cost_usd: (r.cost_usd - named.cost_usd).max(0.0),
                        input_tokens: r.input_tokens.saturating_sub(named.input_tokens),
                        output_tokens: r.output_tokens.saturating_sub(named.output_tokens),
                        cache_read_tokens: r
                            .cache_read_tokens
                            .saturating_sub(named.cache_read_tokens),
                        cache_creation_tokens: r
                            .cache_creation_tokens
                            .saturating_sub(named.cache_creation_tokens),
                        api_requests: r.api_requests - named.api_requests,
                        api_duration_ms: r.api_duration_ms.saturating_sub(named.api_duration_ms),
                    },
                );
            }
            split.session = t.records;
        } else {
            let mut session = SessionTelemetry::default();
            for (key, v) in t.delta.iter().chain(t.cumulative.iter()) {
                let mut it = key.splitn(4, SEP);
                let (name, kind) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                // Keys written before sums were kept by agent end at the type or
                // the model: those never read as an agent key.
                let agent = it.next().unwrap_or("");
                let tokens = v.max(0.0) as u64;
                let mut part = SessionTelemetry::default();
                match (name, kind) {
                    (COST_METRIC, _) => part.cost_usd = *v,
                    (_, "input") => part.input_tokens = tokens,
                    (_, "output") => part.output_tokens = tokens,
                    (_, "cacheRead") => part.cache_read_tokens = tokens,
                    (_, "cacheCreation") => part.cache_creation_tokens = tokens,
                    _ => continue,
                }
                session.add(&part);
                give(agent, &part);
            }
            split.session = session;
        }
        split.unattributed = split
            .unattributed
            .filter(|u| u.cost_usd > 0.0 || u.tokens() > 0 || u.api_requests > 0);
        Some(split)
    }

    /// The `/v1/sessions` shape; `stale_after_ms` turns a live session nobody can
    /// check (no `claude` pid on this host) quiet for that long into `stale`.
    pub fn summary(
        &self,
        session: &str,
        now: Timestamp,
        local_host: &str,
        stale_after_ms: i64,
    ) -> SessionSummary {
        let (mut state, mut since, reason, tool) = self.state();
        let checkable = self.claude_pid.is_some() && self.host.as_deref() == Some(local_host);
        if state.is_live() && !checkable && now.unix_ms() - self.last_ts > stale_after_ms {
            state = AgentState::Stale;
            since = Timestamp::from_unix_ms(self.last_ts);
        }
        let telemetry = self.telemetry();
        let mut agents: Vec<AgentSummary> = self
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| AgentSummary {
                agent: a.agent.clone(),
                agent_type: a.agent_type.clone(),
                events: a.events,
                tool_calls: a.tool_calls,
                errors: a.errors,
                first_seen: Timestamp::from_unix_ms(a.first_ts),
                last_seen: Timestamp::from_unix_ms(a.last_ts),
                state: match (self.closed.as_ref(), a.live.state) {
                    // A dead session takes its agents with it.
                    (Some((AgentState::Dead, _, _)), s) if s.is_live() => AgentState::Dead,
                    (None, s) if s.is_live() && state == AgentState::Stale => AgentState::Stale,
                    (_, s) => s,
                },
                since: a.live.since,
                tool: a.live.tool.clone(),
                tool_since: a.live.tool_since,
                reason: a.live.reason.clone(),
                last_message: a.last_message.clone(),
                telemetry: telemetry.as_ref().and_then(|t| t.agents[i]),
            })
            .collect();
        agents.sort_by_key(|a| (a.first_seen, a.agent.is_some()));
        SessionSummary {
            session: session.to_owned(),
            sources: self.sources.iter().cloned().collect(),
            events: self.events,
            errors: self.errors,
            tools: self.tools.clone(),
            agents,
            first_seen: Timestamp::from_unix_ms(self.first_ts),
            last_seen: Timestamp::from_unix_ms(self.last_ts),
            duration_ms: self.last_ts - self.first_ts,
            state,
            since,
            reason,
            tool,
            prompt: self.prompt.clone(),
            host: self.host.clone(),
            claude_pid: self.claude_pid,
            unattributed: telemetry.as_ref().and_then(|t| t.unattributed),
            telemetry: telemetry.map(|t| t.session),
        }
    }
}

/// A session's telemetry, split by lane.
struct TelemetrySplit {
    session: SessionTelemetry,
    agents: Vec<Option<SessionTelemetry>>,
    unattributed: Option<SessionTelemetry>,
}

/// Which agent a telemetry record or metric point names, as Claude Code says it
/// (2.1.337): `id:<agent_id>` (a subagent's `api_request`), `type:<agent.name>`
/// (a subagent named by its type only: `query_source` `subagent` on the cost and
/// token metrics, `agent:…` on a record), `main` (any other `query_source`: the
/// main loop and the calls the CLI makes beside it, which its metrics count as
/// `main`), or empty when it names none.
fn agent_key(f: &serde_json::Map<String, serde_json::Value>) -> String {
    let text = |k: &str| {
        f.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(id) = text("agent_id") {
        return format!("id:{id}");
    }
    match text("query_source") {
        Some(q) if q == "subagent" || q.starts_with("agent:") => {
            text("agent.name").map_or_else(String::new, |t| format!("type:{t}"))
        }
        Some(_) => MAIN_AGENT.to_owned(),
        None => String::new(),
    }
}

/// Adds one telemetry event (OTLP ingest: no hook) to a session's sums.
fn count_telemetry(t: &mut TelemetryAgg, ev: &Event) -> bool {
    let f = &ev.fields;
    // OTLP attributes arrive as numbers or as numeric strings.
    let num = |k: &str| {
        f.get(k)
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok()))
            .filter(|v: &f64| v.is_finite())
            .unwrap_or(0.0)
    };
    let text = |k: &str| f.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
    if text("event.name") == API_REQUEST {
        let call = SessionTelemetry {
            cost_usd: num("cost_usd"),
            input_tokens: num("input_tokens").max(0.0) as u64,
            output_tokens: num("output_tokens").max(0.0) as u64,
            cache_read_tokens: num("cache_read_tokens").max(0.0) as u64,
            cache_creation_tokens: num("cache_creation_tokens").max(0.0) as u64,
            api_requests: 1,
            api_duration_ms: num("duration_ms").max(0.0) as u64,
        };
        t.records.add(&call);
        t.by_agent.entry(agent_key(f)).or_default().add(&call);
        t.events += 1;
        return true;
    }
    let name = text("metric.name");
    if ev.kind == Kind::Log && (name == COST_METRIC || name == TOKEN_METRIC) {
        let value = num("metric.value");
        let agent = agent_key(f);
        if text("metric.temporality") == "cumulative" {
            let key = format!(
                "{name}{SEP}{}{SEP}{agent}{SEP}{}{SEP}{}",
                text("type"),
                text("model"),
                text("effort")
            );
            let e = t.cumulative.entry(key).or_insert(value);
            *e = e.max(value);
        } else {
            *t.delta
                .entry(format!("{name}{SEP}{}{SEP}{agent}", text("type")))
                .or_default() += value;
        }
        t.events += 1;
        return true;
    }
    false
}

/// Whether an event feeds a session's telemetry sums.
pub(crate) fn is_telemetry(ev: &Event) -> bool {
    ev.hook.is_none() && ev.session.is_some() && count_telemetry(&mut TelemetryAgg::default(), ev)
}

/// The aggregates, owned by the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Book {
    pub sources: HashMap<String, SourceAgg>,
    pub sessions: HashMap<String, SessionAgg>,
    dirty_sources: HashSet<String>,
    dirty_sessions: HashSet<String>,
    /// Sessions whose state, since or tool changed in this batch: pushed to viewers.
    moved: HashSet<String>,
    /// Sessions whose counts (events, tools, telemetry) changed since they were last
    /// pushed: pushed at a slower pace than state moves.
    touched: HashSet<String>,
}

/// A stored event's columns as retention reads them back before deleting it.
pub(crate) struct Gone {
    pub source: String,
    pub session: Option<String>,
    pub agent: Option<String>,
    pub kind: String,
    pub lvl: i64,
    pub hook: Option<String>,
    pub tool: Option<String>,
    /// The event's JSON when it fed telemetry sums (its session is then recounted).
    pub telemetry: bool,
}

impl Book {
    /// Loads the persisted aggregates (one row per source and session).
    pub fn load(c: &Connection) -> rusqlite::Result<Self> {
        let mut book = Book::default();
        let mut st =
            c.prepare("SELECT source, events, errors, first_ts, last_ts FROM agg_sources")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            book.sources.insert(
                r.get(0)?,
                SourceAgg {
                    events: r.get(1)?,
                    errors: r.get(2)?,
                    first_ts: r.get(3)?,
                    last_ts: r.get(4)?,
                },
            );
        }
        let mut st = c.prepare("SELECT session, data FROM agg_sessions")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let data: String = r.get(1)?;
            // A row this build cannot read is rebuilt from scratch by the caller.
            let agg: SessionAgg = serde_json::from_str(&data).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            book.sessions.insert(r.get(0)?, agg);
        }
        Ok(book)
    }

    /// Counts one newly stored event.
    pub fn add(&mut self, ev: &Event) {
        let ts = ev.ts.unix_ms();
        let lvl = super::level_rank(ev.level);
        let error = is_error(ev.kind.as_str(), lvl);
        // Looked up before inserted: no key is copied for the common case.
        if !self.sources.contains_key(&ev.source) {
            self.sources.insert(
                ev.source.clone(),
                SourceAgg {
                    events: 0,
                    errors: 0,
                    first_ts: ts,
                    last_ts: ts,
                },
            );
        }
        let Some(src) = self.sources.get_mut(&ev.source) else {
            return;
        };
        src.events += 1;
        src.errors += i64::from(error);
        src.first_ts = src.first_ts.min(ts);
        src.last_ts = src.last_ts.max(ts);
        if !self.dirty_sources.contains(&ev.source) {
            self.dirty_sources.insert(ev.source.clone());
        }
        let Some(session) = ev.session.as_deref() else {
            return;
        };
        if !self.sessions.contains_key(session) {
            self.sessions
                .insert(session.to_owned(), SessionAgg::new(ts));
        }
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let before = s.state_key();
        s.events += 1;
        s.errors += i64::from(error);
        s.first_ts = s.first_ts.min(ts);
        s.last_ts = s.last_ts.max(ts);
        if !s.sources.contains(&ev.source) {
            s.sources.insert(ev.source.clone());
        }
        let pre_tool = ev.hook.as_deref() == Some("PreToolUse");
        if pre_tool && let Some(tool) = &ev.tool {
            *s.tools.entry(tool.clone()).or_default() += 1;
        }
        if ev.hook.is_none() && ev.kind != Kind::Alert {
            count_telemetry(&mut s.telemetry, ev);
        }
        let newest = ts >= s.last_ts;
        if let Some(pid) = ev.claude_pid
            && newest
        {
            let other_process =
                s.claude_pid != Some(pid) || s.claude_started_at != ev.claude_started_at;
            // A resumed session (a new `claude` process under the same id) lives again.
            if other_process && matches!(s.closed, Some((AgentState::Dead, _, _))) {
                s.closed = None;
            }
            s.claude_pid = Some(pid);
            s.claude_started_at = ev.claude_started_at;
            s.host = ev.host.clone();
        }
        if ev.hook.as_deref() == Some("UserPromptSubmit") && newest {
            let prompt = ev
                .payload
                .as_ref()
                .and_then(|p| p.get("prompt"))
                .and_then(|p| p.as_str())
                .unwrap_or(&ev.msg);
            s.prompt = Some(agent_state::short(prompt));
        }
        // Transcript paths: one lookup in the payload per hook event, a copy only
        // when the path changes.
        let payload = ev.payload.as_ref().filter(|_| ev.hook.is_some());
        let path_in = |key: &str| {
            payload
                .and_then(|p| p.get(key))
                .and_then(|p| p.as_str())
                .filter(|p| !p.is_empty())
        };
        if newest
            && let Some(path) = path_in("transcript_path")
            && s.transcript.as_deref() != Some(path)
        {
            s.transcript = Some(path.to_owned());
        }
        let subagent = ev.agent.is_some();
        let dead = matches!(s.closed, Some((AgentState::Dead, _, _)));
        let a = s.agent_mut(ev.agent.as_deref(), ev.ts);
        if matches!(ev.hook.as_deref(), Some("Stop" | "SubagentStop")) && ts >= a.last_ts {
            // Kept with the state: what the agent answered is in hand without
            // opening its transcript.
            if let Some(said) = ev
                .payload
                .as_ref()
                .and_then(|p| p.get("last_assistant_message"))
                .and_then(|m| m.as_str())
                .filter(|m| !m.trim().is_empty())
            {
                a.last_message = Some(agent_state::short(said));
            }
        }
        if subagent
            && let Some(path) = path_in("agent_transcript_path")
            && a.transcript.as_deref() != Some(path)
        {
            a.transcript = Some(path.to_owned());
        }
        a.events += 1;
        a.errors += i64::from(error);
        a.tool_calls += i64::from(pre_tool);
        a.first_ts = a.first_ts.min(ts);
        a.last_ts = a.last_ts.max(ts);
        if a.agent_type.is_none() && ev.agent_type.is_some() {
            a.agent_type = ev.agent_type.clone();
        }
        // A dead session's late events (caught up from the log) do not revive it.
        let moved = if dead && ev.kind != Kind::Alert {
            SessionMove::None
        } else {
            agent_state::apply(&mut a.live, ev, subagent)
        };
        match moved {
            SessionMove::None => {}
            SessionMove::Close(state, reason) => {
                if s.closed.is_none() || state == AgentState::Ended {
                    s.closed = Some((state, ev.ts, reason));
                }
            }
            SessionMove::Dead(reason) => {
                if s.closed.is_none() {
                    s.closed = Some((AgentState::Dead, ev.ts, Some(reason)));
                }
            }
            SessionMove::Reminded => s.reminded = true,
        }
        let after = s.state_key();
        if after.0 != AgentState::NeedsPermission {
            s.reminded = false;
        }
        if before != after && !self.moved.contains(session) {
            self.moved.insert(session.to_owned());
        }
        if !self.dirty_sessions.contains(session) {
            self.dirty_sessions.insert(session.to_owned());
        }
        if !self.touched.contains(session) {
            self.touched.insert(session.to_owned());
        }
    }

    /// Takes back what retention deleted. Returns the sessions whose telemetry must
    /// be recounted from their remaining events, and the touched keys whose first
    /// and last times must be read again.
    pub fn forget(&mut self, gone: &[Gone]) -> Touched {
        let mut touched = Touched::default();
        for g in gone {
            let error = is_error(&g.kind, g.lvl);
            if let Some(s) = self.sources.get_mut(&g.source) {
                s.events -= 1;
                s.errors -= i64::from(error);
            }
            touched.sources.insert(g.source.clone());
            let Some(session) = &g.session else { continue };
            let Some(s) = self.sessions.get_mut(session) else {
                continue;
            };
            s.events -= 1;
            s.errors -= i64::from(error);
            let pre_tool = g.hook.as_deref() == Some("PreToolUse");
            if pre_tool
                && let Some(tool) = &g.tool
                && let Some(n) = s.tools.get_mut(tool)
            {
                *n -= 1;
                if *n <= 0 {
                    s.tools.remove(tool);
                }
            }
            if let Some(a) = s.agents.iter_mut().find(|a| a.agent == g.agent) {
                a.events -= 1;
                a.errors -= i64::from(error);
                a.tool_calls -= i64::from(pre_tool);
            }
            if g.telemetry {
                touched.telemetry.insert(session.clone());
            }
            touched.sessions.insert(session.clone());
        }
        touched
    }

    /// Re-reads first and last times of what retention touched (index lookups),
    /// drops what has no events left, and recounts telemetry where needed.
    pub fn settle(&mut self, c: &Connection, touched: Touched) -> rusqlite::Result<()> {
        for source in touched.sources {
            let Some(s) = self.sources.get_mut(&source) else {
                continue;
            };
            if s.events <= 0 {
                self.sources.remove(&source);
            } else {
                let (first, last) = c.query_row(
                    "SELECT MIN(ts), MAX(ts) FROM events WHERE source = ?1",
                    [&source],
                    |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
                )?;
                s.first_ts = first.unwrap_or(s.first_ts);
                s.last_ts = last.unwrap_or(s.last_ts);
            }
            self.dirty_sources.insert(source);
        }
        for session in touched.sessions {
            let Some(s) = self.sessions.get_mut(&session) else {
                continue;
            };
            if s.events <= 0 {
                self.sessions.remove(&session);
                self.dirty_sessions.insert(session);
                continue;
            }
            let (first, last) = c.query_row(
                "SELECT MIN(ts), MAX(ts) FROM events WHERE session = ?1",
                [&session],
                |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
            )?;
            s.first_ts = first.unwrap_or(s.first_ts);
            s.last_ts = last.unwrap_or(s.last_ts);
            // Each remaining agent's and source's oldest event: a walk of the
            // session's time index from its oldest row, which stops at the first
            // match, instead of grouping every event of the session (a step
            // touches up to 200 sessions, so that was a scan of the whole store).
            // (Under the size cap, rows go in insertion order, so a last time
            // can move too.)
            s.agents.retain(|a| a.events > 0);
            let mut first_of_agent = c.prepare_cached(
                "SELECT ts FROM events INDEXED BY events_session
                 WHERE session = ?1 AND agent IS ?2 ORDER BY ts LIMIT 1",
            )?;
            let mut last_of_agent = c.prepare_cached(
                "SELECT ts FROM events INDEXED BY events_session
                 WHERE session = ?1 AND agent IS ?2 ORDER BY ts DESC LIMIT 1",
            )?;
            for a in &mut s.agents {
                let key = rusqlite::params![&session, &a.agent];
                if let Some(ts) = first_of_agent.query_row(key, |r| r.get(0)).optional()? {
                    a.first_ts = ts;
                }
                if let Some(ts) = last_of_agent.query_row(key, |r| r.get(0)).optional()? {
                    a.last_ts = ts;
                }
            }
            let mut has_source = c.prepare_cached(
                "SELECT 1 FROM events INDEXED BY events_session
                 WHERE session = ?1 AND source = ?2 LIMIT 1",
            )?;
            let mut sources = std::mem::take(&mut s.sources);
            sources.retain(|src| {
                has_source
                    .query_row(rusqlite::params![&session, src], |_| Ok(()))
                    .optional()
                    .map_or(true, |found| found.is_some())
            });
            s.sources = sources;
            if touched.telemetry.contains(&session) {
                let mut t = TelemetryAgg::default();
                let mut st = c.prepare_cached(
                    "SELECT json FROM events WHERE session = ?1 AND hook IS NULL ORDER BY seq",
                )?;
                let mut rows = st.query([&session])?;
                while let Some(r) = rows.next()? {
                    let json: String = r.get(0)?;
                    if let Ok(ev) = Event::from_json(&json)
                        && ev.kind != Kind::Alert
                    {
                        count_telemetry(&mut t, &ev);
                    }
                }
                s.telemetry = t;
            }
            self.dirty_sessions.insert(session);
        }
        Ok(())
    }

    /// Writes the rows changed since the last flush (inside the caller's transaction).
    pub fn flush(&mut self, c: &Connection) -> rusqlite::Result<()> {
        for source in self.dirty_sources.drain() {
            match self.sources.get(&source) {
                Some(s) => {
                    c.prepare_cached(
                        "INSERT INTO agg_sources (source, events, errors, first_ts, last_ts)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT(source) DO UPDATE SET events = excluded.events,
                           errors = excluded.errors, first_ts = excluded.first_ts,
                           last_ts = excluded.last_ts",
                    )?
                    .execute(params![source, s.events, s.errors, s.first_ts, s.last_ts])?;
                }
                None => {
                    c.prepare_cached("DELETE FROM agg_sources WHERE source = ?1")?
                        .execute([&source])?;
                }
            }
        }
        for session in self.dirty_sessions.drain() {
            match self.sessions.get(&session) {
                Some(s) => {
                    let data = serde_json::to_string(s).unwrap_or_default();
                    c.prepare_cached(
                        "INSERT INTO agg_sessions (session, last_ts, watch, data)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(session) DO UPDATE SET last_ts = excluded.last_ts,
                           watch = excluded.watch, data = excluded.data",
                    )?
                    .execute(params![
                        session,
                        s.last_ts,
                        s.watchable(),
                        data
                    ])?;
                }
                None => {
                    c.prepare_cached("DELETE FROM agg_sessions WHERE session = ?1")?
                        .execute([&session])?;
                }
            }
        }
        Ok(())
    }

    /// Sessions whose state moved since the last call; they count as pushed.
    pub fn take_moved(&mut self) -> Vec<String> {
        for s in &self.moved {
            self.touched.remove(s);
        }
        self.moved.drain().collect()
    }

    /// Drops what was to be pushed (aggregates rebuilt, or nobody listens).
    pub fn forget_news(&mut self) {
        self.moved.clear();
        self.touched.clear();
    }

    /// Sessions whose counts changed since they were last taken (or moved).
    pub fn take_touched(&mut self) -> Vec<String> {
        self.touched.drain().collect()
    }

    /// Drops unflushed changes (their transaction rolled back) by reloading.
    pub fn reload(&mut self, c: &Connection) -> rusqlite::Result<()> {
        *self = Book::load(c)?;
        Ok(())
    }
}

/// Keys retention touched.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub sources: HashSet<String>,
    pub sessions: HashSet<String>,
    pub telemetry: HashSet<String>,
}

/// Every source, most recently active first (at most `limit`).
pub fn sources(c: &Connection, limit: usize) -> rusqlite::Result<Vec<SourceSummary>> {
    let mut st = c.prepare_cached(
        "SELECT source, events, errors, first_ts, last_ts FROM agg_sources
         ORDER BY last_ts DESC LIMIT ?1",
    )?;
    let rows = st.query_map([limit as i64], |r| {
        Ok(SourceSummary {
            source: r.get(0)?,
            events: r.get(1)?,
            errors: r.get(2)?,
            first_seen: Timestamp::from_unix_ms(r.get(3)?),
            last_seen: Timestamp::from_unix_ms(r.get(4)?),
        })
    })?;
    rows.collect()
}

/// Reads stored session rows, newest activity first.
pub(crate) fn session_rows(
    c: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<(String, SessionAgg)>> {
    let mut st =
        c.prepare_cached("SELECT session, data FROM agg_sessions ORDER BY last_ts DESC LIMIT ?1")?;
    let mut rows = st.query([limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let data: String = r.get(1)?;
        if let Ok(agg) = serde_json::from_str(&data) {
            out.push((r.get(0)?, agg));
        }
    }
    Ok(out)
}

/// One session row by id.
pub(crate) fn session_row(c: &Connection, session: &str) -> rusqlite::Result<Option<SessionAgg>> {
    use rusqlite::OptionalExtension;
    let data: Option<String> = c
        .query_row(
            "SELECT data FROM agg_sessions WHERE session = ?1",
            [session],
            |r| r.get(0),
        )
        .optional()?;
    Ok(data.and_then(|d| serde_json::from_str(&d).ok()))
}

/// Sessions whose `claude` process the collector checks: live, with a pid.
pub(crate) fn watched_sessions(c: &Connection) -> rusqlite::Result<Vec<(String, SessionAgg)>> {
    let mut st = c.prepare_cached("SELECT session, data FROM agg_sessions WHERE watch = 1")?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let data: String = r.get(1)?;
        if let Ok(agg) = serde_json::from_str(&data) {
            out.push((r.get(0)?, agg));
        }
    }
    Ok(out)
}

/// Whether `lvl` and `kind` make an error, as the aggregates count it.
pub fn counts_as_error(kind: Kind, level: Level) -> bool {
    is_error(kind.as_str(), super::level_rank(level))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::store::Retention;
    use crate::store::scratch::{figures, from_scratch};
    use crate::store::testing::{db, insert, restart, retain};

    /// A small deterministic generator (xorshift), so a failure replays.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    const DAY_MS: i64 = 86_400_000;

    fn random_event(rng: &mut Rng, now: i64) -> Event {
        let kinds = [Kind::Log, Kind::Hook, Kind::Error, Kind::Done, Kind::Alert];
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let source = rng.pick(&["api", "web", "proj1", "proj2", "batch"]);
        let mut ev = Event::new(source, kind, "m");
        ev.level = [Level::Debug, Level::Info, Level::Warn, Level::Error][rng.below(4) as usize];
        // Out of order, some older than the retention age.
        ev.ts = Timestamp::from_unix_ms(now - rng.below(10 * DAY_MS as u64) as i64);
        if rng.below(4) > 0 {
            let session = rng.pick(&["s1", "s2", "s3", "s4", "s5"]);
            ev.session = Some(session.to_owned());
            ev.agent = match rng.below(3) {
                0 => None,
                1 => Some("a1".into()),
                _ => Some("a2".into()),
            };
            // Each subagent has one type: in s1 and s2 two subagents share it.
            ev.agent_type = match (ev.agent.as_deref(), session) {
                (None, _) => None,
                (Some("a2"), "s3" | "s4" | "s5") => Some("Explore".into()),
                _ => Some("general-purpose".into()),
            };
            if rng.below(5) == 0 {
                // Telemetry of the session: a request record or a metric point,
                // naming an agent by id, by type, as the main one, or not at all.
                ev.kind = Kind::Log;
                ev.agent = None;
                ev.agent_type = None;
                match rng.below(4) {
                    0 => {
                        ev.fields.insert("agent_id".into(), "a1".into());
                    }
                    1 => {
                        ev.fields.insert("query_source".into(), "main".into());
                    }
                    2 => {
                        ev.fields.insert("query_source".into(), "subagent".into());
                        let ty = rng.pick(&["general-purpose", "Explore"]);
                        ev.fields.insert("agent.name".into(), ty.into());
                    }
                    _ => {}
                }
                match rng.below(3) {
                    0 => {
                        ev.fields.insert("event.name".into(), API_REQUEST.into());
                        ev.fields.insert("cost_usd".into(), 0.25.into());
                        ev.fields.insert("input_tokens".into(), 10.into());
                    }
                    n => {
                        let temporality = if n == 1 { "cumulative" } else { "delta" };
                        ev.fields.insert("metric.name".into(), TOKEN_METRIC.into());
                        ev.fields
                            .insert("metric.temporality".into(), temporality.into());
                        ev.fields.insert("type".into(), "input".into());
                        ev.fields
                            .insert("metric.value".into(), (rng.below(100) as f64).into());
                    }
                }
            } else {
                let hook = rng.pick(&[
                    "PreToolUse",
                    "PostToolUse",
                    "Stop",
                    "UserPromptSubmit",
                    "PermissionRequest",
                    "SessionEnd",
                    "SubagentStop",
                    "SomethingNew",
                ]);
                ev.kind = Kind::Hook;
                ev.hook = Some(hook.to_owned());
                if hook.contains("Tool") {
                    ev.tool = Some(rng.pick(&["Bash", "Read", "Edit"]).to_owned());
                }
            }
        }
        ev
    }

    fn maintained(c: &Connection) -> crate::store::scratch::AllFigures {
        let sources = super::sources(c, 10_000)
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    s.source,
                    (
                        s.events,
                        s.errors,
                        s.first_seen.unix_ms(),
                        s.last_seen.unix_ms(),
                    ),
                )
            })
            .collect();
        let sessions = session_rows(c, 10_000)
            .unwrap()
            .into_iter()
            .map(|(id, agg)| (id, figures(&agg)))
            .collect();
        (sources, sessions)
    }

    #[test]
    fn maintained_aggregates_equal_a_count_from_scratch() {
        for seed in 1..=12u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let now = Timestamp::now().unix_ms();
            let (mut c, mut book) = db();
            let mut sent: Vec<Event> = Vec::new();
            for round in 0..30 {
                let mut batch: Vec<Event> = (0..rng.below(40) + 1)
                    .map(|_| random_event(&mut rng, now))
                    .collect();
                // Duplicates: events already stored, posted again or caught up.
                for _ in 0..rng.below(5) {
                    if !sent.is_empty() {
                        batch.push(sent[rng.below(sent.len() as u64) as usize].clone());
                    }
                }
                sent.extend(batch.iter().cloned());
                insert(&mut c, &mut book, &batch);
                match rng.below(6) {
                    0 => retain(
                        &mut c,
                        &mut book,
                        Retention {
                            max_age_ms: (rng.below(9) as i64 + 1) * DAY_MS,
                            max_bytes: u64::MAX,
                        },
                    ),
                    1 => retain(
                        &mut c,
                        &mut book,
                        Retention {
                            max_age_ms: 30 * DAY_MS,
                            max_bytes: 1,
                        },
                    ),
                    2 => book = restart(&mut c),
                    _ => {}
                }
                let want = from_scratch(&c).unwrap();
                let got = maintained(&c);
                assert_eq!(got.0, want.0, "sources, seed {seed} round {round}");
                assert_eq!(got.1, want.1, "sessions, seed {seed} round {round}");
            }
        }
    }

    #[test]
    fn every_captured_fixture_moves_the_state_machine_without_breaking_it() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/claude-code");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(dir.join("v2.1.330")).unwrap())
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert!(files.len() > 30, "fixtures of both versions are found");
        let mut book = Book::default();
        for (i, path) in files.iter().enumerate() {
            let payload: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let mut ev = Event::new("proj", Kind::Hook, "fixture");
            ev.ts = Timestamp::from_unix_ms(1_000 + i as i64);
            ev.session = Some("one".into());
            ev.hook = payload["hook_event_name"].as_str().map(str::to_owned);
            ev.agent = payload["agent_id"].as_str().map(str::to_owned);
            ev.agent_type = payload["agent_type"].as_str().map(str::to_owned);
            ev.tool = payload["tool_name"].as_str().map(str::to_owned);
            ev.payload = Some(payload);
            book.add(&ev);
        }
        let s = &book.sessions["one"];
        assert_eq!(s.events as usize, files.len());
        assert!(
            s.agents.iter().any(|a| a.agent.is_some()),
            "a subagent is seen"
        );
        // The files sort with SessionEnd before later names: the session stays ended.
        assert_eq!(s.state().0, AgentState::Ended);
    }

    fn hook_event(name: &str, agent: Option<&str>, ms: i64, extra: serde_json::Value) -> Event {
        let mut ev = Event::new("proj", Kind::Hook, name);
        ev.ts = Timestamp::from_unix_ms(ms);
        ev.session = Some("s".into());
        ev.hook = Some(name.into());
        ev.agent = agent.map(str::to_owned);
        ev.tool = extra["tool_name"].as_str().map(str::to_owned);
        let mut p = serde_json::json!({"hook_event_name": name});
        if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        ev.payload = Some(p);
        ev
    }

    #[test]
    fn each_agent_keeps_what_it_said_last() {
        use serde_json::json;
        let mut book = Book::default();
        let mut add = |ev: Event| book.add(&ev);
        add(hook_event("SessionStart", None, 1, json!({})));
        add(hook_event("SubagentStart", Some("sub"), 2, json!({})));
        add(hook_event(
            "SubagentStop",
            Some("sub"),
            3,
            json!({"last_assistant_message": "found 3 call sites\nin src/"}),
        ));
        add(hook_event(
            "Stop",
            None,
            5,
            json!({"last_assistant_message": "fixed the build"}),
        ));
        // An older Stop caught up late does not replace the newer answer, and an
        // empty one keeps what was said.
        add(hook_event(
            "Stop",
            None,
            4,
            json!({"last_assistant_message": "an older answer"}),
        ));
        add(hook_event(
            "Stop",
            None,
            6,
            json!({"last_assistant_message": "  "}),
        ));
        let summary = book.sessions["s"].summary("s", Timestamp::from_unix_ms(7), "h", i64::MAX);
        let said: Vec<_> = summary
            .agents
            .iter()
            .map(|a| (a.agent.as_deref(), a.last_message.as_deref()))
            .collect();
        assert_eq!(
            said,
            [
                (None, Some("fixed the build")),
                (Some("sub"), Some("found 3 call sites"))
            ]
        );
    }

    #[test]
    fn transcript_paths_are_kept_newest_first_and_old_rows_load_without_them() {
        use serde_json::json;
        let mut book = Book::default();
        let mut add = |ev: Event| book.add(&ev);
        add(hook_event(
            "SessionStart",
            None,
            2,
            json!({"transcript_path": "/c/p/s.jsonl"}),
        ));
        // An older event caught up late does not replace the newer path.
        add(hook_event(
            "Notification",
            None,
            1,
            json!({"transcript_path": "/c/p/old.jsonl"}),
        ));
        add(hook_event(
            "SubagentStop",
            Some("a1"),
            3,
            json!({"transcript_path": "/c/p/s.jsonl",
                   "agent_transcript_path": "/c/p/s/subagents/agent-a1.jsonl"}),
        ));
        // A worker event with a payload is not a hook's: its fields name nothing.
        let mut worker = Event::new("proj", Kind::Log, "x");
        worker.session = Some("s".into());
        worker.ts = Timestamp::from_unix_ms(4);
        worker.payload = Some(json!({"transcript_path": "/elsewhere"}));
        add(worker);
        let s = &book.sessions["s"];
        assert_eq!(s.transcript.as_deref(), Some("/c/p/s.jsonl"));
        let sub = s.agents.iter().find(|a| a.agent.as_deref() == Some("a1"));
        assert_eq!(
            sub.and_then(|a| a.transcript.as_deref()),
            Some("/c/p/s/subagents/agent-a1.jsonl")
        );
        // A row written before the paths were kept still loads.
        let mut row = serde_json::to_value(s).unwrap();
        row.as_object_mut().unwrap().remove("transcript");
        for a in row["agents"].as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("transcript");
        }
        let old: SessionAgg = serde_json::from_value(row).unwrap();
        assert_eq!(old.transcript, None);
    }

    #[test]
    fn a_session_waits_on_a_person_works_with_a_background_subagent_and_compacts() {
        use serde_json::json;
        let mut book = Book::default();
        let mut add = |ev: Event| book.add(&ev);
        add(hook_event("SessionStart", None, 1, json!({})));
        add(hook_event(
            "UserPromptSubmit",
            None,
            2,
            json!({"prompt": "fix the build\nplease"}),
        ));
        add(hook_event(
            "PreToolUse",
            None,
            3,
            json!({"tool_name": "Bash"}),
        ));
        add(hook_event(
            "PermissionRequest",
            None,
            4,
            json!({"tool_name": "Bash"}),
        ));
        let s = &book.sessions["s"];
        assert_eq!(s.state().0, AgentState::NeedsPermission);
        assert_eq!(s.state().3.as_deref(), Some("Bash"));
        assert_eq!(s.prompt.as_deref(), Some("fix the build"));
        let mut add = |ev: Event| book.add(&ev);
        add(hook_event(
            "PostToolUse",
            None,
            5,
            json!({"tool_name": "Bash"}),
        ));
        // A subagent in the background keeps the session working after the main Stop.
        add(hook_event("SubagentStart", Some("bg"), 6, json!({})));
        add(hook_event("Stop", None, 7, json!({})));
        add(hook_event(
            "PreToolUse",
            Some("bg"),
            8,
            json!({"tool_name": "Grep"}),
        ));
        assert_eq!(book.sessions["s"].state().0, AgentState::Working);
        let mut add = |ev: Event| book.add(&ev);
        add(hook_event("SubagentStop", Some("bg"), 9, json!({})));
        assert_eq!(book.sessions["s"].state().0, AgentState::Waiting);
        let mut add = |ev: Event| book.add(&ev);
        add(hook_event(
            "PreCompact",
            None,
            10,
            json!({"trigger": "auto"}),
        ));
        assert_eq!(book.sessions["s"].state().0, AgentState::Working);
        let mut add = |ev: Event| book.add(&ev);
        add(hook_event(
            "SessionEnd",
            None,
            11,
            json!({"reason": "prompt_input_exit"}),
        ));
        let (state, since, reason, _) = book.sessions["s"].state();
        assert_eq!(state, AgentState::Ended);
        assert_eq!(since, Timestamp::from_unix_ms(11));
        assert_eq!(reason.as_deref(), Some("prompt_input_exit"));
    }
    /// A telemetry event as OTLP ingest stores it (`fields` from the attributes).
    fn telemetry_event(ms: i64, fields: serde_json::Value) -> Event {
        let mut ev = Event::new("claude-code", Kind::Log, "telemetry");
        ev.ts = Timestamp::from_unix_ms(ms);
        ev.session = Some("s".into());
        if let Some(f) = fields.as_object() {
            ev.fields = f.clone();
        }
        ev
    }

    fn subagent_start(agent: &str, ty: &str, ms: i64) -> Event {
        let mut ev = hook_event("SubagentStart", Some(agent), ms, serde_json::json!({}));
        ev.agent_type = Some(ty.into());
        ev
    }

    /// Each lane's agent and telemetry.
    type Lanes = Vec<(Option<String>, Option<SessionTelemetry>)>;

    fn split(book: &Book) -> (SessionSummary, Lanes) {
        let s = book.sessions["s"].summary("s", Timestamp::from_unix_ms(99), "h", i64::MAX);
        let lanes = s
            .agents
            .iter()
            .map(|a| (a.agent.clone(), a.telemetry))
            .collect();
        (s, lanes)
    }

    #[test]
    fn request_records_are_summed_per_agent_by_id_and_the_rest_is_unattributed() {
        use serde_json::json;
        let mut book = Book::default();
        book.add(&hook_event("SessionStart", None, 1, json!({})));
        book.add(&subagent_start("a1", "general-purpose", 2));
        book.add(&subagent_start("a2", "general-purpose", 3));
        let call = |ms, cost: f64, input: u64, extra: serde_json::Value| {
            let mut f = json!({"event.name": API_REQUEST, "cost_usd": cost,
                               "input_tokens": input, "output_tokens": 1, "duration_ms": 10});
            if let (Some(f), Some(e)) = (f.as_object_mut(), extra.as_object()) {
                f.extend(e.clone());
            }
            telemetry_event(ms, f)
        };
        // As Claude Code 2.1.337 sends them: the main loop's calls name no agent
        // but a query source; a subagent's carry its id and type.
        book.add(&call(4, 0.5, 100, json!({"query_source": "sdk"})));
        book.add(&call(
            5,
            0.25,
            10,
            json!({"query_source": "repl_main_thread"}),
        ));
        book.add(&call(
            6,
            0.125,
            20,
            json!({"agent_id": "a1", "agent.name": "general-purpose",
            "query_source": "agent:builtin:general-purpose"}),
        ));
        book.add(&call(
            7,
            0.0625,
            30,
            json!({"agent_id": "a2", "agent.name": "general-purpose",
            "query_source": "agent:builtin:general-purpose"}),
        ));
        // Never given to a lane: an id no hook reported, a type two subagents
        // share (with no id), a call that names no agent at all.
        book.add(&call(8, 1.0, 1, json!({"agent_id": "ghost"})));
        book.add(&call(
            9,
            2.0,
            2,
            json!({"query_source": "agent:builtin:general-purpose",
            "agent.name": "general-purpose"}),
        ));
        book.add(&call(10, 4.0, 4, json!({})));
        let (s, lanes) = split(&book);
        let t = s.telemetry.expect("session telemetry");
        assert_eq!(
            (t.cost_usd, t.input_tokens, t.api_requests),
            (7.9375, 167, 7)
        );
        let got: Vec<_> = lanes
            .iter()
            .map(|(a, t)| {
                (
                    a.as_deref(),
                    t.map(|t| (t.cost_usd, t.input_tokens, t.api_requests)),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (None, Some((0.75, 110, 2))),
                (Some("a1"), Some((0.125, 20, 1))),
                (Some("a2"), Some((0.0625, 30, 1))),
            ]
        );
        let u = s.unattributed.expect("unattributed");
        assert_eq!((u.cost_usd, u.input_tokens, u.api_requests), (7.0, 7, 3));
        assert_eq!(u.api_duration_ms, 30);
        // The lanes and the unattributed part add up to the session.
        let mut sum = u;
        for (_, t) in &lanes {
            sum.add(&t.unwrap_or_default());
        }
        assert_eq!(sum, t);
        // A row written before sums were kept by agent loads; its calls are
        // the session's, no lane's.
        let mut row = serde_json::to_value(&book.sessions["s"]).unwrap();
        row["telemetry"].as_object_mut().unwrap().remove("by_agent");
        let old: SessionAgg = serde_json::from_value(row).unwrap();
        let s = old.summary("s", Timestamp::from_unix_ms(99), "h", i64::MAX);
        assert_eq!(s.telemetry, Some(t));
        assert_eq!(s.unattributed, Some(t));
        assert!(s.agents.iter().all(|a| a.telemetry.is_none()));
    }

    #[test]
    fn metrics_name_a_subagent_by_its_type_while_it_is_the_only_one_of_it() {
        use serde_json::json;
        let mut book = Book::default();
        book.add(&hook_event("SessionStart", None, 1, json!({})));
        book.add(&subagent_start("a1", "general-purpose", 2));
        book.add(&subagent_start("e1", "Explore", 3));
        let point = |ms, name: &str, temporality: &str, value: f64, extra: serde_json::Value| {
            let mut f = json!({"metric.name": name, "metric.temporality": temporality,
                               "metric.value": value, "model": "m"});
            if let (Some(f), Some(e)) = (f.as_object_mut(), extra.as_object()) {
                f.extend(e.clone());
            }
            telemetry_event(ms, f)
        };
        let sub = json!({"query_source": "subagent", "agent.name": "general-purpose"});
        book.add(&point(
            4,
            COST_METRIC,
            "delta",
            0.5,
            json!({"query_source": "main"}),
        ));
        book.add(&point(5, COST_METRIC, "delta", 0.25, sub.clone()));
        book.add(&point(6, COST_METRIC, "delta", 0.25, sub.clone()));
        book.add(&point(
            7,
            TOKEN_METRIC,
            "delta",
            40.0,
            json!({"query_source": "subagent", "agent.name": "general-purpose", "type": "input"}),
        ));
        // Cumulative series of the main agent and a subagent are two series.
        let cum = |ms, v, q: serde_json::Value| {
            let mut q = q;
            q["type"] = "output".into();
            point(ms, TOKEN_METRIC, "cumulative", v, q)
        };
        book.add(&cum(8, 7.0, json!({"query_source": "main"})));
        book.add(&cum(9, 9.0, json!({"query_source": "main"})));
        book.add(&cum(
            10,
            3.0,
            json!({"query_source": "subagent", "agent.name": "Explore"}),
        ));
        // A point without a query source names no agent.
        book.add(&point(11, COST_METRIC, "delta", 2.0, json!({})));
        let (s, lanes) = split(&book);
        let t = s.telemetry.expect("session telemetry");
        assert_eq!((t.cost_usd, t.input_tokens, t.output_tokens), (3.0, 40, 12));
        let got: Vec<_> = lanes
            .iter()
            .map(|(a, t)| {
                (
                    a.as_deref(),
                    t.map(|t| (t.cost_usd, t.input_tokens, t.output_tokens)),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (None, Some((0.5, 0, 9))),
                (Some("a1"), Some((0.5, 40, 0))),
                (Some("e1"), Some((0.0, 0, 3))),
            ]
        );
        assert_eq!(s.unattributed.map(|u| u.cost_usd), Some(2.0));
        // A second general-purpose subagent: its type no longer tells which.
        book.add(&subagent_start("a2", "general-purpose", 12));
        let (s, lanes) = split(&book);
        assert!(
            lanes
                .iter()
                .all(|(a, t)| a.as_deref() != Some("a1") || t.is_none()),
            "{lanes:?}"
        );
        let u = s.unattributed.expect("unattributed");
        assert_eq!((u.cost_usd, u.input_tokens), (2.5, 40));
        // Telemetry with no hooks at all: the main agent's calls are still its own.
        let mut book = Book::default();
        book.add(&point(
            1,
            COST_METRIC,
            "delta",
            0.5,
            json!({"query_source": "main"}),
        ));
        book.add(&point(2, COST_METRIC, "delta", 0.25, sub));
        let (s, lanes) = split(&book);
        assert_eq!(
            lanes,
            [(
                None,
                Some(SessionTelemetry {
                    cost_usd: 0.5,
                    ..Default::default()
                })
            )]
        );
        assert_eq!(s.unattributed.map(|u| u.cost_usd), Some(0.25));
    }
}
