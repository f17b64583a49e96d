//! Live session state in a real collector: a Claude Code session whose `claude`
//! process is killed turns `dead` (with an error alert, and `status` exits 1); one
//! that ends with SessionEnd is `ended` (`status` exits 0); a pid that now belongs
//! to a younger process does not keep a session alive. The `claude` process here is
//! a real `sleep`, killed with SIGKILL.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarm_obs::{Event, Kind, LocalProcesses, ProcessStatus, ProcessTable, Timestamp};
use swarm_obs_suite::{ChildGuard, Collector, TestHome, Tmux, have_programs};

fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen.lines().find(|l| l.contains(needle)).unwrap_or("")
}

/// A real process standing in for `claude`, and when it started.
fn claude_process() -> (Child, Timestamp) {
    let child = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .expect("start sleep");
    let started = match LocalProcesses.status(child.id()) {
        ProcessStatus::Running {
            started_at: Some(t),
        } => t,
        other => panic!("cannot read the start time of the stand-in process: {other:?}"),
    };
    (child, started)
}

/// A hook event of `session` run by the process `pid` that started at `started`.
fn hook(session: &str, name: &str, pid: u32, started: Timestamp, extra: Value) -> Event {
    let mut ev = Event::new("proj", Kind::Hook, name);
    ev.session = Some(session.into());
    ev.hook = Some(name.into());
    ev.tool = extra["tool_name"].as_str().map(str::to_owned);
    ev.claude_pid = Some(pid);
    ev.claude_started_at = Some(started);
    let mut payload = json!({"hook_event_name": name, "session_id": session});
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    ev.payload = Some(payload);
    ev
}

fn session(c: &Collector, id: &str) -> Value {
    let all = c.get_json("/v1/sessions");
    all["sessions"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["session"] == id).cloned())
        .unwrap_or_else(|| panic!("session {id} not in /v1/sessions: {all}"))
}

