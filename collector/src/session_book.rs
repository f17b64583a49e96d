//! Sessions counted from events as a reader goes, by the collector's own rules:
//! the same counts and live states `GET /v1/sessions` reports, for viewers that
//! read the event files when no collector runs.

use swarm_obs::{Event, Timestamp};

use crate::api::SessionSummary;
use crate::store::book::Book;

/// Sessions most recently active are kept; older ones are dropped as it grows.
const MAX_SESSIONS: usize = 200;

/// Claude Code sessions built from events, in memory.
///
/// ```
/// use swarm_obs::{Event, Kind, Timestamp};
/// use swarm_obs_collector::SessionBook;
///
/// let mut book = SessionBook::default();
/// let mut ev = Event::new("proj", Kind::Hook, "PreToolUse Bash");
/// ev.session = Some("s1".into());
/// ev.hook = Some("PreToolUse".into());
/// ev.tool = Some("Bash".into());
/// book.add(&ev);
/// let sessions = book.list(Timestamp::now(), 10);
/// assert_eq!(sessions[0].state.as_str(), "working");
/// assert_eq!(sessions[0].tool.as_deref(), Some("Bash"));
/// ```
#[derive(Debug, Default)]
pub struct SessionBook {
    book: Book,
    stale_after_ms: Option<i64>,
}

impl SessionBook {
    /// Counts one event; events without a session only count for their source.
    pub fn add(&mut self, ev: &Event) {
        self.book.add(ev);
        self.book.forget_news();
        if self.book.sessions.len() > MAX_SESSIONS * 2 {
            let mut by_age: Vec<(i64, String)> = self
                .book
                .sessions
                .iter()
                .map(|(id, s)| (s.last_ts, id.clone()))
                .collect();
            by_age.sort_by(|a, b| b.cmp(a));
            for (_, id) in by_age.into_iter().skip(MAX_SESSIONS) {
                self.book.sessions.remove(&id);
            }
        }
    }

    /// Sets the quiet time after which a session that cannot be checked is stale
    /// (default: 30 minutes, as the collector's).
    pub fn stale_after(&mut self, ms: i64) {
        self.stale_after_ms = Some(ms);
    }

    /// Up to `limit` sessions as `/v1/sessions` shows them, most recently active first.
    pub fn list(&self, now: Timestamp, limit: usize) -> Vec<SessionSummary> {
        let stale = self.stale_after_ms.unwrap_or(30 * 60 * 1000);
        let mut list: Vec<SessionSummary> = self
            .book
            .sessions
            .iter()
            .map(|(id, s)| s.summary(id, now, swarm_obs::hostname(), stale))
            .collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
        list.truncate(limit);
        list
    }
}
