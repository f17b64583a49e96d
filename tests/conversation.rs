//! A session's conversation, by reference: a real collector whose allowed
//! transcript root is a temporary Claude Code directory (`HOME` and
//! `CLAUDE_CONFIG_DIR` set for it), the transcripts the real CLI wrote
//! (tests/fixtures/claude-code-transcripts) copied into the `projects/<project>/`
//! layout with their times moved to now, and hook events posted that name them.
//! `GET /v1/sessions/{id}/conversation` reads them on request: in order, paged
//! both ways, redacted; broken, huge, lagging, missing and foreign transcripts get
//! a clear answer and the collector keeps serving.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use swarm_obs::{Event, Timestamp};
use swarm_obs_collector::api::{ConversationAnswer, TurnKind, TurnRole};
use swarm_obs_suite::transcripts::{
    ClaudeUser, SESSION, SUBAGENT, fixture, fixture_events, hook, shift_ms, shifted, write,
};
use swarm_obs_suite::{Collector, TestHome};

/// Appends `text` to the transcript at `path`, as Claude Code writes its next turns.
fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the transcript to append");
    f.write_all(text.as_bytes()).unwrap();
}

fn at(secs: &str, shift: i64) -> Timestamp {
    let t: Timestamp = format!("2026-12-07T16:45:{secs}Z").parse().unwrap();
    Timestamp::from_unix_ms(t.unix_ms() + shift)
}

