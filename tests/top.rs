//! `swarm-obs top` driven for real: under tmux, against a real collector (and
//! without one), with a real worker and the Claude Code fixtures replayed through
//! swarm-hook; keys are sent and the screen is read with `capture-pane`.

use std::process::{Command, Stdio};

use swarm_obs_suite::{
    ChildGuard, Collector, TestHome, Tmux, bin, example, fixtures_dir, have_programs,
    run_with_stdin,
};

/// The session replayed first: a tool call, then a subagent with its own tool call.
const SESSION: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PreToolUse.Agent_tool",
    "SubagentStart",
    "PreToolUse.inside_subagent",
    "PostToolUse.inside_subagent",
    "SubagentStop",
    "PostToolUse.Agent_tool",
];

fn replay(home: &TestHome, collector: Option<&str>, fixtures: &[&str]) {
    for name in fixtures {
        let payload = std::fs::read(fixtures_dir().join(format!("{name}.json"))).unwrap();
        let mut cmd = home.hook();
        cmd.env("SWARM_OBS_COLLECTOR", collector.unwrap_or("off"));
        let out = run_with_stdin(&mut cmd, payload);
        assert!(out.status.success(), "swarm-hook failed on {name}");
    }
}

fn worker(home: &TestHome, collector: Option<&str>) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(example("worker"))
            .args(["100000", "5", "300", "builder", "5000"])
            .env("SWARM_OBS_HOME", home.path())
            .env("SWARM_OBS_COLLECTOR", collector.unwrap_or("off"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// Claude Code's own telemetry for the replayed subagent session, as OTLP/JSON log
/// records: one model request's cost and tokens.
fn telemetry() -> String {
    let attr = |k: &str, v: &str| serde_json::json!({"key": k, "value": {"stringValue": v}});
    serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [attr("service.name", "claude-code")]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1767623535000000000",
            "body": {"stringValue": "claude_code.api_request"},
            "attributes": [
                attr("event.name", "api_request"),
                attr("session.id", "98717c42-e11c-4c39-bdff-7aa8cf672e85"),
                attr("model", "claude-sonnet-4"),
                attr("cost_usd", "1.25"),
                attr("duration_ms", "2100"),
                attr("input_tokens", "1200"),
                attr("output_tokens", "300"),
                attr("cache_read_tokens", "5000"),
                attr("cache_creation_tokens", "100"),
            ]
        }]}]
    }]})
    .to_string()
}

fn top(home: &TestHome, collector: &str) -> Tmux {
    Tmux::start_program(
        home,
        &bin("swarm-obs"),
        &[
            "top",
            "--home",
            home.path().to_str().expect("a UTF-8 temp path"),
            "--collector",
            collector,
        ],
        160,
        50,
    )
}

/// The rows of the event pane (between its top and bottom borders), trimmed.
fn event_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("┌ Events"))
        .skip(1)
        .take_while(|l| !l.starts_with('└'))
        .map(|l| l.trim_matches(['│', ' ']).to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen.lines().find(|l| l.contains(needle)).unwrap_or("")
}

