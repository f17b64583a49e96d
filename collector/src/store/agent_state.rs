//! The live state of a Claude Code agent, moved by each hook event as it is stored.
//!
//! A pure function of (current state, event): [`apply`] is what the writer runs per
//! event, and what the tests drive over every captured fixture.

use serde::{Deserialize, Serialize};
use swarm_obs::{Event, Kind, Timestamp};

use crate::api::AgentState;

/// Longest prompt or reason kept with a state, in characters.
const MAX_TEXT: usize = 200;

/// One agent's state and when it began; the tool it runs or asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Live {
    pub state: AgentState,
    pub since: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time of the newest event that moved the state: older events (caught up from
    /// the event log after newer ones were posted) do not move it back.
    pub moved_at: Timestamp,
}

impl Live {
    /// A new agent first seen at `ts`: working (a subagent) or waiting (a session
    /// that has only started).
    pub fn new(state: AgentState, ts: Timestamp) -> Self {
        Self {
            state,
            since: ts,
            tool: None,
            tool_since: None,
            reason: None,
            moved_at: ts,
        }
    }

    fn set(&mut self, state: AgentState, ts: Timestamp) {
        if self.state != state {
            self.state = state;
            self.since = ts;
        }
        if state != AgentState::Ended && state != AgentState::Failed {
            self.reason = None;
        }
    }
}

/// Cuts text to one short line for a state's prompt or reason.
pub(crate) fn short(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out: String = line.trim().chars().take(MAX_TEXT).collect();
    if line.trim().chars().count() > MAX_TEXT {
        out.push('…');
    }
    out
}

fn payload_str<'a>(ev: &'a Event, key: &str) -> Option<&'a str> {
    ev.payload.as_ref()?.get(key)?.as_str()
}

/// What an event does to its session as a whole.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SessionMove {
    /// Nothing beyond the agent's own state.
    None,
    /// The session ended (SessionEnd) or failed (StopFailure), with a reason.
    Close(AgentState, Option<String>),
    /// The collector found the session's `claude` process gone.
    Dead(String),
    /// The permission reminder for the current prompt was sent.
    Reminded,
}

/// Field of a collector alert naming the session state it records.
pub(crate) const ALERT_STATE_FIELD: &str = "session_state";

