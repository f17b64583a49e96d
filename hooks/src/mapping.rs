//! From a Claude Code hook payload to a swarm-obs [`Event`].
//!
//! Known events get a kind and a one-line message a person would want to read;
//! unknown events and unknown fields are accepted as they are (kind `hook`), since
//! Claude Code adds events over time.

use serde_json::{Map, Value};
use swarm_obs::{Event, Kind, Level, Redactor};

/// Longest `msg` produced, in characters.
const MSG_CHARS: usize = 160;

/// How events are labelled.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    /// Overrides the project name used as the source (`SWARM_OBS_SOURCE`).
    pub source: Option<String>,
    /// The project name to use when the payload has no `cwd`.
    pub fallback_project: String,
}

/// Maps a hook payload (already parsed) to an event, redacting and capping the
/// payload it carries; the message is built from the redacted payload, so no
/// secret reaches it either.
///
/// ```
/// use swarm_hook::mapping::{hook_event, Labels};
/// use swarm_obs::{Kind, Redactor};
/// let payload = serde_json::json!({
///     "session_id": "s1", "cwd": "/home/dev/proj", "hook_event_name": "PreToolUse",
///     "tool_name": "Bash", "tool_input": {"command": "echo hello"}, "tool_use_id": "t1",
/// });
/// let ev = hook_event(payload.as_object().unwrap().clone(), &Labels::default(), &Redactor::default());
/// assert_eq!(ev.msg, "PreToolUse Bash: echo hello");
/// assert_eq!(ev.source, "proj");
/// assert_eq!(ev.kind, Kind::Hook);
/// ```
pub fn hook_event(input: Map<String, Value>, labels: &Labels, redactor: &Redactor) -> Event {
    let payload = redactor.payload(Value::Object(input));
    let empty = Map::new();
    let p = payload.as_object().unwrap_or(&empty);
    let s = |k: &str| p.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let hook = s("hook_event_name").unwrap_or("Unknown");
    let agent = s("agent_id");
    let agent_type = s("agent_type");

    let kind = match hook {
        "SessionStart" | "SubagentStart" => Kind::Start,
        "Stop" if agent.is_none() && !truthy(p.get("stop_hook_active")) => Kind::Done,
        "PostToolUseFailure" | "StopFailure" => Kind::Error,
        "PermissionRequest" => Kind::Attention,
        "Notification"
            if matches!(
                s("notification_type"),
                Some("permission_prompt" | "elicitation_dialog")
            ) =>
        {
            Kind::Attention
        }
        _ => Kind::Hook,
    };

    let project = labels.source.clone().unwrap_or_else(|| {
        s("cwd")
            .and_then(|cwd| cwd.trim_end_matches('/').rsplit('/').next())
            .filter(|name| !name.is_empty())
            .map_or_else(|| labels.fallback_project.clone(), str::to_owned)
    });
    let source = match agent_type {
        Some(t) => format!("{project}/{t}"),
        None => project,
    };

    let mut ev = Event::new(source, kind, one_line(&message(hook, p), MSG_CHARS));
    ev.level = match kind {
        Kind::Error => Level::Error,
        Kind::Attention => Level::Warn,
        _ => Level::Info,
    };
    ev.session = s("session_id").map(str::to_owned);
    ev.agent = agent.map(str::to_owned);
    ev.agent_type = agent_type.map(str::to_owned);
    ev.prompt_id = s("prompt_id").map(str::to_owned);
    ev.hook = Some(hook.to_owned());
    ev.tool = s("tool_name").map(str::to_owned);
    ev.tool_use_id = s("tool_use_id").map(str::to_owned);
    ev.duration_ms = p.get("duration_ms").and_then(Value::as_u64);
    ev.payload = Some(payload);
    ev
}