#[test]
fn top_shows_workers_sessions_and_live_events_and_obeys_keys() {
    if !have_programs("top_shows_workers_sessions_and_live_events", Tmux::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    // A health probe of the collector's, against a real local HTTP server.
    let server = swarm_obs_suite::TestListener::start(swarm_obs_suite::ListenerMode::Answer(200));
    let probe = format!(
        "http:http://{}/health name=web interval_ms=200",
        server.addr()
    );
    let collector = Collector::start_with(&home, &["--probe", &probe]);
    let addr = collector.addr().to_owned();
    let _worker = worker(&home, Some(&addr));
    replay(&home, Some(&addr), SESSION);
    let (status, body) = collector.post("/v1/logs", "application/json", telemetry().as_bytes());
    assert_eq!(status, 200, "{body}");
    let tmux = top(&home, &addr);

    let screen = tmux.wait_for("workers, a session with its subagent, and events", |s| {
        line_with(s, "builder").contains("alive")
            && s.contains("⌁ web")
            && line_with(s, "⌁ web").contains("alive")
            && s.contains("general-purpose a801268")
            && s.contains("SubagentStart general-purpose")
            && s.contains("Analysing file")
    });
    assert!(screen.contains(&format!("collector {addr}")), "{screen}");
    assert!(screen.contains(" Workers "), "{screen}");
    assert!(screen.contains(" Claude sessions "), "{screen}");
    // The session that ran the subagent, with its main agent and the subagent, and
    // its cost and tokens from Claude Code's telemetry.
    let session = tmux.wait_for("the session's cost and tokens", |s| {
        s.contains("$1.25 · 6.6k tok")
    });
    assert!(session.contains("● 98717c4"), "{session}");
    assert!(screen.contains("├ ● main"), "{screen}");
    assert!(
        screen.contains("q  quit"),
        "the footer lists the keys: {screen}"
    );

    // Live: an event that happens now appears without any key.
    replay(&home, Some(&addr), &["Notification.permission_prompt"]);
    tmux.wait_for("the live permission prompt", |s| {
        s.contains("Claude needs your permission")
    });
    // The session that asked stands out, saying for how long it has waited.
    tmux.wait_for("the session waiting on a person", |s| {
        line_with(s, "● 6091dbd").contains("NEEDS PERMISSION for")
    });

    // Filter as you type: only the subagent's tool calls remain.
    tmux.send_keys(&["/"]);
    tmux.type_text("hello-from-subagent");
    let screen = tmux.wait_for("the filtered event pane", |s| {
        s.contains("┌ Events 2/") && event_rows(s).len() == 2
    });
    let rows = event_rows(&screen);
    assert!(
        rows.iter().all(|r| r.contains("hello-from-subagent")),
        "{rows:#?}"
    );
    assert!(rows[0].contains("PreToolUse Bash") && rows[1].contains("PostToolUse Bash"));
    assert!(screen.contains("filter: hello-from-subagent"), "{screen}");

    // Enter keeps the filter; Enter again opens the newest match in full.
    tmux.send_keys(&["Enter"]);
    tmux.wait_for("the filter kept", |s| s.contains("Enter  detail"));
    tmux.send_keys(&["Enter"]);
    let parts = [
        "Event detail",
        "\"hook\": \"PostToolUse\"",
        "\"agent_type\": \"general-purpose\"",
        "\"tool\": \"Bash\"",
        "\"payload\": {",
    ];
    tmux.wait_for("the detail view with the event as JSON", |s| {
        parts.iter().all(|p| s.contains(p))
    });

    // q quits from anywhere but the filter line, and the terminal is given back.
    tmux.send_keys(&["q"]);
    assert_eq!(tmux.wait_exit(), 0);
    let screen = tmux.screen();
    assert!(
        !screen.contains("Event detail") && !screen.contains("┌ Events"),
        "the alternate screen was left: {screen}"
    );
}

#[test]
fn top_reads_the_files_without_a_collector() {
    if !have_programs("top_reads_the_files_without_a_collector", Tmux::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let _worker = worker(&home, None);
    replay(&home, None, SESSION);
    let tmux = top(&home, "off");
    let screen = tmux.wait_for("workers, sessions and events from the files", |s| {
        line_with(s, "builder").contains("alive")
            && s.contains("general-purpose a801268")
            && s.contains("PostToolUse Bash: echo hello-from-fake")
    });
    assert!(screen.contains("files in"), "{screen}");
    // New lines in the event file appear live.
    replay(&home, None, &["Stop"]);
    tmux.wait_for("the live Stop", |s| s.contains("[DONE] [proj] Stop: done"));
    // A session's view needs a collector for its conversation, and says so.
    tmux.send_keys(&["Tab"]);
    tmux.send_keys(&["Enter"]);
    tmux.wait_for("the session view without a collector", |s| {
        s.contains("Conversation of main") && s.contains("by a running collector")
    });
    tmux.send_keys(&["Escape"]);
    tmux.wait_for("the dashboard again", |s| !s.contains("Conversation of"));
    tmux.send_keys(&["C-c"]);
    assert_eq!(tmux.wait_exit(), 0);
}

#[test]
fn top_refuses_a_pipe_with_a_clear_error() {
    let home = TestHome::new();
    let out = Command::new(bin("swarm-obs"))
        .args(["top", "--collector", "off", "--home"])
        .arg(home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("draws on a terminal") && err.contains("status --json"),
        "{err}"
    );
}

#[test]
fn top_gives_the_terminal_back_on_sigterm() {
    if !have_programs("top_gives_the_terminal_back_on_sigterm", Tmux::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let tmux = top(&home, "off");
    tmux.wait_for("the dashboard", |s| s.contains("┌ Events"));
    let pid = tmux.program_pid().expect("the pid of swarm-obs top");
    // SAFETY: signalling a process this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(tmux.wait_exit(), 0);
    let screen = tmux.screen();
    assert!(
        !screen.contains("┌ Events"),
        "the alternate screen was left: {screen}"
    );
}

/// Closing the terminal (a killed tmux session, a dropped SSH connection) ends
/// `top`: a terminal that is gone must not leave it spinning on reads that return
/// nothing, deaf to every signal.
#[test]
fn top_ends_when_its_terminal_goes_away() {
    if !have_programs("top_ends_when_its_terminal_goes_away", Tmux::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let tmux = top(&home, "off");
    tmux.wait_for("the dashboard", |s| s.contains("┌ Events"));
    let pid = tmux.program_pid().expect("the pid of swarm-obs top");
    tmux.run(&["kill-session", "-t", "t"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while swarm_obs_suite::process_exists(pid) {
        if std::time::Instant::now() > deadline {
            // SAFETY: killing the process this test started, so none is left.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("swarm-obs top (pid {pid}) outlived its terminal by 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A session's story: the real CLI's transcripts in a temporary Claude Code
/// directory read by a real collector, and the hook events of that run. Tab moves
/// to the sessions pane, ↓ picks the session, Enter shows its lanes and its
/// conversation; `a` shows the subagent's; Esc goes back. A session whose
/// transcript is missing shows the collector's 404.
#[test]
fn top_opens_a_session_with_its_lanes_and_conversation() {
    use swarm_obs_suite::transcripts::{self, ClaudeUser, SESSION, SUBAGENT};
    if !have_programs("top_opens_a_session", Tmux::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let shift = transcripts::shift_ms();
    user.install_fixtures(SESSION, shift);
    let collector = user.collector(&home, &[]);
    let (main, sub) = (user.main_path(SESSION), user.sub_path(SESSION, SUBAGENT));
    collector.post_events(&transcripts::fixture_events(
        SESSION,
        &main,
        Some(&sub),
        shift,
    ));
    // A newer session whose transcript is not there: listed first.
    let gone = "60e5e5e5-0000-4000-8000-000000000404";
    collector.post_events(&[transcripts::hook(
        gone,
        "SessionStart",
        swarm_obs::Timestamp::now(),
        None,
        serde_json::json!({"transcript_path": user.main_path(gone).to_str().unwrap()}),
    )]);
    let tmux = top(&home, collector.addr());
    tmux.wait_for("both sessions", |s| {
        s.contains("● dc66a00") && s.contains("● 60e5e5e")
    });

    tmux.send_keys(&["Tab"]);
    tmux.wait_for("the sessions pane focused", |s| {
        s.contains("Enter  open it") && s.contains("pick a session")
    });
    tmux.send_keys(&["Down"]);
    tmux.send_keys(&["Enter"]);
    // Everything drawn, footer included: a capture can land mid-redraw.
    let session_line = format!("Session {SESSION}");
    let whole = [
        session_line.as_str(),
        r#"{"command":"echo hello-from-bash","description":"Run a scripted command"}"#,
        "« All steps done.",
        "Conversation of main",
        "8 of 8 turns",
        "#0 user prompt",
        "#4 tool result Bash ERROR",
        "a  next agent",
        "Esc  back",
    ];
    let screen = tmux.wait_for("the session's lanes and conversation", |s| {
        whole.iter().all(|w| s.contains(w)) && s.contains("3 tool calls · 1 error")
    });
    let main_lane = line_with(&screen, "● main");
    assert!(
        main_lane.contains("ended") && main_lane.contains("3 tool calls · 1 error"),
        "{screen}"
    );
    let sub_lane = line_with(&screen, &format!("general-purpose {SUBAGENT}"));
    assert!(
        sub_lane.contains("ended") && sub_lane.contains("1 tool call · 0 errors"),
        "{screen}"
    );
    assert!(screen.contains("« All steps done."), "{screen}");
    assert!(screen.contains("Conversation of main"), "{screen}");
    assert!(screen.contains("8 of 8 turns"), "{screen}");
    assert!(screen.contains("#0 user prompt"), "{screen}");
    assert!(
        screen.contains("Follow this script, one tool call per line:"),
        "{screen}"
    );
    assert!(
        line_with(&screen, "#1 tool call Bash").contains("ago"),
        "{screen}"
    );
    assert!(
        screen.contains("#4 tool result Bash ERROR"),
        "the failing ls is marked: {screen}"
    );
    assert!(
        screen.contains("a  next agent") && screen.contains("Esc  back"),
        "{screen}"
    );

    // The subagent's conversation.
    tmux.send_keys(&["a"]);
    let screen = tmux.wait_for("the subagent's conversation", |s| {
        s.contains(&format!("Conversation of {SUBAGENT}"))
            && s.contains("4 of 4 turns")
            && s.contains("Esc  back")
    });
    assert!(
        screen.contains(
            r#"{"command":"echo hello-from-subagent","description":"Run a scripted command"}"#
        ),
        "{screen}"
    );

    // Esc returns to the dashboard, the sessions pane still focused.
    tmux.send_keys(&["Escape"]);
    // (The footer is part of the wait: a capture can land mid-redraw.)
    tmux.wait_for("the dashboard again, its footer naming Enter", |s| {
        !s.contains("Conversation of") && s.contains("┌ Events") && s.contains("Enter  open it")
    });

    // The other session: its transcript is missing, the collector says so.
    tmux.send_keys(&["Up"]);
    tmux.send_keys(&["Enter"]);
    // The whole message, not the first half of a redraw.
    tmux.wait_for("the 404 naming the missing transcript", |s| {
        s.contains("No conversation:") && s.contains("HTTP 404") && s.contains(gone)
    });
    tmux.send_keys(&["q"]);
    assert_eq!(tmux.wait_exit(), 0);
}