/// GETs a conversation: the status and the body text.
fn get(c: &Collector, session: &str, query: &str) -> (u16, String) {
    let mut resp = c
        .get(&format!("/v1/sessions/{session}/conversation{query}"))
        .call()
        .expect("GET the conversation");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// GETs a conversation that must be served.
fn conversation(c: &Collector, session: &str, query: &str) -> ConversationAnswer {
    let (status, text) = get(c, session, query);
    assert_eq!(status, 200, "GET conversation{query}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// GETs a conversation that must be refused with `status`; the error message.
fn refused(c: &Collector, session: &str, query: &str, status: u16) -> String {
    let (got, text) = get(c, session, query);
    assert_eq!(got, status, "GET conversation{query}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["error"].as_str().expect("an error message").to_owned()
}

fn seqs(a: &ConversationAnswer) -> Vec<u64> {
    a.turns.iter().map(|t| t.seq).collect()
}

/// Events stored for a session, so a test can see that reading stores nothing.
fn stored(c: &Collector, session: &str) -> usize {
    c.get_json(&format!("/v1/events?session={session}&limit=1000"))["events"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn main_and_subagent_conversations_read_in_order_with_calls_and_results_paired() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let shift = shift_ms();
    user.install_fixtures(SESSION, shift);
    let c = user.collector(&home, &[]);
    let (main, sub) = (user.main_path(SESSION), user.sub_path(SESSION, SUBAGENT));
    c.post_events(&fixture_events(SESSION, &main, Some(&sub), shift));

    let events_before = stored(&c, SESSION);

    let m = conversation(&c, SESSION, "");
    assert_eq!(m.agent, None);
    assert_eq!(
        PathBuf::from(&m.path),
        std::fs::canonicalize(&main).unwrap()
    );
    assert_eq!(m.total, 8, "{m:?}");
    use TurnKind::*;
    let shape: Vec<_> = m
        .turns
        .iter()
        .map(|t| (t.seq, t.role, t.kind, t.tool.as_deref()))
        .collect();
    assert_eq!(
        shape,
        [
            (0, TurnRole::User, Prompt, None),
            (1, TurnRole::Assistant, ToolUse, Some("Bash")),
            (2, TurnRole::User, ToolResult, Some("Bash")),
            (3, TurnRole::Assistant, ToolUse, Some("Bash")),
            (4, TurnRole::User, ToolResult, Some("Bash")),
            (5, TurnRole::Assistant, ToolUse, Some("Agent")),
            (6, TurnRole::User, ToolResult, Some("Agent")),
            (7, TurnRole::Assistant, Text, None),
        ]
    );
    // Each result follows its call, paired by tool_use_id.
    for pair in [(1, 2), (3, 4), (5, 6)] {
        let (call, result) = (&m.turns[pair.0], &m.turns[pair.1]);
        assert!(call.tool_use_id.is_some());
        assert_eq!(
            call.tool_use_id, result.tool_use_id,
            "{call:?} / {result:?}"
        );
    }
    assert_eq!(m.turns[1].tool_use_id.as_deref(), Some("toolu_fake_0000"));
    assert!(
        m.turns[0]
            .text
            .starts_with("Follow this script, one tool call per line:")
    );
    assert_eq!(
        m.turns[1].text,
        r#"{"command":"echo hello-from-bash","description":"Run a scripted command"}"#
    );
    assert_eq!(m.turns[2].text, "hello-from-bash");
    assert!(!m.turns[2].is_error);
    assert!(
        m.turns[4].is_error,
        "ls of a missing dir failed: {:?}",
        m.turns[4]
    );
    assert!(
        m.turns[5]
            .text
            .contains("\"prompt\":\"run: echo hello-from-subagent\"")
    );
    assert_eq!(m.turns[7].text, "All steps done.");
    assert_eq!(m.turns[0].ts, Some(at("18.136", shift)));
    assert_eq!(m.newest_turn, Some(at("18.990", shift)));
    assert_eq!(m.last_event, Some(at("19.100", shift)), "SessionEnd");
    assert!(
        !m.lags,
        "every turn the events report is there: {:?}",
        m.lag
    );
    assert_eq!((m.next_before, m.next_after), (None, Some(7)));
    assert!(!m.truncated && m.skipped_lines == 0 && m.oversized_lines == 0);

    let a = conversation(&c, SESSION, &format!("?agent={SUBAGENT}"));
    assert_eq!(a.agent.as_deref(), Some(SUBAGENT));
    assert_eq!(PathBuf::from(&a.path), std::fs::canonicalize(&sub).unwrap());
    let shape: Vec<_> = a
        .turns
        .iter()
        .map(|t| {
            (
                t.kind,
                t.tool.as_deref(),
                t.tool_use_id.as_deref(),
                t.text.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (Prompt, None, None, "run: echo hello-from-subagent"),
            (
                ToolUse,
                Some("Bash"),
                Some("toolu_fake_0009"),
                r#"{"command":"echo hello-from-subagent","description":"Run a scripted command"}"#
            ),
            (
                ToolResult,
                Some("Bash"),
                Some("toolu_fake_0009"),
                "hello-from-subagent"
            ),
            (Text, None, None, "All steps done."),
        ]
    );
    assert!(!a.lags, "{:?}", a.lag);
    assert_eq!(a.last_event, Some(at("18.860", shift)), "its SubagentStop");
    // `agent=main` is the main agent.
    assert_eq!(conversation(&c, SESSION, "?agent=main").total, 8);

    // Served by reference: reading stored nothing.
    assert_eq!(stored(&c, SESSION), events_before);

    // The paths are kept with the session in the store: a restarted collector
    // serves both conversations without any new event.
    drop(c);
    let c = user.collector(&home, &[]);
    assert_eq!(conversation(&c, SESSION, "").total, 8);
    assert_eq!(
        conversation(&c, SESSION, &format!("?agent={SUBAGENT}")).total,
        4
    );
}

#[test]
fn a_subagent_transcript_is_found_beside_the_session_before_any_subagent_stop_names_it() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let shift = shift_ms();
    user.install_fixtures(SESSION, shift);
    // No CLAUDE_CONFIG_DIR: the root is ~/.claude of the collector's HOME.
    let c = Collector::start_with_env(
        &home,
        &[],
        &[
            ("HOME", user.home().to_str().unwrap()),
            ("CLAUDE_CONFIG_DIR", ""),
        ],
    );
    let main = user.main_path(SESSION);
    let events: Vec<Event> = fixture_events(SESSION, &main, None, shift)
        .into_iter()
        .filter(|e| e.hook.as_deref() != Some("SubagentStop"))
        .collect();
    c.post_events(&events);
    let a = conversation(&c, SESSION, &format!("?agent={SUBAGENT}"));
    assert_eq!(
        PathBuf::from(&a.path),
        std::fs::canonicalize(user.sub_path(SESSION, SUBAGENT)).unwrap()
    );
    assert_eq!(a.total, 4);

    // An agent the session never had, and a derived file that is not there.
    let err = refused(&c, SESSION, "?agent=nobody", 404);
    assert!(err.contains("no agent") && err.contains(SUBAGENT), "{err}");
    c.post_events(&[hook(
        SESSION,
        "SubagentStart",
        Timestamp::now(),
        Some("a0000000000000001"),
        json!({"transcript_path": main.to_str().unwrap()}),
    )]);
    let err = refused(&c, SESSION, "?agent=a0000000000000001", 404);
    assert!(
        err.contains("agent-a0000000000000001.jsonl") && err.contains("derived"),
        "{err}"
    );
}

#[test]
fn pages_go_back_from_the_newest_turn_and_forward_from_a_cursor() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let shift = shift_ms();
    user.install_fixtures(SESSION, shift);
    let c = user.collector(&home, &[]);
    let main = user.main_path(SESSION);
    c.post_events(&fixture_events(SESSION, &main, None, shift));

    let newest = conversation(&c, SESSION, "?limit=3");
    assert_eq!((seqs(&newest), newest.total), (vec![5, 6, 7], 8));
    assert_eq!((newest.next_before, newest.next_after), (Some(5), Some(7)));
    let older = conversation(&c, SESSION, "?limit=3&before=5");
    assert_eq!(seqs(&older), [2, 3, 4]);
    assert_eq!(older.next_before, Some(2));
    let first = conversation(&c, SESSION, "?limit=3&before=2");
    assert_eq!(seqs(&first), [0, 1]);
    assert_eq!(first.next_before, None, "nothing before the first turn");

    let forward = conversation(&c, SESSION, "?limit=3&after=1");
    assert_eq!(seqs(&forward), [2, 3, 4]);
    assert_eq!(forward.next_after, Some(4));
    let caught_up = conversation(&c, SESSION, "?after=7");
    assert!(caught_up.turns.is_empty());
    assert_eq!(
        caught_up.next_after,
        Some(7),
        "poll again from the same place"
    );

    // Turns written since come after the cursor, in order.
    let ts = Timestamp::now().to_string();
    append(
        &main,
        &format!(
            "{}\n{}\n",
            json!({"type": "user", "timestamp": ts, "message": {"role": "user", "content": "and now?"}}),
            json!({"type": "assistant", "timestamp": ts, "message": {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "…"},
                {"type": "text", "text": "Nothing else."}
            ]}}),
        ),
    );
    let new = conversation(&c, SESSION, "?after=7");
    let got: Vec<_> = new
        .turns
        .iter()
        .map(|t| (t.seq, t.kind, t.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (8, TurnKind::Prompt, "and now?"),
            (9, TurnKind::Text, "Nothing else.")
        ]
    );
    assert_eq!((new.total, new.next_after), (10, Some(9)));
    // limit is at least 1 and at most 200.
    assert_eq!(seqs(&conversation(&c, SESSION, "?limit=0")), [9]);
    assert_eq!(conversation(&c, SESSION, "?limit=100000").turns.len(), 10);
    for bad in ["?before=x", "?after=-1", "?limit=many"] {
        let err = refused(&c, SESSION, bad, 400);
        assert!(err.starts_with("invalid"), "{bad}: {err}");
    }
}

#[test]
fn a_transcript_behind_its_events_says_it_lags_until_the_turns_are_written() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let shift = shift_ms();
    user.install_fixtures(SESSION, shift);
    let c = user.collector(&home, &[]);
    let main = user.main_path(SESSION);
    let mut events = fixture_events(SESSION, &main, None, shift);
    events.retain(|e| e.hook.as_deref() != Some("SessionEnd"));
    c.post_events(&events);
    assert!(!conversation(&c, SESSION, "").lags);

    // A new prompt the file does not have yet.
    let tp = json!(main.to_str().unwrap());
    let prompt_at = Timestamp::now();
    c.post_events(&[hook(
        SESSION,
        "UserPromptSubmit",
        prompt_at,
        None,
        json!({"prompt": "again", "transcript_path": tp}),
    )]);
    let a = conversation(&c, SESSION, "");
    assert!(a.lags, "{a:?}");
    assert!(a.lag.as_deref().unwrap().contains("prompt"), "{:?}", a.lag);
    assert_eq!(a.last_event, Some(prompt_at));
    assert!(a.newest_turn < a.last_event);
    let line = |v: Value| format!("{v}\n");
    let now = || Timestamp::now().to_string();
    append(
        &main,
        &line(json!({"type": "user", "timestamp": now(), "message": {"content": "again"}})),
    );
    assert!(!conversation(&c, SESSION, "").lags);

    // A tool call the events report before the transcript has it.
    c.post_events(&[hook(
        SESSION,
        "PreToolUse",
        Timestamp::now(),
        None,
        json!({"tool_name": "Read", "tool_use_id": "toolu_not_yet", "transcript_path": tp}),
    )]);
    let a = conversation(&c, SESSION, "");
    assert!(a.lags);
    let lag = a.lag.unwrap();
    assert!(
        lag.contains("toolu_not_yet") && lag.contains("Read"),
        "{lag}"
    );
    append(
        &main,
        &line(
            json!({"type": "assistant", "timestamp": now(), "message": {"content": [
                {"type": "tool_use", "id": "toolu_not_yet", "name": "Read", "input": {"file_path": "/x"}}
            ]}}),
        ),
    );
    append(
        &main,
        &line(
            json!({"type": "user", "timestamp": now(), "message": {"content": [
                {"type": "tool_result", "tool_use_id": "toolu_not_yet", "content": "x"}
            ]}}),
        ),
    );
    assert!(!conversation(&c, SESSION, "").lags);

    // The turn ended (Stop, with an answer) but the answer is not written yet;
    // a SessionEnd after it changes nothing.
    c.post_events(&[
        hook(
            SESSION,
            "Stop",
            Timestamp::now(),
            None,
            json!({"last_assistant_message": "read it", "transcript_path": tp}),
        ),
        hook(
            SESSION,
            "SessionEnd",
            Timestamp::now(),
            None,
            json!({"transcript_path": tp}),
        ),
    ]);
    let a = conversation(&c, SESSION, "");
    assert!(a.lags);
    assert!(a.lag.as_deref().unwrap().contains("Stop"), "{:?}", a.lag);
    append(
        &main,
        &line(
            json!({"type": "assistant", "timestamp": now(), "message": {"content": [
                {"type": "text", "text": "read it"}
            ]}}),
        ),
    );
    let a = conversation(&c, SESSION, "");
    assert!(!a.lags, "{:?}", a.lag);
    assert_eq!(a.turns.last().unwrap().text, "read it");

    // A whole round missing: the file ends with the previous answer, older
    // than the prompt the new answer came after.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let prompt_at = Timestamp::now();
    c.post_events(&[
        hook(
            SESSION,
            "UserPromptSubmit",
            prompt_at,
            None,
            json!({"prompt": "more", "transcript_path": tp}),
        ),
        hook(
            SESSION,
            "Stop",
            Timestamp::from_unix_ms(prompt_at.unix_ms() + 5),
            None,
            json!({"last_assistant_message": "more done", "transcript_path": tp}),
        ),
    ]);
    let a = conversation(&c, SESSION, "");
    assert!(a.lags, "the old answer is not this turn's: {a:?}");
    std::thread::sleep(std::time::Duration::from_millis(10));
    append(
        &main,
        &format!(
            "{}{}",
            line(json!({"type": "user", "timestamp": now(), "message": {"content": "more"}})),
            line(
                json!({"type": "assistant", "timestamp": now(), "message": {"content": [
                    {"type": "text", "text": "more done"}
                ]}})
            ),
        ),
    );
    let a = conversation(&c, SESSION, "");
    assert!(!a.lags, "{:?}", a.lag);
}

/// The collector's peak resident memory, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn garbage_huge_and_truncated_lines_are_skipped_and_counted() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let shift = shift_ms();
    let c = user.collector(&home, &[]);
    let main = user.main_path(SESSION);
    let good = shifted(&fixture("session.jsonl"), shift);
    let lines: Vec<&str> = good.lines().collect();
    let (head, tail) = lines.split_at(lines.len() / 2);
    let mut text = head.join("\n");
    text.push_str("\nthis is not json {\n[\"an array\"]\n");
    // 20 MB in one line, a prompt that would be a turn if it were read.
    text.push_str("{\"type\":\"user\",\"message\":{\"content\":\"");
    text.push_str(&"x".repeat(20 << 20));
    text.push_str("\"}}\n");
    text.push_str(&tail.join("\n"));
    text.push('\n');
    // The last line stops half way, as while Claude Code writes it.
    let half = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"half wri"#;
    text.push_str(half);
    write(&main, &text);
    c.post_events(&fixture_events(SESSION, &main, None, shift));

    let peak_before = peak_kib(c.pid());
    let a = conversation(&c, SESSION, "");
    assert_eq!(a.total, 8, "the fixture's turns, no more: {a:?}");
    assert_eq!(
        a.skipped_lines, 2,
        "the line that is not JSON and the array"
    );
    assert_eq!(a.oversized_lines, 1, "the 20 MB line");
    assert!(a.truncated, "the half line");
    assert_eq!(a.turns[7].text, "All steps done.");
    let peak_after = peak_kib(c.pid());
    if peak_before > 0 {
        assert!(
            peak_after.saturating_sub(peak_before) < 16 << 10,
            "the 20 MB line was not held: peak {peak_before} KiB → {peak_after} KiB"
        );
    }
    // Still serving.
    assert_eq!(c.get_json("/healthz")["status"], "ok");
}