/// Waits (bounded) until the session reaches `state`; the time it took.
fn wait_for_state(c: &Collector, id: &str, state: &str) -> Duration {
    let t = Instant::now();
    loop {
        let s = session(c, id);
        if s["state"] == state {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "session {id} did not become {state}: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(home: &TestHome) -> (i32, String) {
    let out = home
        .swarm_obs()
        .args(["status", "--color", "never"])
        .output()
        .expect("run swarm-obs status");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_killed_claude_process_makes_its_session_dead() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let (mut claude, started) = claude_process();
    let pid = claude.id();
    c.post_events(&[
        hook(
            "s-dead",
            "UserPromptSubmit",
            pid,
            started,
            json!({"prompt": "build it"}),
        ),
        hook(
            "s-dead",
            "PreToolUse",
            pid,
            started,
            json!({"tool_name": "Bash"}),
        ),
    ]);
    let s = session(&c, "s-dead");
    assert_eq!(s["state"], "working", "{s}");
    assert_eq!(s["tool"], "Bash", "{s}");
    assert_eq!(s["prompt"], "build it", "{s}");
    assert_eq!(s["claude_pid"], pid, "{s}");
    let (code, out) = status(&home);
    assert_eq!(code, 0, "a working session is fine: {out}");
    assert!(
        out.contains("working") && out.contains("tool Bash"),
        "{out}"
    );

    claude.kill().expect("SIGKILL the stand-in claude");
    claude.wait().expect("reap it");
    let took = wait_for_state(&c, "s-dead", "dead");
    assert!(took < Duration::from_secs(5), "dead after {took:?}");
    let s = session(&c, "s-dead");
    assert!(
        s["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["state"] == "dead"),
        "its agents die with it: {s}"
    );
    let alerts = c.get_json("/v1/events?kind=alert&session=s-dead");
    let alert = &alerts["events"][0];
    assert_eq!(alert["level"], "error", "{alerts}");
    assert!(
        alert["msg"]
            .as_str()
            .unwrap()
            .contains("without SessionEnd"),
        "{alerts}"
    );
    let (code, out) = status(&home);
    assert_eq!(code, 1, "a dead session fails status: {out}");
    assert!(out.contains("dead"), "{out}");

    // A late event of the dead process (caught up from its log) does not revive it.
    c.post_events(&[hook(
        "s-dead",
        "PostToolUse",
        pid,
        started,
        json!({"tool_name": "Bash"}),
    )]);
    assert_eq!(session(&c, "s-dead")["state"], "dead");
    // A resumed session (a new claude process, same id) lives again.
    let (mut resumed, resumed_at) = claude_process();
    c.post_events(&[hook(
        "s-dead",
        "UserPromptSubmit",
        resumed.id(),
        resumed_at,
        json!({}),
    )]);
    assert_eq!(session(&c, "s-dead")["state"], "working");
    resumed.kill().expect("stop the resumed stand-in");
    let _ = resumed.wait();
    wait_for_state(&c, "s-dead", "dead");
}

#[test]
fn a_clean_session_end_is_ended_and_status_is_fine() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let (mut claude, started) = claude_process();
    let pid = claude.id();
    c.post_events(&[
        hook("s-end", "SessionStart", pid, started, json!({})),
        hook(
            "s-end",
            "UserPromptSubmit",
            pid,
            started,
            json!({"prompt": "hi"}),
        ),
        hook(
            "s-end",
            "Stop",
            pid,
            started,
            json!({"last_assistant_message": "all done: 3 files changed\nmore"}),
        ),
    ]);
    let s = session(&c, "s-end");
    assert_eq!(s["state"], "waiting");
    // What the agent answered is kept with its state and shown while it waits.
    assert_eq!(
        s["agents"][0]["last_message"], "all done: 3 files changed",
        "{s}"
    );
    let (_, out) = status(&home);
    assert!(out.contains("replied: all done: 3 files changed"), "{out}");
    c.post_events(&[hook(
        "s-end",
        "SessionEnd",
        pid,
        started,
        json!({"reason": "logout"}),
    )]);
    let s = session(&c, "s-end");
    assert_eq!(s["state"], "ended", "{s}");
    assert_eq!(s["reason"], "logout", "{s}");
    // Its process going now is no news: the session ended cleanly.
    claude.kill().expect("stop the stand-in");
    claude.wait().expect("reap it");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(session(&c, "s-end")["state"], "ended");
    let (code, out) = status(&home);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ended") && out.contains("logout"), "{out}");
    let alerts = c.get_json("/v1/events?kind=alert");
    assert_eq!(alerts["events"].as_array().unwrap().len(), 0, "{alerts}");
}

#[test]
fn a_reused_pid_does_not_keep_a_session_alive() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    // The hook saw a claude process that started an hour before the one that now
    // holds the pid: the pid was reused, so the session's process is gone.
    let (mut younger, started) = claude_process();
    let earlier = Timestamp::from_unix_ms(started.unix_ms() - 3_600_000);
    c.post_events(&[hook(
        "s-reused",
        "UserPromptSubmit",
        younger.id(),
        earlier,
        json!({}),
    )]);
    wait_for_state(&c, "s-reused", "dead");
    younger.kill().expect("stop the stand-in");
    let _ = younger.wait();
}

#[test]
fn state_changes_are_pushed_to_live_viewers() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let stream = swarm_obs_suite::SseStream::open(c.addr(), "/v1/stream?n=0&states=1", &[]);
    // A viewer whose timeline is narrowed to another source still gets every
    // session's state (its sessions panel lists them all).
    let narrowed = swarm_obs_suite::SseStream::open(
        c.addr(),
        "/v1/stream?n=0&states=1&source=another-project",
        &[],
    );
    let (mut claude, started) = claude_process();
    let pid = claude.id();
    c.post_events(&[hook(
        "s-live",
        "PermissionRequest",
        pid,
        started,
        json!({"tool_name": "Bash"}),
    )]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let pushed = loop {
        let msg = stream
            .next(Duration::from_secs(10))
            .expect("a message on the stream");
        if msg.event.as_deref() == Some("session") {
            break msg;
        }
        assert!(Instant::now() < deadline, "no session message");
    };
    assert_eq!(
        pushed.id, None,
        "a state message does not move the resume point"
    );
    let s: Value = serde_json::from_str(&pushed.data).unwrap();
    assert_eq!(s["session"], "s-live");
    assert_eq!(s["state"], "needs_permission");
    assert_eq!(s["tool"], "Bash");
    let other = narrowed
        .next_event(Duration::from_secs(10))
        .expect("a message on the narrowed stream");
    assert_eq!(other.event.as_deref(), Some("session"), "{}", other.data);
    // A viewer that did not ask for states gets none.
    let plain = swarm_obs_suite::SseStream::open(c.addr(), "/v1/stream?n=0", &[]);
    c.post_events(&[hook(
        "s-live",
        "PostToolUse",
        pid,
        started,
        json!({"tool_name": "Bash"}),
    )]);
    let first = plain
        .next_event(Duration::from_secs(10))
        .expect("the event");
    assert_ne!(first.event.as_deref(), Some("session"));
    claude.kill().expect("stop the stand-in");
    let _ = claude.wait();
}

/// A stand-in `claude` (tests/programs/stand_in_claude.py) that runs the real
/// `swarm-hook` through `sh -c` with the named fixture payloads under `session`,
/// and then waits; returned once every hook has run.
fn stand_in_claude(home: &TestHome, session: &str, fixtures: &[&str]) -> Option<ChildGuard> {
    if !have_programs("stand-in claude", &["python3", "sh"]) {
        return None;
    }
    let script = swarm_obs_suite::workspace_root().join("tests/programs/stand_in_claude.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(swarm_obs_suite::bin("swarm-hook"))
        .arg(session)
        .args(
            fixtures
                .iter()
                .map(|f| swarm_obs_suite::fixtures_dir().join(f)),
        )
        .env("SWARM_OBS_HOME", home.path())
        .env_remove("SWARM_OBS_COLLECTOR")
        .env_remove("SWARM_OBS_SOURCE")
        .env_remove("SWARM_OBS_TOKEN")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut claude = ChildGuard::spawn(&mut cmd);
    let mut line = String::new();
    let out = claude.child().stdout.take().expect("its stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)
        .expect("read the stand-in's answer");
    assert_eq!(line.trim(), "ready", "the stand-in claude said {line:?}");
    Some(claude)
}

#[test]
fn the_real_hook_under_a_killed_claude_process_reports_it_dead() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let id = "stand-in-killed";
    let Some(mut claude) = stand_in_claude(
        &home,
        id,
        &[
            "SessionStart.json",
            "UserPromptSubmit.json",
            "PreToolUse.json",
        ],
    ) else {
        return;
    };
    let s = c.session_when(id, |s| s["state"] == "working");
    assert_eq!(
        s["claude_pid"],
        claude.id(),
        "the hook found its claude: {s}"
    );
    assert_eq!(s["tool"], "Bash", "{s}");
    let (code, out) = status(&home);
    assert_eq!(code, 0, "{out}");
    // `top` shows the session working, then dead, from states the collector pushes.
    let top = have_programs("top beside the killed claude", Tmux::PROGRAMS).then(|| {
        let tmux = Tmux::start_program(
            &home,
            &swarm_obs_suite::bin("swarm-obs"),
            &[
                "top",
                "--home",
                home.path().to_str().expect("a UTF-8 temp path"),
                "--collector",
                c.addr(),
            ],
            160,
            40,
        );
        tmux.wait_for("the session working in top", |s| {
            line_with(s, "● stand-i").contains("working Bash")
        });
        tmux
    });

    claude.kill();
    let took = wait_for_state(&c, id, "dead");
    assert!(took < Duration::from_secs(5), "dead after {took:?}");
    if let Some(tmux) = top {
        tmux.wait_for("the session dead in top", |s| {
            line_with(s, "● stand-i").contains("dead")
        });
        tmux.send_keys(&["q"]);
        assert_eq!(tmux.wait_exit(), 0);
    }
    let alerts = c.get_json(&format!("/v1/events?kind=alert&session={id}"));
    assert_eq!(alerts["events"][0]["level"], "error", "{alerts}");
    let (code, out) = status(&home);
    assert_eq!(code, 1, "a dead session fails status: {out}");
}

#[test]
fn the_real_hook_under_a_claude_that_ended_cleanly_reports_it_ended() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let id = "stand-in-ended";
    let Some(mut claude) = stand_in_claude(
        &home,
        id,
        &[
            "SessionStart.json",
            "UserPromptSubmit.json",
            "Stop.json",
            "SessionEnd.json",
        ],
    ) else {
        return;
    };
    let s = c.session_when(id, |s| s["state"] == "ended");
    assert_eq!(s["claude_pid"], claude.id(), "{s}");
    claude.kill();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(session(&c, id)["state"], "ended");
    let (code, out) = status(&home);
    assert_eq!(code, 0, "{out}");
}
