//! Watching live Claude Code sessions: a session whose `claude` process on this host
//! is gone without `SessionEnd` turns `dead` (an error alert), and one that waits on
//! a permission prompt too long gets one reminder.
//!
//! Both are recorded as events, so the state they cause is kept by the store's
//! aggregates like any other and survives restarts; the store only hands back the
//! sessions that are still live, so each check costs O(live sessions).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use swarm_obs::{Event, Kind, Level, LocalProcesses, ProcessTable, Timestamp};

use crate::Alerts;
use crate::api::AgentState;
use crate::store::{ALERT_STATE_FIELD, SessionAgg, Store, watched_sessions};

/// How often and how patiently sessions are checked.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Between two checks.
    pub interval: Duration,
    /// Waiting on a permission prompt this long earns one reminder.
    pub reminder: Duration,
}

/// Starts the watching thread; it ends when `stop` is set or the store closes.
pub(crate) fn spawn(
    store: Store,
    alerts: Arc<Alerts>,
    timing: Timing,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match store.read(watched_sessions) {
                Ok(sessions) => {
                    let found = check(&sessions, Timestamp::now(), &LocalProcesses, timing);
                    if !alerts.emit(found) {
                        return;
                    }
                }
                Err(e) => eprintln!("swarm-obs serve: reading live sessions failed: {e}"),
            }
            crate::catchup::sleep_unless_stopped(timing.interval, &stop);
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

/// The first 8 characters of a session id, as people read them.
fn short_id(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(i, _)| &id[..i])
}