#[test]
fn secrets_inside_a_transcript_are_redacted() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let c = user.collector(&home, &[]);
    let main = user.main_path("s-secret");
    let key = "sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm-AbCdEfGhIjKlMn";
    let gh = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    let ts = Timestamp::now().to_string();
    let lines = [
        json!({"type": "user", "timestamp": ts, "message": {"content": format!("use the key {key} please")}}),
        json!({"type": "assistant", "timestamp": ts, "message": {"content": [
            {"type": "text", "text": format!("Setting ANTHROPIC_API_KEY={key} now")},
            {"type": "tool_use", "id": "toolu_s1", "name": "Bash",
             "input": {"command": format!("curl -H 'Authorization: Bearer {gh}' https://api.github.com"),
                       "env": {"GITHUB_TOKEN": gh}}}
        ]}}),
        json!({"type": "user", "timestamp": ts, "message": {"content": [
            {"type": "tool_result", "tool_use_id": "toolu_s1",
             "content": [{"type": "text", "text": format!("token={gh}\nkey: {key}")}]}
        ]}}),
    ];
    write(
        &main,
        &lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    );
    c.post_events(&[hook(
        "s-secret",
        "UserPromptSubmit",
        Timestamp::from_unix_ms(Timestamp::now().unix_ms() - 1000),
        None,
        json!({"transcript_path": main.to_str().unwrap()}),
    )]);
    let (status, body) = get(&c, "s-secret", "");
    assert_eq!(status, 200, "{body}");
    for secret in [key, gh, "Zx9Qw8Er7Ty6", "0123456789abcdefghij"] {
        assert!(!body.contains(secret), "{secret} leaked: {body}");
    }
    let a: ConversationAnswer = serde_json::from_str(&body).unwrap();
    assert_eq!(a.total, 4);
    assert!(
        a.turns.iter().all(|t| t.text.contains("[REDACTED]")),
        "{a:?}"
    );
    assert!(
        a.turns[0].text.starts_with("use the key [REDACTED]"),
        "{a:?}"
    );
}

