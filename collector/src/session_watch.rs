//! Watching live Claude Code sessions: a session whose `claude` process on this host
//! is gone without `SessionEnd` turns `dead` (an error alert), and one that waits on
//! a permission prompt too long gets one reminder.
//!
//! Both are recorded as events, so the state they cause is kept by the store's
//! aggregates like any other and survives restarts; the store only hands back the
//! sessions that are still live, so each check costs O(live sessions).
//!
//! A session that cannot be checked (another host, no pid) turns `stale` by
//! silence alone, with no event to carry the news; the watch pushes that state
//! to live viewers itself, once per quiet spell.

use crate::Stop;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use swarm_obs::{Event, Kind, Level, LocalProcesses, ProcessTable, Timestamp};

use crate::Alerts;
use crate::api::AgentState;
use crate::hub::{Hub, Live, SessionNews};
use crate::store::{ALERT_STATE_FIELD, SessionAgg, Store, watched_sessions};

/// How often and how patiently sessions are checked.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Between two checks.
    pub interval: Duration,
    /// Waiting on a permission prompt this long earns one reminder.
    pub reminder: Duration,
    /// A session that cannot be checked and is quiet this long is `stale`.
    pub stale_after: Duration,
}

/// Starts the watching thread; it ends when `stop` is set or the store closes.
pub(crate) fn spawn(
    store: Store,
    alerts: Arc<Alerts>,
    hub: Hub,
    timing: Timing,
    stop: Stop,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut stale = HashSet::new();
        while !stop.is_set() {
            match store.read(watched_sessions) {
                Ok(sessions) => {
                    store.push_sessions();
                    let now = Timestamp::now();
                    for summary in newly_stale(&sessions, now, timing, &mut stale) {
                        hub.publish(Live::Session(Arc::new(SessionNews::new(summary))));
                    }
                    let found = check(&sessions, now, &LocalProcesses, timing);
                    if !alerts.emit(found) {
                        return;
                    }
                }
                Err(e) => eprintln!("swarm-obs serve: reading live sessions failed: {e}"),
            }
            stop.sleep(timing.interval);
        }
    })
}

/// The alerts live sessions call for at `now`.
pub(crate) fn check(
    sessions: &[(String, SessionAgg)],
    now: Timestamp,
    processes: &dyn ProcessTable,
    timing: Timing,
) -> Vec<Event> {
    let mut out = Vec::new();
    for (id, s) in sessions {
        if s.closed.is_some() {
            continue;
        }
        let source = s
            .sources
            .iter()
            .next()
            .map_or("claude-code", |s| s.as_str());
        if let (Some(pid), Some(host)) = (s.claude_pid, s.host.as_deref())
            && host == swarm_obs::hostname()
        {
            let status = processes.status(pid);
            let ended = match s.claude_started_at {
                Some(t) => status.ended_since(t),
                None => status == swarm_obs::ProcessStatus::Gone,
            };
            if ended {
                let mut ev = Event::new(
                    source,
                    Kind::Alert,
                    format!(
                        "session {} dead: its claude process {pid} ended without SessionEnd",
                        short_id(id)
                    ),
                )
                .with_level(Level::Error);
                ev.session = Some(id.clone());
                ev.fields.insert(ALERT_STATE_FIELD.into(), "dead".into());
                ev.fields.insert("claude_pid".into(), pid.into());
                out.push(ev);
                continue;
            }
        }
        let (state, since, _, tool) = s.state();
        if state == AgentState::NeedsPermission
            && !s.reminded
            && since.until(now) >= timing.reminder
        {
            let waited = since.until(now).as_secs() / 60;
            let what = tool.map_or_else(String::new, |t| format!(" for {t}"));
            let mut ev = Event::new(
                source,
                Kind::Attention,
                format!(
                    "session {} still waits for permission{what} ({waited} min)",
                    short_id(id)
                ),
            );
            ev.session = Some(id.clone());
            ev.fields
                .insert(ALERT_STATE_FIELD.into(), "needs_permission".into());
            out.push(ev);
        }
    }
    out
}

/// The sessions that turned `stale` since the last check, as viewers are sent
/// them; `announced` holds those already sent and forgets the ones that spoke again.
pub(crate) fn newly_stale(
    sessions: &[(String, SessionAgg)],
    now: Timestamp,
    timing: Timing,
    announced: &mut HashSet<String>,
) -> Vec<crate::api::SessionSummary> {
    let stale_ms = i64::try_from(timing.stale_after.as_millis()).unwrap_or(i64::MAX);
    let mut now_stale = HashSet::new();
    let mut out = Vec::new();
    for (id, s) in sessions {
        let summary = s.summary(id, now, swarm_obs::hostname(), stale_ms);
        if summary.state != AgentState::Stale {
            continue;
        }
        now_stale.insert(id.clone());
        if !announced.contains(id) {
            out.push(summary);
        }
    }
    *announced = now_stale;
    out
}

/// The first 8 characters of a session id, as people read them.
fn short_id(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(i, _)| &id[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::book::Book;

    fn book_with(session: &str, at: Timestamp) -> Vec<(String, SessionAgg)> {
        let mut book = Book::default();
        let mut ev = Event::new("proj", Kind::Hook, "PreToolUse Bash");
        ev.ts = at;
        ev.session = Some(session.into());
        ev.hook = Some("PreToolUse".into());
        ev.tool = Some("Bash".into());
        // No claude pid: a session nobody on this host can check.
        book.add(&ev);
        book.sessions.into_iter().collect()
    }

    #[test]
    fn a_quiet_session_is_announced_stale_once_and_again_after_it_spoke() {
        let timing = Timing {
            interval: Duration::from_secs(1),
            reminder: Duration::from_secs(120),
            stale_after: Duration::from_secs(60),
        };
        let start = Timestamp::from_unix_ms(1_700_000_000_000);
        let sessions = book_with("s1", start);
        let mut announced = HashSet::new();
        let at = |s: i64| Timestamp::from_unix_ms(start.unix_ms() + s * 1000);

        assert!(newly_stale(&sessions, at(30), timing, &mut announced).is_empty());
        let first = newly_stale(&sessions, at(61), timing, &mut announced);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].state, AgentState::Stale);
        assert_eq!(first[0].session, "s1");
        assert!(newly_stale(&sessions, at(62), timing, &mut announced).is_empty());

        // It spoke again (working, not quiet), then fell silent once more.
        let later = book_with("s1", at(100));
        assert!(newly_stale(&later, at(101), timing, &mut announced).is_empty());
        assert_eq!(
            newly_stale(&later, at(161), timing, &mut announced).len(),
            1
        );
    }
}
