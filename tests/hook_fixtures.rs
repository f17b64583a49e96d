//! Every captured Claude Code payload, both CLI versions, through the real
//! `swarm-hook` process: the event on disk is checked field by field.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;
use swarm_obs::{Event, Kind, Level};
use swarm_obs_suite::{TestHome, fixtures_dir, run_with_stdin};

/// What each fixture must become: kind, source, msg.
const EXPECTED: &[(&str, Kind, &str, &str)] = &[
    ("MessageDisplay", Kind::Hook, "proj", "MessageDisplay: done"),
    (
        "Notification.idle_prompt",
        Kind::Hook,
        "proj",
        "Notification (idle_prompt): Claude is waiting for your input",
    ),
    (
        "Notification",
        Kind::Attention,
        "proj",
        "Notification (permission_prompt): Claude needs your permission",
    ),
    (
        "Notification.permission_prompt",
        Kind::Attention,
        "proj",
        "Notification (permission_prompt): Claude needs your permission",
    ),
    (
        "PermissionRequest",
        Kind::Attention,
        "proj",
        "PermissionRequest Bash: touch perm-test.txt",
    ),
    (
        "PostToolBatch.inside_subagent",
        Kind::Hook,
        "proj/general-purpose",
        "PostToolBatch: 1 tool call (Bash)",
    ),
    (
        "PostToolBatch",
        Kind::Hook,
        "proj",
        "PostToolBatch: 1 tool call (Bash)",
    ),
    (
        "PostToolUse.Agent_tool",
        Kind::Hook,
        "proj",
        "PostToolUse Agent: fake subagent (general-purpose) (* ms)",
    ),
    (
        "PostToolUse.Agent_tool_background",
        Kind::Hook,
        "proj",
        "PostToolUse Agent: fake subagent (general-purpose) (26 ms)",
    ),
    (
        "PostToolUse.inside_subagent",
        Kind::Hook,
        "proj/general-purpose",
        "PostToolUse Bash: echo hello-from-subagent (* ms)",
    ),
    (
        "PostToolUse",
        Kind::Hook,
        "proj",
        "PostToolUse Bash: echo hello-from-fake (* ms)",
    ),
    (
        "PostToolUseFailure",
        Kind::Error,
        "proj",
        "PostToolUseFailure Bash: ls ./no-such-subdir — Exit code 2",
    ),
    (
        "PreToolUse.Agent_tool",
        Kind::Hook,
        "proj",
        "PreToolUse Agent: fake subagent (general-purpose)",
    ),
    (
        "PreToolUse.inside_subagent",
        Kind::Hook,
        "proj/general-purpose",
        "PreToolUse Bash: echo hello-from-subagent",
    ),
    (
        "PreToolUse",
        Kind::Hook,
        "proj",
        "PreToolUse Bash: echo hello-from-fake",
    ),
    (
        "SessionEnd.interactive",
        Kind::Hook,
        "proj",
        "SessionEnd (prompt_input_exit)",
    ),
    ("SessionEnd", Kind::Hook, "proj", "SessionEnd (other)"),
    (
        "SessionStart.interactive",
        Kind::Start,
        "proj",
        "SessionStart (startup) claude-opus-4-8[1m]",
    ),
    (
        "SessionStart",
        Kind::Start,
        "proj",
        "SessionStart (startup)",
    ),
    ("Stop.interactive", Kind::Done, "proj", "Stop: done"),
    ("Stop", Kind::Done, "proj", "Stop: done"),
    (
        "Stop.with_background_task",
        Kind::Done,
        "proj",
        "Stop: done (1 background task running)",
    ),
    (
        "SubagentStart",
        Kind::Start,
        "proj/general-purpose",
        "SubagentStart general-purpose",
    ),
    (
        "SubagentStop",
        Kind::Hook,
        "proj/general-purpose",
        "SubagentStop general-purpose: subagent-done",
    ),
    (
        "UserPromptSubmit",
        Kind::Hook,
        "proj",
        "UserPromptSubmit: say hello",
    ),
    (
        "UserPromptSubmit.task_notification",
        Kind::Hook,
        "proj",
        "UserPromptSubmit: task notification: Agent \"fake subagent\" finished (completed)",
    ),
];

