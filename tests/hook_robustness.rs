//! `swarm-hook` under bad input, stdin that never closes, broken disks and many
//! concurrent writers: it always exits 0, never writes to stdout, and records what
//! happened.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use swarm_obs::{Kind, Timestamp};
use swarm_obs_suite::{TestHome, fixtures_dir, run_with_stdin};

fn assert_quiet_success(out: &std::process::Output, what: &str) {
    assert_eq!(out.status.code(), Some(0), "{what}: exit code");
    assert!(
        out.stdout.is_empty(),
        "{what}: stdout must stay empty, got {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bad_input_becomes_an_error_event_and_exit_0() {
    let mut fifty_mb = b"{\"hook_event_name\":\"PostToolUse\",\"tool_response\":\"".to_vec();
    fifty_mb.extend(std::iter::repeat_n(b'x', 50 << 20));
    let stop = std::fs::read(fixtures_dir().join("Stop.json")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not json", b"hello world\n".to_vec(), "not a JSON object"),
        ("empty", Vec::new(), "input is empty"),
        ("whitespace", b"  \n\n".to_vec(), "input is empty"),
        (
            "binary",
            (0..=255u8).cycle().take(10_000).collect(),
            "not a JSON object",
        ),
        ("50 MB", fifty_mb, "cap"),
        ("truncated", stop[..stop.len() / 2].to_vec(), "truncated"),
        ("array", b"[1,2,3]".to_vec(), "not a JSON object"),
        ("broken object", b"{\"a\": nope}".to_vec(), "not valid JSON"),
        (
            "invalid utf-8 in strings",
            b"{\"a\": \"\xff\xfe\"}".to_vec(),
            "not valid JSON",
        ),
    ];
    for (what, input, reason) in cases {
        let home = TestHome::new();
        // A generous input deadline, so a loaded machine still reaches the size cap.
        std::fs::write(
            home.path().join("config.toml"),
            "[hook]\nstdin_timeout_ms = 10000\n",
        )
        .unwrap();
        let out = run_with_stdin(&mut home.hook(), input);
        assert_quiet_success(&out, what);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.lines().count(),
            1,
            "{what}: one stderr line, got {stderr:?}"
        );
        assert!(
            stderr.contains("invalid hook input") && stderr.contains(reason),
            "{what}: {stderr}"
        );
        let events = home.events();
        assert_eq!(events.len(), 1, "{what}");
        assert_eq!(events[0].kind, Kind::Error, "{what}");
        assert!(events[0].msg.contains(reason), "{what}: {}", events[0].msg);
        // The error event itself stays small whatever came in.
        assert!(events[0].to_json_line().len() < 4096, "{what}");
    }
}

fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn stdin_that_never_closes_does_not_hold_the_hook() {
    let home = TestHome::new();
    // A complete object, stdin left open: the hook finishes as soon as it has read it.
    let mut child = home
        .hook()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&std::fs::read(fixtures_dir().join("PreToolUse.json")).unwrap())
        .unwrap();
    let status = wait_with_limit(&mut child, Duration::from_secs(1));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "hook did not return within 1 s with stdin open"
    );
    drop(stdin);
    assert_eq!(home.events().len(), 1);
    assert_eq!(home.events()[0].hook.as_deref(), Some("PreToolUse"));

    // Nothing at all, stdin left open: the input deadline (set to 300 ms) ends the wait.
    let home = TestHome::new();
    std::fs::write(
        home.path().join("config.toml"),
        "[hook]\nstdin_timeout_ms = 300\n",
    )
    .unwrap();
    let mut child = home
        .hook()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let status = wait_with_limit(&mut child, Duration::from_secs(1));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "hook did not give up on silent stdin within 1 s"
    );
    drop(stdin);
    let events = home.events();
    assert_eq!(events.len(), 1);
    assert!(
        events[0].msg.contains("no input within"),
        "{}",
        events[0].msg
    );
}

