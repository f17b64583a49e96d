//! A temporary Claude Code directory holding the real CLI's transcripts
//! (tests/fixtures/claude-code-transcripts), copied into the
//! `projects/<project>/` layout with their times moved to a minute ago, and the
//! hook events of that run naming them: what a viewer of a session's
//! conversation needs from a real collector (`GET /v1/sessions/{id}/conversation`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use swarm_obs::{Event, Kind, Timestamp};

use crate::{Collector, TestHome, workspace_root};

/// The session of the fixture transcripts.
pub const SESSION: &str = "dc66a002-3dd9-4318-a00f-9eea0b6cbd4e";
/// Its subagent.
pub const SUBAGENT: &str = "ac7b7a184035db829";
/// The fixture's first line time, moved to `now - 60 s` in the copies.
const FIXTURE_START: &str = "2026-12-07T16:45:18.000Z";

/// A fixture transcript's text.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        workspace_root()
            .join("tests/fixtures/claude-code-transcripts")
            .join(name),
    )
    .expect("read a transcript fixture")
}

/// How far the copies' times are moved: the fixture's start becomes a minute ago.
pub fn shift_ms() -> i64 {
    let start: Timestamp = FIXTURE_START.parse().unwrap();
    Timestamp::now().unix_ms() - 60_000 - start.unix_ms()
}

/// A fixture time (`"18.136"`: seconds past 16:45 of the fixture's day), moved.
fn at(secs: &str, shift: i64) -> Timestamp {
    let t: Timestamp = format!("2026-12-07T16:45:{secs}Z").parse().unwrap();
    Timestamp::from_unix_ms(t.unix_ms() + shift)
}

/// Transcript text with every `timestamp` moved by `shift` ms.
pub fn shifted(text: &str, shift: i64) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).expect("fixture line is JSON");
        if let Some(ts) = v.get("timestamp").and_then(Value::as_str) {
            let t: Timestamp = ts.parse().unwrap();
            v["timestamp"] = json!(Timestamp::from_unix_ms(t.unix_ms() + shift).to_string());
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

/// A temporary user: `<home>/.claude/projects/-tmp-proj/` holds the transcripts.
pub struct ClaudeUser {
    dir: tempfile::TempDir,
}

impl Default for ClaudeUser {
    fn default() -> Self {
        Self::new()
    }
}

impl ClaudeUser {
    /// An empty Claude Code directory with one project.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp home");
        std::fs::create_dir_all(dir.path().join(".claude/projects/-tmp-proj"))
            .expect("create the projects dir");
        Self { dir }
    }

    /// The user's home.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// `<home>/.claude`
    pub fn claude(&self) -> PathBuf {
        self.dir.path().join(".claude")
    }

    /// The project's directory of transcripts.
    pub fn project(&self) -> PathBuf {
        self.claude().join("projects/-tmp-proj")
    }

    /// `<project>/<session>.jsonl`
    pub fn main_path(&self, session: &str) -> PathBuf {
        self.project().join(format!("{session}.jsonl"))
    }

    /// `<project>/<session>/subagents/agent-<id>.jsonl`
    pub fn sub_path(&self, session: &str, agent: &str) -> PathBuf {
        self.project()
            .join(session)
            .join("subagents")
            .join(format!("agent-{agent}.jsonl"))
    }

    /// Copies both fixture transcripts into place for `session`, times moved by
    /// `shift`.
    pub fn install_fixtures(&self, session: &str, shift: i64) {
        write(
            &self.main_path(session),
            &shifted(&fixture("session.jsonl"), shift),
        );
        write(
            &self.sub_path(session, SUBAGENT),
            &shifted(&fixture("subagent.jsonl"), shift),
        );
    }

    /// A collector (with `args`) whose Claude Code directory is this user's.
    pub fn collector(&self, home: &TestHome, args: &[&str]) -> Collector {
        let claude = self.claude();
        Collector::start_with_env(
            home,
            args,
            &[
                ("HOME", self.home().to_str().unwrap()),
                ("CLAUDE_CONFIG_DIR", claude.to_str().unwrap()),
            ],
        )
    }
}