fn fixtures() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (version, dir) in [
        ("2.1.197", fixtures_dir()),
        ("2.1.330", fixtures_dir().join("v2.1.330")),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|p| (version.to_owned(), p)));
    }
    assert!(out.len() >= 41, "fixtures missing: found {}", out.len());
    out
}

fn compact(path: &PathBuf) -> (Vec<u8>, Value) {
    let value: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    // Claude Code sends one compact line; send the same.
    let mut line = serde_json::to_vec(&value).unwrap();
    line.push(b'\n');
    (line, value)
}

fn matches_pattern(pattern: &str, actual: &str) -> bool {
    match pattern.split_once('*') {
        Some((head, tail)) => {
            actual.starts_with(head)
                && actual.ends_with(tail)
                && actual[head.len()..actual.len() - tail.len()]
                    .chars()
                    .all(|c| c.is_ascii_digit())
        }
        None => pattern == actual,
    }
}

#[test]
fn every_fixture_becomes_a_faithful_event() {
    let home = TestHome::new();
    let mut by_fixture: Vec<(String, Value, Event)> = Vec::new();
    for (version, path) in fixtures() {
        let (line, input) = compact(&path);
        let out = run_with_stdin(&mut home.hook(), line);
        let name = format!("{version}/{}", path.file_stem().unwrap().to_string_lossy());
        assert_eq!(out.status.code(), Some(0), "{name}: exit code");
        assert!(
            out.stdout.is_empty(),
            "{name}: wrote to stdout: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            out.stderr.is_empty(),
            "{name}: stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let events = home.events();
        let ev = events
            .last()
            .unwrap_or_else(|| panic!("{name}: no event on disk"))
            .clone();
        assert_eq!(
            events.len(),
            by_fixture.len() + 1,
            "{name}: one event per run"
        );
        by_fixture.push((name, input, ev));
    }

    for (name, input, ev) in &by_fixture {
        let stem = name.split_once('/').unwrap().1;
        let &(_, kind, source, msg) = EXPECTED
            .iter()
            .find(|(f, ..)| *f == stem)
            .unwrap_or_else(|| panic!("{name}: no expectation for this fixture"));
        let s = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);

        assert_eq!(ev.v, 1, "{name}");
        assert_eq!(ev.kind, kind, "{name}: kind");
        assert_eq!(ev.source, source, "{name}: source");
        assert!(
            matches_pattern(msg, &ev.msg),
            "{name}: msg {:?}, expected {msg:?}",
            ev.msg
        );
        let level = match kind {
            Kind::Error => Level::Error,
            Kind::Attention => Level::Warn,
            _ => Level::Info,
        };
        assert_eq!(ev.level, level, "{name}: level");
        assert_eq!(ev.hook, s("hook_event_name"), "{name}: hook");
        assert_eq!(ev.session, s("session_id"), "{name}: session");
        assert_eq!(ev.prompt_id, s("prompt_id"), "{name}: prompt_id");
        assert_eq!(ev.agent, s("agent_id"), "{name}: agent");
        assert_eq!(ev.agent_type, s("agent_type"), "{name}: agent_type");
        assert_eq!(ev.tool, s("tool_name"), "{name}: tool");
        assert_eq!(ev.tool_use_id, s("tool_use_id"), "{name}: tool_use_id");
        assert_eq!(
            ev.duration_ms,
            input.get("duration_ms").and_then(Value::as_u64),
            "{name}: duration_ms"
        );
        assert_eq!(ev.pid.map(|p| p > 0), Some(true), "{name}: pid");
        assert!(
            ev.host.as_deref().is_some_and(|h| !h.is_empty()),
            "{name}: host"
        );
        // Small, secret-free payloads are carried unchanged.
        assert_eq!(ev.payload.as_ref(), Some(input), "{name}: payload");
        // The id's embedded time is the event's time.
        assert_eq!(ev.id.timestamp(), ev.ts, "{name}: id/ts");
    }

    // Subagent events are told apart from the main agent's.
    let sub: Vec<_> = by_fixture
        .iter()
        .filter(|(n, ..)| n.contains("inside_subagent") || n.contains("Subagent"))
        .collect();
    assert!(sub.len() >= 6);
    assert!(
        sub.iter()
            .all(|(_, _, e)| e.agent.as_deref().is_some_and(|a| a.starts_with('a')))
    );
    let main: Vec<_> = by_fixture
        .iter()
        .filter(|(n, ..)| n.ends_with("/PreToolUse") || n.ends_with("/Stop"))
        .collect();
    assert!(
        main.iter()
            .all(|(_, _, e)| e.agent.is_none() && e.agent_type.is_none())
    );

    // Every PreToolUse pairs with a PostToolUse on tool_use_id, same session and agent.
    let mut posts: HashMap<(&str, &str), &Event> = HashMap::new();
    for (name, _, e) in &by_fixture {
        if e.hook.as_deref() == Some("PostToolUse") {
            let version = name.split_once('/').unwrap().0;
            posts.insert((version, e.tool_use_id.as_deref().unwrap()), e);
        }
    }
    let mut paired = 0;
    for (name, _, pre) in by_fixture
        .iter()
        .filter(|(_, _, e)| e.hook.as_deref() == Some("PreToolUse"))
    {
        let version = name.split_once('/').unwrap().0;
        let id = pre
            .tool_use_id
            .as_deref()
            .unwrap_or_else(|| panic!("{name}: no tool_use_id"));
        if let Some(post) = posts.get(&(version, id)) {
            assert_eq!(post.session, pre.session, "{name}");
            assert_eq!(post.agent, pre.agent, "{name}");
            assert_eq!(post.tool, pre.tool, "{name}");
            paired += 1;
        }
    }
    assert!(paired >= 5, "only {paired} Pre/Post pairs found");
}

