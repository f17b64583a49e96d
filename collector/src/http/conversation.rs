//! `GET /v1/sessions/{id}/conversation`: a page of an agent's conversation, read
//! from its transcript on request (see [`crate::transcript`]).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use swarm_obs::{Event, Timestamp};

use crate::api::{ConversationAnswer, TurnKind, TurnRole};
use crate::filter::Filter;
use crate::store::{self, SessionAgg};
use crate::transcript::{PageRequest, Refusal, Scan};

use super::queries::{count_param, read};
use super::*;

/// Turns in a page unless the request says otherwise.
const DEFAULT_TURNS: usize = 50;
/// Turns in a page at most.
const MAX_TURNS: usize = 200;
/// The agent's newest events looked at to judge whether its transcript lags.
const RECENT_EVENTS: usize = 200;

/// The newest event of the agent that says a turn exists.
#[derive(Debug)]
struct Expected {
    hook: String,
    ts: Timestamp,
    tool: Option<String>,
    tool_use_id: Option<String>,
    /// A Stop that reported an answer.
    answered: bool,
    /// For a Stop: the time of the agent's event before it that implies a turn
    /// (its answer was written after that).
    before: Option<Timestamp>,
}

/// Whether a hook event says a turn was written, and the tool use id it names.
fn implies_turn(ev: &Event) -> Option<(&str, Option<String>)> {
    let hook = ev.hook.as_deref()?;
    let by_tool = match hook {
        "UserPromptSubmit" | "Stop" | "SubagentStop" => false,
        "PreToolUse" | "PostToolUse" | "PostToolUseFailure" | "PermissionRequest" => true,
        _ => return None,
    };
    let id = ev.tool_use_id.clone().or_else(|| {
        ev.payload
            .as_ref()?
            .get("tool_use_id")?
            .as_str()
            .map(str::to_owned)
    });
    if by_tool && id.is_none() {
        // Nothing to look for (PermissionRequest carries no id): an older
        // event decides.
        return None;
    }
    Some((hook, id))
}

impl Expected {
    /// The newest event among `events` (newest first) that implies a turn: a
    /// prompt submitted, a tool called (with its id), or a turn ended.
    fn from_events(events: impl IntoIterator<Item = Event>) -> Option<Self> {
        let mut events = events.into_iter();
        let (ev, hook, tool_use_id) = events.by_ref().find_map(|ev| {
            let (hook, id) = implies_turn(&ev)?;
            let hook = hook.to_owned();
            Some((ev, hook, id))
        })?;
        let stop = matches!(hook.as_str(), "Stop" | "SubagentStop");
        let before = if stop {
            events.find(|e| implies_turn(e).is_some()).map(|e| e.ts)
        } else {
            None
        };
        let answered = ev
            .payload
            .as_ref()
            .and_then(|p| p.get("last_assistant_message"))
            .and_then(|m| m.as_str())
            .is_some_and(|m| !m.trim().is_empty());
        Some(Self {
            hook,
            ts: ev.ts,
            tool: ev.tool.clone(),
            tool_use_id,
            answered,
            before,
        })
    }

    /// What the transcript lacks, if it lacks the turn this event implies.
    fn missing(&self, scan: &Scan) -> Option<String> {
        let at = self.ts;
        match self.hook.as_str() {
            "UserPromptSubmit" => (scan.newest.is_none_or(|t| t < at))
                .then(|| format!("the prompt submitted at {at} is not in the transcript yet")),
            "Stop" | "SubagentStop" => {
                // The answer is the last turn, written after whatever came before
                // the Stop (an older answer does not count).
                let answered = scan.last == Some((TurnRole::Assistant, TurnKind::Text))
                    && self
                        .before
                        .is_none_or(|b| scan.newest.is_some_and(|t| t > b));
                (self.answered && !answered).then(|| {
                    format!(
                        "the answer that ended the turn ({} at {at}) is not in the transcript yet",
                        self.hook
                    )
                })
            }
            _ => match &self.tool_use_id {
                Some(id) if !scan.watched => Some(format!(
                    "the {} call {id} ({} at {at}) is not in the transcript yet",
                    self.tool.as_deref().unwrap_or("tool"),
                    self.hook
                )),
                _ => None,
            },
        }
    }
}

fn param<'a>(p: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    p.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// A refusal before any file is opened: status and message.
type Refused = (u16, String);

fn cursor(p: &HashMap<String, String>, name: &str, hint: &str) -> Result<Option<u64>, Refused> {
    match param(p, name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            (
                400,
                format!(
                    "invalid `{name}` {:?}: expected a turn's seq (pass back `{hint}`)",
                    v.chars().take(100).collect::<String>()
                ),
            )
        }),
    }
}