/// Writes `text` to `path`, making its directories.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).expect("write a transcript");
}

/// A hook event of `session` as swarm-hook makes it from a payload.
pub fn hook(session: &str, name: &str, ts: Timestamp, agent: Option<&str>, extra: Value) -> Event {
    let mut ev = Event::new("proj", Kind::Hook, name);
    ev.ts = ts;
    ev.session = Some(session.into());
    ev.hook = Some(name.into());
    ev.agent = agent.map(str::to_owned);
    ev.agent_type = agent.map(|_| "general-purpose".to_owned());
    ev.tool = extra["tool_name"].as_str().map(str::to_owned);
    ev.tool_use_id = extra["tool_use_id"].as_str().map(str::to_owned);
    if name == "PostToolUseFailure" {
        ev.kind = Kind::Error;
    }
    let mut payload = json!({"hook_event_name": name, "session_id": session});
    if let Some(a) = agent {
        payload["agent_id"] = json!(a);
    }
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    ev.payload = Some(payload);
    ev
}

/// The hook events of the fixture run, in its timeline, for `session`, naming
/// the transcript `main` (and the subagent's `sub` on SubagentStop, when given).
pub fn fixture_events(session: &str, main: &Path, sub: Option<&Path>, shift: i64) -> Vec<Event> {
    let tp = json!(main.to_str().unwrap());
    let with = |v: Value| {
        let mut v = v;
        v["transcript_path"] = tp.clone();
        v
    };
    let t = |s: &str| at(s, shift);
    let sa = Some(SUBAGENT);
    let mut stop = json!({"last_assistant_message": "All steps done."});
    if let Some(sub) = sub {
        stop["agent_transcript_path"] = json!(sub.to_str().unwrap());
    }
    let tool = |name: &str, id: &str| json!({"tool_name": name, "tool_use_id": id});
    vec![
        hook(session, "SessionStart", t("18.050"), None, with(json!({}))),
        hook(
            session,
            "UserPromptSubmit",
            t("18.100"),
            None,
            with(json!({"prompt": "Follow this script"})),
        ),
        hook(
            session,
            "PreToolUse",
            t("18.300"),
            None,
            with(tool("Bash", "toolu_fake_0000")),
        ),
        hook(
            session,
            "PostToolUse",
            t("18.400"),
            None,
            with(tool("Bash", "toolu_fake_0000")),
        ),
        hook(
            session,
            "PreToolUse",
            t("18.460"),
            None,
            with(tool("Bash", "toolu_fake_0003")),
        ),
        hook(
            session,
            "PostToolUseFailure",
            t("18.540"),
            None,
            with(tool("Bash", "toolu_fake_0003")),
        ),
        hook(
            session,
            "PreToolUse",
            t("18.680"),
            None,
            with(tool("Agent", "toolu_fake_0006")),
        ),
        hook(session, "SubagentStart", t("18.690"), sa, with(json!({}))),
        hook(
            session,
            "PreToolUse",
            t("18.760"),
            sa,
            with(tool("Bash", "toolu_fake_0009")),
        ),
        hook(
            session,
            "PostToolUse",
            t("18.815"),
            sa,
            with(tool("Bash", "toolu_fake_0009")),
        ),
        hook(session, "SubagentStop", t("18.860"), sa, with(stop)),
        hook(
            session,
            "PostToolUse",
            t("18.940"),
            None,
            with(tool("Agent", "toolu_fake_0006")),
        ),
        hook(
            session,
            "Stop",
            t("18.995"),
            None,
            with(json!({"last_assistant_message": "All steps done."})),
        ),
        hook(
            session,
            "SessionEnd",
            t("19.100"),
            None,
            with(json!({"reason": "other"})),
        ),
    ]
}