fn truthy(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

/// The human message for a hook event.
fn message(hook: &str, p: &Map<String, Value>) -> String {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let tool = s("tool_name");
    let target = tool_target(tool, p.get("tool_input"));
    let tool_part = if target.is_empty() {
        tool.to_owned()
    } else {
        format!("{tool}: {target}")
    };
    let with = |text: &str| {
        if text.is_empty() {
            hook.to_owned()
        } else {
            format!("{hook}: {text}")
        }
    };
    let in_parens = |text: &str| {
        if text.is_empty() {
            hook.to_owned()
        } else {
            format!("{hook} ({text})")
        }
    };
    match hook {
        "PreToolUse" | "PermissionRequest" => format!("{hook} {tool_part}"),
        "PostToolUse" => match p.get("duration_ms").and_then(Value::as_u64) {
            Some(ms) => format!("{hook} {tool_part} ({ms} ms)"),
            None => format!("{hook} {tool_part}"),
        },
        "PostToolUseFailure" => {
            let err = first_line(s("error"));
            if err.is_empty() {
                format!("{hook} {tool_part}")
            } else {
                format!("{hook} {tool_part} — {err}")
            }
        }
        "PostToolBatch" => {
            let calls = p.get("tool_calls").and_then(Value::as_array);
            let names: Vec<&str> = calls
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("tool_name").and_then(Value::as_str))
                .collect();
            let n = calls.map_or(0, Vec::len);
            let plural = if n == 1 { "" } else { "s" };
            format!("{hook}: {n} tool call{plural} ({})", names.join(", "))
        }
        "Stop" | "SubagentStop" => {
            let who = match s("agent_type") {
                "" => hook.to_owned(),
                t => format!("{hook} {t}"),
            };
            let running = p
                .get("background_tasks")
                .and_then(Value::as_array)
                .map_or(0, |tasks| {
                    tasks
                        .iter()
                        .filter(|t| t.get("status").and_then(Value::as_str) == Some("running"))
                        .count()
                });
            let mut text = match first_line(s("last_assistant_message")) {
                "" => who,
                m => format!("{who}: {m}"),
            };
            if running > 0 {
                let plural = if running == 1 { "" } else { "s" };
                text.push_str(&format!(" ({running} background task{plural} running)"));
            }
            text
        }
        "StopFailure" => with(first_line(s("error"))),
        "SubagentStart" => match s("agent_type") {
            "" => hook.to_owned(),
            t => format!("{hook} {t}"),
        },
        "SessionStart" => match (s("source"), s("model")) {
            ("", "") => hook.to_owned(),
            (src, "") => in_parens(src),
            ("", m) => format!("{hook} {m}"),
            (src, m) => format!("{hook} ({src}) {m}"),
        },
        "SessionEnd" => in_parens(s("reason")),
        "PreCompact" | "PostCompact" => in_parens(s("trigger")),
        "UserPromptSubmit" => with(&prompt_summary(s("prompt"))),
        "Notification" => match s("notification_type") {
            "" => with(s("message")),
            t => format!("{hook} ({t}): {}", s("message")),
        },
        "MessageDisplay" => with(s("delta")),
        _ => {
            // An event this build does not know: name it and show the most telling text.
            let text = ["message", "reason", "error", "prompt", "source"]
                .iter()
                .map(|k| s(k))
                .find(|v| !v.is_empty())
                .unwrap_or("");
            if tool.is_empty() {
                with(first_line(text))
            } else {
                format!("{hook} {tool_part}")
            }
        }
    }
}

/// What a tool call is about: the command, file, pattern, URL or task.
fn tool_target(tool: &str, input: Option<&Value>) -> String {
    let Some(input) = input.and_then(Value::as_object) else {
        return String::new();
    };
    let s = |k: &str| input.get(k).and_then(Value::as_str).unwrap_or("");
    let text = match tool {
        "Bash" => s("command").to_owned(),
        "Read" | "Write" | "Edit" | "MultiEdit" => s("file_path").to_owned(),
        "NotebookEdit" => s("notebook_path").to_owned(),
        "Glob" | "Grep" => match s("path") {
            "" => s("pattern").to_owned(),
            path => format!("{} in {path}", s("pattern")),
        },
        "WebFetch" => s("url").to_owned(),
        "WebSearch" => s("query").to_owned(),
        "Agent" | "Task" => match s("subagent_type") {
            "" => s("description").to_owned(),
            t => format!("{} ({t})", s("description")),
        },
        "TodoWrite" => {
            let n = input
                .get("todos")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            format!("{n} todos")
        }
        _ => [
            "command",
            "file_path",
            "path",
            "url",
            "query",
            "pattern",
            "description",
            "prompt",
        ]
        .iter()
        .map(|k| s(k))
        .find(|v| !v.is_empty())
        .unwrap_or("")
        .to_owned(),
    };
    first_line(&text).to_owned()
}