#[test]
fn an_unwritable_state_root_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let mut cmd = Command::new(swarm_obs_suite::bin("swarm-hook"));
    cmd.env("SWARM_OBS_HOME", file.join("state"))
        .env_remove("SWARM_OBS_COLLECTOR");
    let out = run_with_stdin(
        &mut cmd,
        std::fs::read(fixtures_dir().join("Stop.json")).unwrap(),
    );
    assert_quiet_success(&out, "unwritable");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("event not recorded") && stderr.contains("a-file"),
        "{stderr}"
    );
}

/// A link planted where today's event file goes (here to /dev/full) is refused,
/// not written through, and the hook still exits 0 saying why.
#[cfg(target_os = "linux")]
#[test]
fn a_planted_event_file_link_is_refused_not_fatal() {
    let home = TestHome::new();
    let events = home.path().join("events");
    std::fs::create_dir_all(&events).unwrap();
    let now = Timestamp::now().unix_ms();
    for day in [now, now + 86_400_000] {
        let name = format!("{}.jsonl", Timestamp::from_unix_ms(day).day());
        std::os::unix::fs::symlink("/dev/full", events.join(name)).unwrap();
    }
    let out = run_with_stdin(
        &mut home.hook(),
        std::fs::read(fixtures_dir().join("Stop.json")).unwrap(),
    );
    assert_quiet_success(&out, "planted link");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("event not recorded") && stderr.contains("symbolic links"),
        "{stderr}"
    );
}

/// A real full file system (a 64 KiB tmpfs, filled): the append fails with
/// ENOSPC, and the hook says so and exits 0.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_reported_not_fatal() {
    let test = "a_full_disk_is_reported_not_fatal";
    let home = TestHome::new();
    let disk = home.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&disk)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        swarm_obs_suite::skip_or_fail(&format!(
            "{test}: SKIPPED — cannot mount a tmpfs (needs root)"
        ));
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.clone());
    std::fs::create_dir(disk.join("events")).unwrap();
    // Fill it: the write stops at ENOSPC.
    let filler = vec![b'x'; 4096];
    let mut f = std::fs::File::create(disk.join("filler")).unwrap();
    while std::io::Write::write_all(&mut f, &filler).is_ok() {}
    drop(f);
    let mut cmd = Command::new(swarm_obs_suite::bin("swarm-hook"));
    cmd.env("SWARM_OBS_HOME", &disk)
        .env_remove("SWARM_OBS_COLLECTOR");
    let out = run_with_stdin(
        &mut cmd,
        std::fs::read(fixtures_dir().join("Stop.json")).unwrap(),
    );
    assert_quiet_success(&out, "full disk");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("event not recorded") && stderr.contains("No space left"),
        "{stderr}"
    );
}

#[test]
fn sixty_four_concurrent_hooks_lose_and_tear_nothing() {
    const PROCS: usize = 64;
    const EACH: usize = 100;
    let home = TestHome::new();
    // This test is about concurrent appends; a loaded machine must not turn a
    // starved stdin writer into an input-deadline error.
    std::fs::write(
        home.path().join("config.toml"),
        "[hook]\nstdin_timeout_ms = 10000\n",
    )
    .unwrap();
    let hook = swarm_obs_suite::bin("swarm-hook");
    std::thread::scope(|s| {
        for p in 0..PROCS {
            let (home, hook) = (&home, &hook);
            s.spawn(move || {
                for i in 0..EACH {
                    // Every tenth line is far over PIPE_BUF, to exercise the locked path.
                    let filler = if i % 10 == 0 { "y".repeat(3000) } else { String::new() };
                    let input = serde_json::json!({
                        "session_id": format!("s{p}"), "cwd": "/w/proj", "hook_event_name": "PreToolUse",
                        "tool_name": "Bash", "tool_use_id": format!("{p}-{i}"),
                        "tool_input": {"command": format!("echo {p} {i}"), "a": filler, "b": filler, "c": filler},
                    });
                    let mut cmd = Command::new(hook);
                    cmd.env("SWARM_OBS_HOME", home.path()).env_remove("SWARM_OBS_COLLECTOR");
                    let out = run_with_stdin(&mut cmd, serde_json::to_vec(&input).unwrap());
                    assert_eq!(out.status.code(), Some(0));
                }
            });
        }
    });
    let lines = home.event_lines();
    assert_eq!(lines.len(), PROCS * EACH, "lines lost or split");
    let mut ids = HashSet::new();
    let mut uses = HashSet::new();
    let mut long = 0;
    for line in &lines {
        let ev = swarm_obs::Event::from_json(line)
            .unwrap_or_else(|e| panic!("torn line: {e}: {line:.200}"));
        assert!(ids.insert(ev.id), "duplicate id {}", ev.id);
        assert!(
            uses.insert(ev.tool_use_id.clone().unwrap()),
            "duplicate event"
        );
        long += usize::from(line.len() > 4096);
    }
    assert_eq!(uses.len(), PROCS * EACH);
    assert!(long >= PROCS * EACH / 10, "only {long} long lines");
}