#[test]
fn paths_outside_the_allowed_roots_are_refused() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let shift = shift_ms();
    let c = user.collector(&home, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let outside_copy = elsewhere.path().join("copy.jsonl");
    write(&outside_copy, &shifted(&fixture("session.jsonl"), shift));
    let project = user.project();
    let link_out = project.join("link-out.jsonl");
    std::os::unix::fs::symlink(&outside_copy, &link_out).unwrap();
    let passwd_link = project.join("passwd.jsonl");
    std::os::unix::fs::symlink("/etc/passwd", &passwd_link).unwrap();
    let dir_link = project.join("dir-out");
    std::os::unix::fs::symlink(elsewhere.path(), &dir_link).unwrap();
    let fifo = project.join("fifo.jsonl");
    let cpath = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
    let open = project.join("group-writable.jsonl");
    write(&open, &shifted(&fixture("session.jsonl"), shift));
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o660)).unwrap();

    let claude = user.claude();
    let cases: Vec<(String, u16, &str)> = vec![
        ("/etc/passwd".into(), 403, "only under"),
        (outside_copy.display().to_string(), 403, "only under"),
        (
            format!("{}/../../../../etc/passwd", project.display()),
            403,
            "`..`",
        ),
        ("projects/-tmp-proj/x.jsonl".into(), 403, "absolute"),
        (link_out.display().to_string(), 403, "resolves to"),
        (
            passwd_link.display().to_string(),
            403,
            "resolves to /etc/passwd",
        ),
        (
            format!("{}/copy.jsonl", dir_link.display()),
            403,
            "resolves to",
        ),
        (fifo.display().to_string(), 403, "not a regular file"),
        (open.display().to_string(), 403, "writable by other users"),
        (claude.display().to_string(), 403, "outside"),
        (
            project.join("missing.jsonl").display().to_string(),
            404,
            "missing.jsonl",
        ),
    ];
    for (i, (path, status, says)) in cases.iter().enumerate() {
        let session = format!("s-refuse-{i}");
        c.post_events(&[hook(
            &session,
            "SessionStart",
            Timestamp::now(),
            None,
            json!({"transcript_path": path}),
        )]);
        let err = refused(&c, &session, "", *status);
        assert!(err.contains(says), "{path}: {err}");
        if *status == 403 && err.contains("only under") {
            assert!(
                err.contains(claude.to_str().unwrap()),
                "names the roots: {err}"
            );
        }
        assert!(!err.contains("root:x:0:0"), "{err}");
    }

    // A transcript another user owns (only root can make one here).
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let planted = project.join("planted.jsonl");
        write(&planted, &shifted(&fixture("session.jsonl"), shift));
        std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
        c.post_events(&[hook(
            "s-planted",
            "SessionStart",
            Timestamp::now(),
            None,
            json!({"transcript_path": planted.to_str().unwrap()}),
        )]);
        let err = refused(&c, "s-planted", "", 403);
        assert!(err.contains("uid 65534"), "{err}");
    } else {
        // Not root: an unreadable file is said as such.
        let locked = project.join("locked.jsonl");
        write(&locked, "{}\n");
        std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .unwrap();
        c.post_events(&[hook(
            "s-locked",
            "SessionStart",
            Timestamp::now(),
            None,
            json!({"transcript_path": locked.to_str().unwrap()}),
        )]);
        let err = refused(&c, "s-locked", "", 403);
        assert!(err.contains("cannot read"), "{err}");
    }
    assert_eq!(c.get_json("/healthz")["status"], "ok");
}