/// The transcript path of `agent` (`None`: the main agent) in `agg`, and whether
/// it was derived from the session's rather than named by an event.
fn transcript_of(
    session: &str,
    agg: &SessionAgg,
    agent: Option<&str>,
) -> Result<(String, bool), Refused> {
    let Some(agent) = agent else {
        return agg.transcript.clone().map(|p| (p, false)).ok_or_else(|| {
            (
                404,
                format!(
                    "session {session} has no transcript: none of its hook events carried a transcript_path"
                ),
            )
        });
    };
    let Some(a) = agg
        .agents
        .iter()
        .find(|a| a.agent.as_deref() == Some(agent))
    else {
        let known: Vec<&str> = agg
            .agents
            .iter()
            .map(|a| a.agent.as_deref().unwrap_or("main"))
            .collect();
        return Err((
            404,
            format!(
                "session {session} has no agent {agent:?}; its agents: {}",
                known.join(", ")
            ),
        ));
    };
    if let Some(p) = &a.transcript {
        return Ok((p.clone(), false));
    }
    agg.transcript
        .as_deref()
        .and_then(|main| crate::transcript::subagent_path(main, session, agent))
        .map(|p| (p, true))
        .ok_or_else(|| {
            (
                404,
                format!(
                    "subagent {agent} of session {session} has no transcript yet: no SubagentStop named one, and no transcript_path of the session tells where it would be"
                ),
            )
        })
}

pub(super) async fn conversation(
    State(st): State<Shared>,
    Path(session): Path<String>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let limit = match count_param(&p, &["limit"], DEFAULT_TURNS, MAX_TURNS) {
        Ok(n) => n.max(1),
        Err(r) => return *r,
    };
    let before = match cursor(&p, "before", "next_before") {
        Ok(c) => c,
        Err((status, message)) => return error(status, message),
    };
    let after = match cursor(&p, "after", "next_after") {
        Ok(c) => c,
        Err((status, message)) => return error(status, message),
    };
    let agent = param(&p, "agent")
        .filter(|a| *a != "main")
        .map(str::to_owned);

    let id = session.clone();
    let who = agent.clone();
    let scan_limit = st.scan_limit;
    let found = read(&st.store, move |c| {
        let Some(agg) = store::session_row(c, &id)? else {
            return Ok(None);
        };
        let filter = Filter {
            session: Some(id),
            agent: Some(who.unwrap_or_else(|| "main".to_owned())),
            ..Filter::default()
        };
        let recent = store::page(c, &filter, None, None, RECENT_EVENTS, scan_limit)?;
        let expected = Expected::from_events(recent.rows.into_iter().map(|s| s.event));
        Ok(Some((agg, expected)))
    })
    .await;
    let (agg, expected) = match found {
        Ok(Some(f)) => f,
        Ok(None) => return error(404, format!("no session {session:?}")),
        Err(r) => return r,
    };
    let (path, derived) = match transcript_of(&session, &agg, agent.as_deref()) {
        Ok(p) => p,
        Err((status, message)) => return error(status, message),
    };
    let last_event = agg
        .agents
        .iter()
        .find(|a| a.agent == agent)
        .map(|a| Timestamp::from_unix_ms(a.last_ts));

    let permit = match st.transcripts.permit().await {
        Ok(p) => p,
        Err(e) => return error(e.status(), e.to_string()),
    };
    let req = PageRequest {
        limit,
        before,
        after,
        main: agent.is_none(),
        watch: expected.as_ref().and_then(|e| e.tool_use_id.clone()),
    };
    let t = st.transcripts.clone();
    let asked = path;
    let scanned = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let _permit = permit;
        let opened = t.open(&asked)?;
        let file = opened.file.take(crate::transcript::MAX_TRANSCRIPT_BYTES);
        let scan = crate::transcript::scan(file, &req, t.redactor()).map_err(|e| Refusal::Io {
            path: asked.clone(),
            reason: e.to_string(),
        })?;
        Ok::<_, Refusal>((opened.path, scan))
    })
    .await;
    let (real, scan) = match scanned {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let mut message = e.to_string();
            if derived && e.status() == 404 {
                message.push_str(
                    " (derived from the session's transcript: no SubagentStop named this subagent's yet)",
                );
            }
            return error(e.status(), message);
        }
        Err(e) => return error(500, format!("reading the transcript failed: {e}")),
    };

    let lag = expected.as_ref().and_then(|e| e.missing(&scan));
    let first = scan.turns.first().map(|t| t.seq);
    let last = scan.turns.last().map(|t| t.seq);
    let answer = ConversationAnswer {
        session,
        agent,
        path: st
            .transcripts
            .redactor()
            .redact_str(&real.display().to_string()),
        next_before: first.filter(|&s| s > 0),
        next_after: last.or(after),
        turns: scan.turns,
        total: scan.total,
        truncated: scan.truncated,
        skipped_lines: scan.skipped,
        oversized_lines: scan.oversized,
        lags: lag.is_some(),
        lag,
        newest_turn: scan.newest,
        last_event,
    };
    axum::Json(answer).into_response()
}