/// Moves `live` (the state of the agent the event belongs to) by one event, and
/// says what it does to the session. Unknown hooks and non-hook events only keep
/// the agent's last-seen time (done by the caller).
pub(crate) fn apply(live: &mut Live, ev: &Event, subagent: bool) -> SessionMove {
    if ev.hook.is_none() && matches!(ev.kind, Kind::Alert | Kind::Attention) {
        return match ev.fields.get(ALERT_STATE_FIELD).and_then(|v| v.as_str()) {
            Some("dead") => SessionMove::Dead(short(&ev.msg)),
            Some("needs_permission") => SessionMove::Reminded,
            _ => SessionMove::None,
        };
    }
    let Some(hook) = ev.hook.as_deref() else {
        return SessionMove::None;
    };
    if ev.ts < live.moved_at {
        // An older event caught up late: it counts, but it does not move the state.
        return match hook {
            "SessionEnd" => {
                SessionMove::Close(AgentState::Ended, payload_str(ev, "reason").map(short))
            }
            _ => SessionMove::None,
        };
    }
    let ts = ev.ts;
    let mut known = true;
    let session = match hook {
        "UserPromptSubmit" | "SubagentStart" | "PreCompact" | "PostCompact" => {
            live.set(AgentState::Working, ts);
            live.tool = None;
            live.tool_since = None;
            SessionMove::None
        }
        "PreToolUse" => {
            live.set(AgentState::Working, ts);
            live.tool = ev.tool.clone();
            live.tool_since = Some(ts);
            SessionMove::None
        }
        "PostToolUse" | "PostToolUseFailure" | "PostToolBatch" => {
            live.set(AgentState::Working, ts);
            live.tool = None;
            live.tool_since = None;
            SessionMove::None
        }
        "PermissionRequest" => {
            live.set(AgentState::NeedsPermission, ts);
            if ev.tool.is_some() {
                live.tool = ev.tool.clone();
            }
            SessionMove::None
        }
        "Notification" => {
            match payload_str(ev, "notification_type") {
                Some("permission_prompt") => live.set(AgentState::NeedsPermission, ts),
                Some("idle_prompt") => {
                    live.set(AgentState::Waiting, ts);
                    live.tool = None;
                    live.tool_since = None;
                }
                _ => {}
            }
            SessionMove::None
        }
        "Stop" if !subagent => {
            live.set(AgentState::Waiting, ts);
            live.tool = None;
            live.tool_since = None;
            SessionMove::None
        }
        "SubagentStop" => {
            live.set(AgentState::Ended, ts);
            live.tool = None;
            live.tool_since = None;
            SessionMove::None
        }
        "SessionStart" => {
            if !live.state.is_live() {
                live.set(AgentState::Waiting, ts);
            }
            SessionMove::None
        }
        "SessionEnd" => {
            let reason = payload_str(ev, "reason").map(short);
            live.set(AgentState::Ended, ts);
            live.reason = reason.clone();
            live.tool = None;
            live.tool_since = None;
            SessionMove::Close(AgentState::Ended, reason)
        }
        "StopFailure" => {
            let reason = payload_str(ev, "error")
                .map(short)
                .or_else(|| Some(short(&ev.msg)));
            live.set(AgentState::Failed, ts);
            live.reason = reason.clone();
            live.tool = None;
            live.tool_since = None;
            SessionMove::Close(AgentState::Failed, reason)
        }
        _ => {
            known = false;
            SessionMove::None
        }
    };
    // Every hook this machine knows is a point in the agent's story: an older one
    // arriving later must not rewrite what came after it.
    if known {
        live.moved_at = ts;
    }
    session
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(name: &str, extra: serde_json::Value, ms: i64) -> Event {
        let mut ev = Event::new("proj", Kind::Hook, name);
        ev.hook = Some(name.to_owned());
        ev.ts = Timestamp::from_unix_ms(ms);
        ev.tool = extra
            .get("tool_name")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let mut payload = json!({"hook_event_name": name});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        ev.payload = Some(payload);
        ev
    }

    fn run(events: &[Event]) -> (Live, Vec<SessionMove>) {
        let mut live = Live::new(AgentState::Waiting, Timestamp::from_unix_ms(0));
        let moves = events.iter().map(|e| apply(&mut live, e, false)).collect();
        (live, moves)
    }

    #[test]
    fn a_turn_works_through_tools_then_waits() {
        let (live, _) = run(&[
            hook("UserPromptSubmit", json!({"prompt": "hi"}), 1),
            hook("PreToolUse", json!({"tool_name": "Bash"}), 2),
        ]);
        assert_eq!(live.state, AgentState::Working);
        assert_eq!(live.tool.as_deref(), Some("Bash"));
        assert_eq!(live.tool_since, Some(Timestamp::from_unix_ms(2)));
        assert_eq!(live.since, Timestamp::from_unix_ms(1));
        let (live, _) = run(&[
            hook("UserPromptSubmit", json!({}), 1),
            hook("PreToolUse", json!({"tool_name": "Bash"}), 2),
            hook("PostToolUse", json!({"tool_name": "Bash"}), 3),
            hook("Stop", json!({}), 4),
        ]);
        assert_eq!(live.state, AgentState::Waiting);
        assert_eq!(live.since, Timestamp::from_unix_ms(4));
        assert_eq!(live.tool, None);
    }

    #[test]
    fn a_permission_prompt_needs_a_person_until_the_tool_runs() {
        let asked = [
            hook("PreToolUse", json!({"tool_name": "Bash"}), 1),
            hook("PermissionRequest", json!({"tool_name": "Bash"}), 2),
            hook(
                "Notification",
                json!({"notification_type": "permission_prompt"}),
                3,
            ),
        ];
        let (live, _) = run(&asked);
        assert_eq!(live.state, AgentState::NeedsPermission);
        assert_eq!(
            live.since,
            Timestamp::from_unix_ms(2),
            "since the first ask"
        );
        assert_eq!(live.tool.as_deref(), Some("Bash"));
        let mut answered = asked.to_vec();
        answered.push(hook("PostToolUse", json!({"tool_name": "Bash"}), 4));
        assert_eq!(run(&answered).0.state, AgentState::Working);
        let mut refused = asked.to_vec();
        refused.push(hook("UserPromptSubmit", json!({}), 5));
        assert_eq!(run(&refused).0.state, AgentState::Working);
        let mut idle = asked.to_vec();
        idle.push(hook(
            "Notification",
            json!({"notification_type": "idle_prompt"}),
            6,
        ));
        assert_eq!(run(&idle).0.state, AgentState::Waiting);
    }

    #[test]
    fn session_end_and_stop_failure_close_the_session_with_a_reason() {
        let (live, moves) = run(&[hook("SessionEnd", json!({"reason": "logout"}), 1)]);
        assert_eq!(live.state, AgentState::Ended);
        assert_eq!(
            moves[0],
            SessionMove::Close(AgentState::Ended, Some("logout".into()))
        );
        let (live, moves) = run(&[hook(
            "StopFailure",
            json!({"error": "rate limited\nmore"}),
            1,
        )]);
        assert_eq!(live.state, AgentState::Failed);
        assert_eq!(live.reason.as_deref(), Some("rate limited"));
        assert!(matches!(
            moves[0],
            SessionMove::Close(AgentState::Failed, _)
        ));
    }

    #[test]
    fn a_late_older_event_does_not_move_the_state_back() {
        let (live, _) = run(&[
            hook("Stop", json!({}), 10),
            hook("PreToolUse", json!({"tool_name": "Read"}), 5),
        ]);
        assert_eq!(live.state, AgentState::Waiting);
    }

    #[test]
    fn unknown_hooks_and_garbage_payloads_change_nothing() {
        let mut odd = hook("BrandNewEvent", json!({"reason": 7}), 2);
        odd.payload = Some(json!("not an object"));
        let mut bare = hook("Notification", json!({}), 3);
        bare.payload = None;
        let (live, moves) = run(&[odd, bare]);
        assert_eq!(live.state, AgentState::Waiting);
        assert!(moves.iter().all(|m| *m == SessionMove::None));
    }

    #[test]
    fn a_subagent_works_until_its_subagent_stop() {
        let mut live = Live::new(AgentState::Working, Timestamp::from_unix_ms(0));
        apply(
            &mut live,
            &hook("PreToolUse", json!({"tool_name": "Grep"}), 1),
            true,
        );
        // A Stop is the main agent's; inside a subagent it does not end the subagent.
        apply(&mut live, &hook("Stop", json!({}), 2), true);
        assert_eq!(live.state, AgentState::Working);
        apply(&mut live, &hook("SubagentStop", json!({}), 3), true);
        assert_eq!(live.state, AgentState::Ended);
    }
}
