//! `swarm-obs run` with real child processes: events from a script's output and exit,
//! signals passed on to the child, and a hung child seen late, then down, by a real
//! collector.

use std::process::Stdio;

use swarm_obs::{Heartbeat, HeartbeatState, Kind, Level, StateRoot};
use swarm_obs_suite::{ChildGuard, Collector, TestHome, Tmux, bin, have_programs};

#[test]
fn a_script_that_exits_3_yields_start_lines_and_an_error_with_duration() {
    let home = TestHome::new();
    // Notifications through the command backend, into a file this test reads.
    let notified = home.path().join("notified");
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[notify]\nbackend = \"command\"\ncommand = \"echo $SWARM_KIND >> '{}'\"\n",
            notified.display()
        ),
    )
    .unwrap();
    let out = home
        .swarm_obs()
        .args(["run", "--source", "job", "--task", "nightly"])
        .args(["--progress-regex", r"(\d+)/(\d+)", "--"])
        .args([
            "sh",
            "-c",
            "echo first line; echo 'level=warn disk at 91%' >&2; echo step 3/5; \
             echo '{\"level\":\"debug\",\"msg\":\"json says hi\"}'; sleep 0.2; exit 3",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // The output is still shown.
    assert!(String::from_utf8_lossy(&out.stdout).contains("first line"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("disk at 91%"));

    let events = home.events();
    let lines: Vec<String> = events.iter().map(|e| e.human_line(0)).collect();
    assert_eq!(events[0].kind, Kind::Start, "{lines:#?}");
    assert_eq!(events[0].task.as_deref(), Some("nightly"));
    let child_pid = events[0].fields["child_pid"].as_u64().unwrap();
    let find = |msg: &str| {
        events
            .iter()
            .find(|e| e.msg == msg)
            .unwrap_or_else(|| panic!("no event {msg:?} in {lines:#?}"))
    };
    let first = find("first line");
    assert_eq!((first.kind, first.level), (Kind::Log, Level::Info));
    assert_eq!(first.fields["stream"], "stdout");
    assert_eq!(first.pid, Some(child_pid as u32));
    let warn = find("level=warn disk at 91%");
    assert_eq!(
        (warn.level, warn.fields["stream"].as_str()),
        (Level::Warn, Some("stderr"))
    );
    let step = find("step 3/5");
    assert_eq!(step.kind, Kind::Progress);
    assert_eq!(step.progress.map(|p| (p.done, p.total)), Some((3, 5)));
    assert_eq!(find("json says hi").level, Level::Debug);

    let last = events.last().unwrap();
    assert_eq!(
        (last.kind, last.level),
        (Kind::Error, Level::Error),
        "{lines:#?}"
    );
    assert_eq!(last.fields["exit_code"], 3);
    assert!(last.duration_ms.is_some_and(|d| d >= 200), "{last:?}");
    assert!(last.msg.contains("exit code 3"), "{}", last.msg);

    let hb = Heartbeat::read(&StateRoot::new(home.path()).heartbeat_file("job")).unwrap();
    assert_eq!(
        (hb.state, hb.pid, hb.exit_code),
        (HeartbeatState::Failed, child_pid as u32, Some(3))
    );
    assert_eq!(hb.progress.map(|p| (p.done, p.total)), Some((3, 5)));

    // Start and error went through the sound rules to the command backend.
    let mut kinds = String::new();
    for _ in 0..3000 {
        kinds = std::fs::read_to_string(&notified).unwrap_or_default();
        if kinds.lines().any(|k| k == "error") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(kinds.lines().any(|k| k == "start"), "{kinds:?}");
    assert!(kinds.lines().any(|k| k == "error"), "{kinds:?}");
}

#[test]
fn done_on_exit_0_and_127_for_a_command_that_cannot_start() {
    let home = TestHome::new();
    let status = home
        .swarm_obs()
        .args(["run", "--source", "ok", "--no-echo", "--", "true"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let last = home.events().pop().unwrap();
    assert_eq!(
        (last.kind, last.fields["exit_code"].as_i64()),
        (Kind::Done, Some(0))
    );

    let out = home
        .swarm_obs()
        .args(["run", "--source", "missing", "--", "/nonexistent/prog"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start /nonexistent/prog"));
    let ev = home.wait_for_event("error for the missing program", |e| {
        e.source == "missing" && e.kind == Kind::Error
    });
    assert!(ev.msg.contains("cannot start"), "{}", ev.msg);

    // Bad arguments are refused before anything runs.
    let out = home
        .swarm_obs()
        .args([
            "run",
            "--source",
            "x",
            "--progress-regex",
            "(",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --progress-regex"));
}

#[test]
fn sigterm_to_run_reaches_the_child() {
    let home = TestHome::new();
    let mut run = ChildGuard::spawn(
        home.swarm_obs()
            .args(["run", "--source", "trap", "--no-echo", "--"])
            .args([
                "sh",
                "-c",
                "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done",
            ])
            .stdin(Stdio::null()),
    );
    home.wait_for_event("ready", |e| e.msg == "ready");
    run.signal(libc::SIGTERM);
    let status = run.wait();
    assert_eq!(status.code(), Some(7), "run exits with the child's code");
    let events = home.events();
    let lines: Vec<String> = events.iter().map(|e| e.human_line(0)).collect();
    assert!(events.iter().any(|e| e.msg == "got TERM"), "{lines:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.msg.starts_with("passed SIGTERM on to pid")),
        "{lines:#?}"
    );
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind, last.fields["exit_code"].as_i64()),
        (Kind::Error, Some(7))
    );
}

#[test]
fn a_child_killed_by_a_signal_makes_run_exit_128_plus_n() {
    let home = TestHome::new();
    let status = home
        .swarm_obs()
        .args(["run", "--source", "k", "--", "sh", "-c", "kill -KILL $$"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(128 + 9));
    let last = home.events().pop().unwrap();
    assert_eq!(
        (last.kind, last.fields["signal"].as_i64()),
        (Kind::Error, Some(9))
    );
    assert!(last.msg.contains("SIGKILL"), "{}", last.msg);
}

#[test]
fn a_hung_child_shows_late_then_down_and_recovers_when_output_resumes() {
    let home = TestHome::new();
    let _collector = Collector::start_with(&home, &["--heartbeat-grace-ms", "1000"]);
    // Output, then silence while the process lives on; output again (until told to
    // finish) once the test has seen the worker down.
    let go_on = home.path().join("go-on");
    let finish = home.path().join("finish");
    let script = format!(
        "echo begin; while [ ! -e '{}' ]; do sleep 0.05; done; \
         while [ ! -e '{}' ]; do echo tick; sleep 0.05; done",
        go_on.display(),
        finish.display()
    );
    let mut run = ChildGuard::spawn(
        home.swarm_obs()
            .args(["run", "--source", "hang", "--no-echo"])
            .args(["--interval", "300ms", "--quiet-after", "300ms", "--"])
            .args(["sh", "-c", &script])
            .stdin(Stdio::null()),
    );
    let alert = |state: &'static str| {
        move |e: &swarm_obs::Event| {
            e.kind == Kind::Alert && e.source == "hang" && e.fields["state"] == state
        }
    };
    let late = home.wait_for_event("late alert", alert("late"));
    let down = home.wait_for_event("down alert", alert("down"));
    assert!(late.ts <= down.ts, "late before down");
    assert!(run.is_running(), "the hung child still runs");
    home.wait_for_event("held note", |e| {
        e.source == "hang" && e.msg.starts_with("no output for")
    });
    std::fs::write(&go_on, b"").unwrap();
    home.wait_for_event("output resumed", |e| e.msg == "output resumed");
    let back = home.wait_for_event("recovery alert", alert("alive"));
    assert_eq!(back.fields["recovered"], true);
    std::fs::write(&finish, b"").unwrap();
    assert!(run.wait().success());
}

#[test]
fn ctrl_c_in_a_terminal_reaches_the_child_once() {
    if !have_programs("ctrl_c_in_a_terminal_reaches_the_child_once", &["tmux"]) {
        return;
    }
    let home = TestHome::new();
    // The child counts the SIGINTs it gets, and exits after a moment.
    let run = format!(
        "'{}' run --source pane --home '{}' -- sh -c \
         'n=0; trap \"n=\\$((n+1)); echo INT \\$n\" INT; echo ready; \
          while [ ! -e {}/done ]; do sleep 0.05; done; exit 4'",
        bin("swarm-obs").display(),
        home.path().display(),
        home.path().display()
    );
    let tmux = Tmux::start(&home, "sh");
    tmux.run(&["send-keys", "-t", "t", &run, "Enter"]);
    home.wait_for_event("ready", |e| e.msg == "ready");
    tmux.run(&["send-keys", "-t", "t", "C-c"]);
    home.wait_for_event("the child's count", |e| e.msg == "INT 1");
    home.wait_for_event("the note on the terminal's signal", |e| {
        e.msg.starts_with("SIGINT from the terminal reached pid")
    });
    std::fs::write(home.path().join("done"), b"").unwrap();
    let end = home.wait_for_event("the end", |e| e.fields.contains_key("exit_code"));
    assert_eq!(end.fields["exit_code"], 4);
    let events = home.events();
    assert!(
        !events.iter().any(|e| e.msg == "INT 2"),
        "SIGINT came twice"
    );
    assert!(!events.iter().any(|e| e.msg.starts_with("passed SIGINT")));
}

#[test]
fn a_failing_command_is_failed_with_its_exit_code_and_a_clean_one_is_no_alert() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let failed = home
        .swarm_obs()
        .args([
            "run",
            "--source",
            "fails",
            "--no-echo",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .status()
        .unwrap();
    assert_eq!(failed.code(), Some(3));
    let clean = home
        .swarm_obs()
        .args(["run", "--source", "clean", "--no-echo", "--", "true"])
        .status()
        .unwrap();
    assert_eq!(clean.code(), Some(0));

    // The collector's verdicts, and an alert for the failure only.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let alerts = loop {
        let alerts = c.get_json("/v1/events?kind=alert");
        if alerts["events"].as_array().is_some_and(|a| !a.is_empty()) {
            break alerts;
        }
        assert!(std::time::Instant::now() < deadline, "no alert: {alerts}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let workers = c.get_json("/v1/workers");
    let state_of = |name: &str| {
        workers["workers"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["worker"] == name))
            .map(|w| (w["state"].clone(), w["heartbeat"]["exit_code"].clone()))
            .unwrap_or_else(|| panic!("{name} not in {workers}"))
    };
    assert_eq!(state_of("fails"), ("failed".into(), 3.into()), "{workers}");
    assert_eq!(state_of("clean"), ("stopped".into(), 0.into()), "{workers}");
    let alerts = alerts["events"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "a clean stop is no alert: {alerts:?}");
    assert_eq!(alerts[0]["source"], "fails");
    assert_eq!(alerts[0]["level"], "error");
    assert!(
        alerts[0]["msg"]
            .as_str()
            .unwrap()
            .contains("exited with code 3"),
        "{alerts:?}"
    );

    let out = home
        .swarm_obs()
        .args(["status", "--collector", "off", "--color", "never"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed worker fails status: {text}"
    );
    assert!(text.contains("failed (exit 3)"), "{text}");
}

/// `run` blocks the signals it forwards; its child must not inherit that.
#[test]
fn sigterm_and_sigint_reach_plain_sleep_and_python_children() {
    if !have_programs("run signals", &["sleep", "python3"]) {
        return;
    }
    let home = TestHome::new();
    let children: [(&[&str], i32, i32); 2] = [
        (&["sleep", "100"], libc::SIGTERM, 128 + libc::SIGTERM),
        (
            &[
                "python3",
                "-c",
                "import time; print('ready', flush=True); time.sleep(100)",
            ],
            libc::SIGINT,
            128 + libc::SIGINT,
        ),
    ];
    for (i, (command, signal, want)) in children.into_iter().enumerate() {
        let source = format!("child{i}");
        let mut run = ChildGuard::spawn(
            home.swarm_obs()
                .args(["run", "--source", &source, "--no-echo", "--"])
                .args(command)
                .stdin(Stdio::null()),
        );
        home.wait_for_event("the start", |e| e.source == source && e.kind == Kind::Start);
        if command[0] == "python3" {
            home.wait_for_event("python ready", |e| e.source == source && e.msg == "ready");
        } else {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        let sent = std::time::Instant::now();
        run.signal(signal);
        let status = run.wait();
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(10),
            "{command:?} outlived the signal by {:?}",
            sent.elapsed()
        );
        assert_eq!(status.code(), Some(want), "{command:?}");
    }
}

/// A source over the file-name limit with a multi-byte character at the cut.
#[test]
fn a_long_multibyte_source_is_cut_on_a_character_boundary() {
    let home = TestHome::new();
    let source = format!("{}é-and-more", "a".repeat(199));
    let out = home
        .swarm_obs()
        .args(["run", "--source", &source, "--no-echo", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = home.events();
    assert!(events.iter().any(|e| e.source == source), "{events:?}");
    let stem = swarm_obs::file_stem(&source);
    assert_eq!(stem, "a".repeat(199));
    assert!(
        StateRoot::new(home.path()).heartbeat_file(&source).exists(),
        "the heartbeat of the long source"
    );
}

/// Every file under `dir`, recursively, as bytes.
fn all_bytes(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all_bytes(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

/// A secret on the command line is redacted in every place `run` writes it: the
/// start and done events' messages and `task`, the heartbeat's task, the text log,
/// and the collector's store (which is what OTLP export reads).
#[test]
fn a_secret_on_the_command_line_reaches_no_file_and_no_store() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let secrets = [
        "sk-ant-api03-AbCdEf0123456789_xyzXYZ0123",
        "glpat-abcdefghij0123456789",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ];
    let out = home
        .swarm_obs()
        .args(["run", "--source", "leaky", "--", "echo"])
        .args(secrets)
        .args(["--password", "hunter2-and-more"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let stored = loop {
        let v = c.get_json("/v1/events?source=leaky&kind=done");
        if v["events"].as_array().is_some_and(|a| !a.is_empty()) {
            break c.get_json("/v1/events?source=leaky");
        }
        assert!(std::time::Instant::now() < deadline, "no done event: {v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let start = stored["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "start")
        .expect("the start event");
    assert!(
        start["task"].as_str().unwrap().contains("[REDACTED]"),
        "{start}"
    );
    let hb = Heartbeat::read(&StateRoot::new(home.path()).heartbeat_file("leaky")).unwrap();
    assert!(
        hb.task.as_deref().unwrap_or("").contains("[REDACTED]"),
        "{hb:?}"
    );
    // Stop the collector so the store's write-ahead log is folded in, then look
    // at every byte under the state root.
    drop(c);
    let mut files = Vec::new();
    all_bytes(home.path(), &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("collector.db")));
    for secret in secrets.iter().copied().chain(["hunter2-and-more"]) {
        for (path, bytes) in &files {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in {}",
                path.display()
            );
        }
    }
}

/// A level word in the middle of a line is prose: `no ERROR here, all good` is an
/// info line, not an error event; a leading one counts.
#[test]
fn a_level_word_mid_line_is_not_the_lines_level() {
    if !have_programs("line levels", &["python3"]) {
        return;
    }
    let home = TestHome::new();
    let out = home
        .swarm_obs()
        .args(["run", "--source", "prose", "--no-echo", "--"])
        .args([
            "python3",
            "-c",
            "print('no ERROR here, all good'); print('retried after WARN from upstream'); \
             print('2026-01-05 14:32:15 ERROR disk full')",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let events = home.events();
    // Output lines only: the start and done events quote the whole command.
    let level_of = |msg: &str| {
        events
            .iter()
            .filter(|e| matches!(e.kind, Kind::Log | Kind::Error))
            .find(|e| e.msg.contains(msg))
            .unwrap_or_else(|| panic!("no event for {msg:?}: {events:?}"))
            .level
    };
    assert_eq!(level_of("no ERROR here"), Level::Info);
    assert_eq!(level_of("retried after WARN"), Level::Info);
    assert_eq!(level_of("ERROR disk full"), Level::Error);
    let errors: Vec<_> = events.iter().filter(|e| e.kind == Kind::Error).collect();
    assert_eq!(errors.len(), 1, "one error event: {errors:?}");
    assert!(errors[0].msg.contains("disk full"), "{errors:?}");
}