#[test]
fn pretty_printed_and_trailing_input_is_accepted() {
    let home = TestHome::new();
    let path = fixtures_dir().join("Stop.json");
    let mut raw = std::fs::read(&path).unwrap();
    raw.extend_from_slice(b"\n{\"second\": \"object ignored\"}\n");
    let out = run_with_stdin(&mut home.hook(), raw);
    assert_eq!(out.status.code(), Some(0));
    let events = home.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, Kind::Done);
}

#[test]
fn source_can_be_set_by_environment() {
    let home = TestHome::new();
    let (line, _) = compact(&fixtures_dir().join("PreToolUse.inside_subagent.json"));
    let out = run_with_stdin(home.hook().env("SWARM_OBS_SOURCE", "backend-team"), line);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(home.events()[0].source, "backend-team/general-purpose");
}

#[test]
fn secrets_never_reach_the_disk() {
    let home = TestHome::new();
    let key = format!("sk-ant-api03-{}", "Z".repeat(40));
    let input = serde_json::json!({
        "session_id": "s", "cwd": "/w/proj", "hook_event_name": "PreToolUse", "tool_name": "Bash",
        "tool_input": {"command": format!("ANTHROPIC_API_KEY={key} claude -p hi"), "env": {"GITHUB_TOKEN": "abc"}},
        "tool_use_id": "t",
    });
    let out = run_with_stdin(&mut home.hook(), serde_json::to_vec(&input).unwrap());
    assert_eq!(out.status.code(), Some(0));
    let lines = home.event_lines().join("\n");
    assert!(
        !lines.contains(&key) && !lines.contains("\"abc\""),
        "{lines}"
    );
    assert!(lines.contains("[REDACTED]"));
}

#[cfg(unix)]
#[test]
fn event_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new();
    let (line, _) = compact(&fixtures_dir().join("Stop.json"));
    run_with_stdin(&mut home.hook(), line);
    let files = swarm_obs::EventLog::files(&swarm_obs::StateRoot::new(home.path())).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
