//! The Claude Code sessions view: each session with its main agent and subagents,
//! in the shape of the collector's `GET /v1/sessions`, or built from events read
//! from the files when no collector runs.

use std::collections::HashMap;

use serde::Deserialize;
use swarm_obs::{Event, Kind, Level, Timestamp};

/// Sessions kept when built from files: the most recently active.
const MAX_SESSIONS: usize = 100;

/// One session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Session {
    /// The session id.
    pub session: String,
    /// Sources that reported for it (the project, for hooks).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Events.
    #[serde(default)]
    pub events: i64,
    /// Errors.
    #[serde(default)]
    pub errors: i64,
    /// The main agent and every subagent, in order of first appearance.
    #[serde(default)]
    pub agents: Vec<Agent>,
    /// First event time.
    pub first_seen: Timestamp,
    /// Last event time.
    pub last_seen: Timestamp,
    /// Cost and tokens from Claude Code's own telemetry, when the collector has it.
    #[serde(default)]
    pub telemetry: Option<Telemetry>,
}

/// The main agent (no `agent`) or one subagent of a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Agent {
    /// Subagent id; absent for the main agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Subagent type.
    #[serde(default)]
    pub agent_type: Option<String>,
    /// Events.
    #[serde(default)]
    pub events: i64,
    /// Tool calls.
    #[serde(default)]
    pub tool_calls: i64,
    /// Errors.
    #[serde(default)]
    pub errors: i64,
    /// Last event time.
    pub last_seen: Timestamp,
}

/// Claude Code's own usage figures for a session, as the collector reports them.
pub use swarm_obs_collector::store::SessionTelemetry as Telemetry;

/// The collector's answer to `GET /v1/sessions`.
#[derive(Debug, Deserialize)]
pub struct SessionsAnswer {
    /// Most recently active first.
    pub sessions: Vec<Session>,
}

/// Sessions built from events as they are read, with the collector's counting
/// rules: tool calls are `PreToolUse` hooks, errors are `error` events or level.
#[derive(Debug, Default)]
pub struct SessionBook {
    sessions: HashMap<String, Session>,
}

impl SessionBook {
    /// Counts one event; events without a session are ignored.
    pub fn add(&mut self, ev: &Event) {
        let Some(id) = &ev.session else { return };
        let error = i64::from(ev.kind == Kind::Error || ev.level >= Level::Error);
        let s = self.sessions.entry(id.clone()).or_insert_with(|| Session {
            session: id.clone(),
            sources: Vec::new(),
            events: 0,
            errors: 0,
            agents: Vec::new(),
            first_seen: ev.ts,
            last_seen: ev.ts,
            telemetry: None,
        });
        if !s.sources.contains(&ev.source) {
            s.sources.push(ev.source.clone());
        }
        s.events += 1;
        s.errors += error;
        s.first_seen = s.first_seen.min(ev.ts);
        s.last_seen = s.last_seen.max(ev.ts);
        let agent = match s.agents.iter_mut().position(|a| a.agent == ev.agent) {
            Some(i) => &mut s.agents[i],
            None => {
                s.agents.push(Agent {
                    agent: ev.agent.clone(),
                    agent_type: None,
                    events: 0,
                    tool_calls: 0,
                    errors: 0,
                    last_seen: ev.ts,
                });
                s.agents.last_mut().expect("just pushed")
            }
        };
        if agent.agent_type.is_none() {
            agent.agent_type = ev.agent_type.clone();
        }
        agent.events += 1;
        agent.errors += error;
        agent.tool_calls += i64::from(ev.hook.as_deref() == Some("PreToolUse"));
        agent.last_seen = agent.last_seen.max(ev.ts);
        if self.sessions.len() > MAX_SESSIONS * 2 {
            self.prune();
        }
    }

    fn prune(&mut self) {
        let mut by_age: Vec<(Timestamp, String)> = self
            .sessions
            .values()
            .map(|s| (s.last_seen, s.session.clone()))
            .collect();
        by_age.sort_by(|a, b| b.cmp(a));
        for (_, id) in by_age.into_iter().skip(MAX_SESSIONS) {
            self.sessions.remove(&id);
        }
    }

    /// The sessions, most recently active first.
    pub fn list(&self) -> Vec<Session> {
        let mut list: Vec<Session> = self.sessions.values().cloned().collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        list.truncate(MAX_SESSIONS);
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_shape_parses_with_and_without_telemetry() {
        let json = r#"{"sessions":[{"session":"s1","sources":["proj"],"events":3,"errors":1,
            "tools":{"Bash":1},"agents":[{"events":2,"tool_calls":1,"errors":0,
            "first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:16.000Z"},
            {"agent":"a1","agent_type":"Explore","events":1,"tool_calls":0,"errors":1,
            "first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:15.500Z"}],
            "first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:16.000Z",
            "duration_ms":1000,
            "telemetry":{"cost_usd":0.25,"input_tokens":1000,"output_tokens":200,
            "cache_read_tokens":30,"cache_creation_tokens":4,"api_requests":2,"api_duration_ms":900}},
            {"session":"s2","first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:15.000Z"}]}"#;
        let a: SessionsAnswer = serde_json::from_str(json).unwrap();
        let t = a.sessions[0].telemetry.expect("telemetry");
        assert_eq!(t.tokens(), 1234);
        assert_eq!(
            a.sessions[0].agents[1].agent_type.as_deref(),
            Some("Explore")
        );
        assert!(a.sessions[1].telemetry.is_none());
    }

    #[test]
    fn book_counts_like_the_collector() {
        let mut book = SessionBook::default();
        let ev = |agent: Option<&str>, hook: &str, kind| {
            let mut e = Event::new("proj", kind, "x");
            e.session = Some("s1".into());
            e.agent = agent.map(str::to_owned);
            e.agent_type = agent.map(|_| "Explore".to_owned());
            e.hook = Some(hook.into());
            e
        };
        book.add(&ev(None, "SessionStart", Kind::Start));
        book.add(&ev(None, "PreToolUse", Kind::Hook));
        book.add(&ev(Some("a1"), "PreToolUse", Kind::Hook));
        book.add(&ev(Some("a1"), "PostToolUseFailure", Kind::Error));
        book.add(&Event::new("worker", Kind::Log, "no session"));
        let list = book.list();
        assert_eq!(list.len(), 1);
        let s = &list[0];
        assert_eq!((s.events, s.errors), (4, 1));
        assert_eq!(s.agents.len(), 2);
        assert_eq!(s.agents[0].agent, None);
        assert_eq!(s.agents[0].tool_calls, 1);
        assert_eq!(s.agents[1].agent.as_deref(), Some("a1"));
        assert_eq!((s.agents[1].tool_calls, s.agents[1].errors), (1, 1));
    }
}