/// A prompt in one line; background-task notifications are summarised.
fn prompt_summary(prompt: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = prompt.find(&open)? + open.len();
        let len = prompt[start..].find(&close)?;
        Some(prompt[start..start + len].trim())
    };
    if prompt.trim_start().starts_with("<task-notification>") {
        let summary = tag("summary").unwrap_or("background task");
        return match tag("status") {
            Some(status) => format!("task notification: {summary} ({status})"),
            None => format!("task notification: {summary}"),
        };
    }
    prompt.to_owned()
}

fn first_line(s: &str) -> &str {
    let s = s.trim();
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Collapses whitespace runs to one space and cuts to `max` characters with `…`.
fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut count = 0;
    let mut last_space = false;
    for c in s.chars() {
        let c = if c.is_whitespace() || c.is_control() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if count == max {
            out.pop();
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> Event {
        hook_event(
            v.as_object().unwrap().clone(),
            &Labels::default(),
            &Redactor::default(),
        )
    }

    #[test]
    fn kinds_follow_the_sound_rules() {
        let stop = json!({"hook_event_name": "Stop", "stop_hook_active": false, "last_assistant_message": "all done\nmore"});
        assert_eq!(ev(stop.clone()).kind, Kind::Done);
        assert_eq!(ev(stop).msg, "Stop: all done");
        let again = json!({"hook_event_name": "Stop", "stop_hook_active": true});
        assert_eq!(ev(again).kind, Kind::Hook);
        let fail = ev(
            json!({"hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
            "tool_input": {"command": "ls x"}, "error": "Exit code 2\nls: no"}),
        );
        assert_eq!((fail.kind, fail.level), (Kind::Error, Level::Error));
        assert_eq!(fail.msg, "PostToolUseFailure Bash: ls x — Exit code 2");
        let perm = ev(
            json!({"hook_event_name": "Notification", "notification_type": "permission_prompt", "message": "m"}),
        );
        assert_eq!((perm.kind, perm.level), (Kind::Attention, Level::Warn));
        let idle = ev(
            json!({"hook_event_name": "Notification", "notification_type": "idle_prompt", "message": "m"}),
        );
        assert_eq!(idle.kind, Kind::Hook);
    }

    #[test]
    fn unknown_events_and_missing_fields_are_fine() {
        let e = ev(json!({"hook_event_name": "BrandNewEvent", "reason": "why not"}));
        assert_eq!(
            (e.kind, e.msg.as_str()),
            (Kind::Hook, "BrandNewEvent: why not")
        );
        let e = ev(json!({}));
        assert_eq!(e.hook.as_deref(), Some("Unknown"));
        let e = ev(json!({"hook_event_name": 42, "tool_name": ["x"], "duration_ms": "soon"}));
        assert_eq!(e.duration_ms, None);
        assert_eq!(e.tool, None);
    }

    #[test]
    fn messages_are_one_short_line_without_secrets() {
        let e = ev(json!({"hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": format!("GH_TOKEN=ghp_{} git push\n{}", "a".repeat(36), "x ".repeat(500))}}));
        assert!(
            e.msg
                .starts_with("PreToolUse Bash: GH_TOKEN=[REDACTED] git push"),
            "{}",
            e.msg
        );
        assert!(e.msg.chars().count() <= MSG_CHARS);
        assert!(!e.payload.unwrap().to_string().contains("ghp_"));
        assert_eq!(one_line("a \n\t b", 10), "a b");
        assert_eq!(one_line("abcdef", 3), "ab…");
    }

    #[test]
    fn source_names_the_project_and_subagent() {
        let e = ev(json!({"cwd": "/home/dev/proj/", "agent_id": "a1", "agent_type": "Explore"}));
        assert_eq!(e.source, "proj/Explore");
        let labels = Labels {
            source: Some("mine".into()),
            fallback_project: "x".into(),
        };
        let e = hook_event(
            json!({"cwd": "/a/b"}).as_object().unwrap().clone(),
            &labels,
            &Redactor::default(),
        );
        assert_eq!(e.source, "mine");
        let labels = Labels {
            source: None,
            fallback_project: "fallback".into(),
        };
        let e = hook_event(Map::new(), &labels, &Redactor::default());
        assert_eq!(e.source, "fallback");
    }
}
