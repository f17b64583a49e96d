//! The Claude Code sessions view: each session with its main agent and subagents,
//! in the shape of the collector's `GET /v1/sessions`, or built from events read
//! from the files when no collector runs.

use swarm_obs::Event;

use swarm_obs_collector::SessionBook as Book;
#[cfg(test)]
pub use swarm_obs_collector::api::{AgentSummary as Agent, SessionTelemetry as Telemetry};
/// One session and the collector's answer: the collector's own `/v1/*` types.
pub use swarm_obs_collector::api::{SessionSummary as Session, SessionsAnswer};

/// Sessions kept when built from files: the most recently active.
const MAX_SESSIONS: usize = 100;

/// Sessions built from events as they are read, by the collector's own rules.
#[derive(Debug, Default)]
pub struct SessionBook {
    book: Book,
}

impl SessionBook {
    /// Counts one event; events without a session are ignored.
    pub fn add(&mut self, ev: &Event) {
        if ev.session.is_some() {
            self.book.add(ev);
        }
    }

    /// The sessions, most recently active first.
    pub fn list(&self) -> Vec<Session> {
        self.book.list(swarm_obs::Timestamp::now(), MAX_SESSIONS)
    }
}

/// Days of event files read for sessions when no collector runs: today and
/// yesterday, so the cost does not grow with the history kept on disk.
const FILE_DAYS: usize = 2;

/// The sessions now: the collector's `/v1/sessions`, or counted from the last
/// days' event files.
pub fn load(source: &crate::source::Source) -> anyhow::Result<Vec<Session>> {
    use anyhow::Context as _;
    match source {
        crate::source::Source::Collector(http) => Ok(http
            .get_json::<SessionsAnswer>("/v1/sessions?limit=50")?
            .sessions),
        crate::source::Source::Files(root) => {
            let mut files = swarm_obs::EventLog::files(root).with_context(|| {
                format!("cannot list the event files of {}", root.dir().display())
            })?;
            files.sort();
            let mut book = SessionBook::default();
            for path in files.iter().rev().take(FILE_DAYS).rev() {
                let reader = swarm_obs::EventReader::open(path, 0)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                for ev in reader {
                    book.add(&ev);
                }
            }
            Ok(book.list())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_shape_parses_with_and_without_telemetry() {
        use swarm_obs::Kind;
        let json = r#"{"sessions":[{"session":"s1","sources":["proj"],"events":3,"errors":1,
            "tools":{"Bash":1},"agents":[{"events":2,"tool_calls":1,"errors":0,
            "first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:16.000Z",
            "state":"working","since":"2026-01-05T14:32:15.000Z"},
            {"agent":"a1","agent_type":"Explore","events":1,"tool_calls":0,"errors":1,
            "first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:15.500Z",
            "state":"ended","since":"2026-01-05T14:32:15.000Z"}],
            "first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:16.000Z",
            "duration_ms":1000,"state":"waiting","since":"2026-01-05T14:32:16.000Z",
            "telemetry":{"cost_usd":0.25,"input_tokens":1000,"output_tokens":200,
            "cache_read_tokens":30,"cache_creation_tokens":4,"api_requests":2,"api_duration_ms":900}},
            {"session":"s2","first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:15.000Z",
            "state":"dead","since":"2026-01-05T14:32:15.000Z"}]}"#;
        let a: SessionsAnswer = serde_json::from_str(json).unwrap();
        let t = a.sessions[0].telemetry.expect("telemetry");
        assert_eq!(t.tokens(), 1234);
        assert_eq!(
            a.sessions[0].agents[1].agent_type.as_deref(),
            Some("Explore")
        );
        assert!(a.sessions[1].telemetry.is_none());
        assert!(a.sessions[1].state.is_bad());
        let _ = Kind::Log;
    }

    #[test]
    fn book_counts_like_the_collector() {
        use swarm_obs::Kind;
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