#[test]
fn unknown_sessions_and_sessions_without_a_transcript_are_404() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let c = user.collector(&home, &[]);
    let err = refused(&c, "no-such-session", "", 404);
    assert!(err.contains("no-such-session"), "{err}");
    c.post_events(&[hook(
        "s-bare",
        "SessionStart",
        Timestamp::now(),
        None,
        json!({}),
    )]);
    let err = refused(&c, "s-bare", "", 404);
    assert!(err.contains("transcript_path"), "{err}");
}

#[test]
fn a_root_given_on_the_command_line_is_allowed() {
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let extra = tempfile::tempdir().unwrap();
    let shift = shift_ms();
    let path = extra.path().join("elsewhere/s.jsonl");
    write(&path, &shifted(&fixture("session.jsonl"), shift));
    let event = |session: &str| {
        hook(
            session,
            "SessionStart",
            Timestamp::now(),
            None,
            json!({"transcript_path": path.to_str().unwrap()}),
        )
    };
    let c = user.collector(&home, &[]);
    c.post_events(&[event("s-extra")]);
    refused(&c, "s-extra", "", 403);
    drop(c);
    let claude = user.claude();
    let c = Collector::start_with_env(
        &home,
        &["--transcript-root", extra.path().to_str().unwrap()],
        &[
            ("HOME", user.home().to_str().unwrap()),
            ("CLAUDE_CONFIG_DIR", claude.to_str().unwrap()),
        ],
    );
    c.post_events(&[event("s-extra-2")]);
    assert_eq!(conversation(&c, "s-extra-2", "").total, 8);
}
