//! Notifications through a real D-Bus session and a real notification server
//! (dunst on Xvfb): the Claude Code fixtures go through `swarm-hook`, and what dunst
//! shows — and what crossed the bus — is checked.

use std::process::Command;
use std::time::{Duration, Instant};

use swarm_obs_suite::{DesktopSession, TestHome, fixtures_dir, have_programs, run_with_stdin};

fn hook_in(desktop: &DesktopSession, home: &TestHome) -> Command {
    let mut c = home.hook();
    desktop.apply(&mut c);
    c
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

/// Waits (bounded) until dunst has shown at least `n` notifications.
fn wait_for(desktop: &DesktopSession, n: usize, limit: Duration) -> Vec<(String, String, String)> {
    let start = Instant::now();
    loop {
        let shown = desktop.shown();
        if shown.len() >= n || start.elapsed() > limit {
            return shown;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The hints of the `Notify` call whose summary is `summary`, as dbus-monitor printed it.
fn call_with_summary<'a>(log: &'a str, summary: &str) -> &'a str {
    let calls: Vec<&str> = log.split("method call").collect();
    calls
        .iter()
        .find(|c| c.contains(&format!("string \"{summary}\"")))
        .copied()
        .unwrap_or_else(|| panic!("no Notify call with summary {summary:?} in:\n{log}"))
}

#[test]
fn fixtures_raise_the_right_notifications() {
    if !have_programs(
        "fixtures_raise_the_right_notifications",
        DesktopSession::PROGRAMS,
    ) {
        return;
    }
    let desktop = DesktopSession::start();
    let home = TestHome::new();
    for name in [
        "Stop.json",
        "PostToolUseFailure.json",
        "PermissionRequest.json",
    ] {
        let out = run_with_stdin(&mut hook_in(&desktop, &home), fixture(name));
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let shown = wait_for(&desktop, 3, Duration::from_secs(15));
    let expect = [
        (
            "proj: done",
            "Stop: done",
            "swarm-obs.done",
            "complete",
            1u8,
        ),
        (
            "proj: error",
            "PostToolUseFailure Bash: ls ./no-such-subdir — Exit code 2",
            "swarm-obs.error",
            "dialog-error",
            2,
        ),
        (
            "proj needs you",
            "PermissionRequest Bash: touch perm-test.txt",
            "swarm-obs.attention",
            "message",
            2,
        ),
    ];
    assert_eq!(shown.len(), 3, "{shown:?}");
    let log = desktop.monitor_log();
    for (summary, body, category, sound, urgency) in expect {
        assert!(
            shown
                .iter()
                .any(|(s, b, c)| s == summary && b == body && c == category),
            "{summary:?} / {body:?} not shown; dunst has {shown:?}"
        );
        let call = call_with_summary(&log, summary);
        assert!(
            call.contains(&format!(
                "string \"sound-name\"\n         variant             string \"{sound}\""
            )),
            "{call}"
        );
        assert!(
            call.contains(&format!(
                "string \"urgency\"\n         variant             byte {urgency}"
            )),
            "{call}"
        );
    }
}

#[test]
fn quiet_events_raise_nothing_by_default() {
    if !have_programs(
        "quiet_events_raise_nothing_by_default",
        DesktopSession::PROGRAMS,
    ) {
        return;
    }
    let desktop = DesktopSession::start();
    let home = TestHome::new();
    let mut again: serde_json::Value = serde_json::from_slice(&fixture("Stop.json")).unwrap();
    again["stop_hook_active"] = true.into();
    for input in [
        serde_json::to_vec(&again).unwrap(),
        fixture("SubagentStop.json"),
        fixture("PreToolUse.json"),
    ] {
        let out = run_with_stdin(&mut hook_in(&desktop, &home), input);
        assert_eq!(out.status.code(), Some(0));
    }
    // A marker after them: once it is shown, anything they had raised would be too.
    let out = run_with_stdin(
        &mut hook_in(&desktop, &home),
        fixture("PermissionRequest.json"),
    );
    assert_eq!(out.status.code(), Some(0));
    let shown = wait_for(&desktop, 1, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let shown_later = desktop.shown();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown_later.len(), 1, "{shown_later:?}");
    assert_eq!(shown[0].0, "proj needs you");
}

#[test]
fn ten_stops_in_a_second_make_one_notification_and_a_summary() {
    if !have_programs(
        "ten_stops_in_a_second_make_one_notification_and_a_summary",
        DesktopSession::PROGRAMS,
    ) {
        return;
    }
    let desktop = DesktopSession::start();
    let home = TestHome::new();
    std::fs::write(
        home.path().join("config.toml"),
        "[notify]\ndebounce_ms = 1500\nrate_window_ms = 2000\n",
    )
    .unwrap();
    let started = Instant::now();
    for _ in 0..10 {
        let out = run_with_stdin(&mut hook_in(&desktop, &home), fixture("Stop.json"));
        assert_eq!(out.status.code(), Some(0));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "10 hooks took {:?}",
        started.elapsed()
    );
    let shown = wait_for(&desktop, 2, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let shown = if shown.len() >= 2 {
        desktop.shown()
    } else {
        shown
    };
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert_eq!(shown[0].0, "proj: done");
    assert_eq!(shown[1].0, "swarm-obs: 9 more notifications");
    assert_eq!(shown[1].1, "9 done from proj");
}