/// Claude Code may end the hook's whole process group once the hook returns; the
/// notification it handed off must still be delivered.
#[test]
fn notification_delivery_survives_the_hooks_group_being_killed() {
    let home = TestHome::new();
    let shown = home.path().join("shown.txt");
    let config = format!(
        "[notify]\nbackend = \"command\"\ncommand = '''sleep 0.5; printf '%s\\n' \"$SWARM_KIND\" >> {}'''\n",
        shown.display()
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let stop = std::fs::read(fixtures_dir().join("Stop.json")).unwrap();
    let mut cmd = home.hook();
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let group = child.id() as i32;
    child.stdin.take().unwrap().write_all(&stop).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_quiet_success(&out, "Stop with a command backend");
    // SAFETY: kill(2) with a negative pid signals the group the hook led.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&shown).unwrap_or_default() != "done\n" {
        assert!(
            Instant::now() < deadline,
            "the notification was lost with the hook's group: {:?}",
            std::fs::read_to_string(&shown)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// With `auto` notifications and no desktop session to show them in (SSH, CI), the
/// hook neither touches the shared gate nor starts a delivery process.
#[test]
fn no_desktop_session_means_no_notification_work() {
    let home = TestHome::new();
    let runtime = tempfile::tempdir().unwrap();
    let stop = std::fs::read(fixtures_dir().join("Stop.json")).unwrap();
    let mut cmd = home.hook();
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", runtime.path());
    let out = run_with_stdin(&mut cmd, stop.clone());
    assert_quiet_success(&out, "Stop with no desktop session");
    let gate = home.path().join("notify-state.json");
    assert!(
        !gate.exists(),
        "the gate was updated though nothing can show a notification"
    );
    // The same Stop with a backend that can show it does go through the gate.
    std::fs::write(
        home.path().join("config.toml"),
        "[notify]\nbackend = \"command\"\ncommand = \"true\"\n",
    )
    .unwrap();
    let mut cmd = home.hook();
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", runtime.path());
    let out = run_with_stdin(&mut cmd, stop.clone());
    assert_quiet_success(&out, "Stop with a command backend");
    assert!(gate.exists(), "a notification that can be shown is gated");
}

/// A person typing `swarm-hook --help` or `--version` gets the answer at once, with
/// stdin left open (as a terminal leaves it), and nothing is recorded.
#[test]
fn help_and_version_answer_at_once_and_record_nothing() {
    for arg in ["--help", "-h", "--version", "-V"] {
        let home = TestHome::new();
        let mut child = home
            .hook()
            .arg(arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn swarm-hook");
        // stdin stays open: the hook must not wait for it.
        let stdin = child.stdin.take();
        let status = wait_with_limit(&mut child, Duration::from_secs(10));
        drop(stdin);
        let out = child.wait_with_output().expect("swarm-hook output");
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{arg}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("swarm-hook "), "{arg}: {text:?}");
        if arg.contains('h') {
            assert!(text.contains("swarm-obs hooks install"), "{arg}: {text}");
        }
        assert!(out.stderr.is_empty(), "{arg}: {:?}", out.stderr);
        assert!(home.events().is_empty(), "{arg} recorded an event");
    }
}
