//! `swarm-obs pipe`: lines from stdin, from a real named pipe whose writer closes and
//! reopens, and from a real tmux pane through `pipe-pane`.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use swarm_obs::{
    Heartbeat, HeartbeatState, Kind, Level, LocalProcesses, StateRoot, Timestamp, WorkerState,
    classify_with_grace,
};
use swarm_obs_suite::{ChildGuard, TestHome, Tmux, bin, have_programs, run_with_stdin};

#[test]
fn stdin_lines_become_events_until_its_end() {
    let home = TestHome::new();
    let mut input = b"hello\n[error] it broke\n\n{\"level\":\"warn\",\"msg\":\"hot\"}\n".to_vec();
    input.extend_from_slice(b"\xff\xfe binary\n");
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend_from_slice(b"\nlast without newline");
    let out = run_with_stdin(
        home.swarm_obs()
            .args(["pipe", "--source", "logs", "--echo"]),
        input,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hello\n"));
    let events = home.events();
    let got: Vec<(Level, &str)> = events
        .iter()
        .map(|e| (e.level, &e.msg[..e.msg.len().min(20)]))
        .collect();
    assert_eq!(
        got,
        [
            (Level::Info, "hello"),
            (Level::Error, "[error] it broke"),
            (Level::Warn, "hot"),
            (Level::Info, "\u{fffd}\u{fffd} binary"),
            (Level::Info, "xxxxxxxxxxxxxxxxxxxx"),
            (Level::Info, "last without newline"),
        ]
    );
    assert_eq!(events[1].kind, Kind::Error);
    assert_eq!(events[3].fields["invalid_utf8"], true);
    assert_eq!(events[4].fields["truncated_bytes"], 100_000);
    assert!(events[4].msg.ends_with("[line cut: 100000 bytes in all]"));
    let hb = Heartbeat::read(&StateRoot::new(home.path()).heartbeat_file("logs")).unwrap();
    assert_eq!(hb.state, HeartbeatState::Stopped);
}

#[test]
fn a_fifo_survives_its_writer_closing_and_reopening_and_goes_late_when_quiet() {
    let home = TestHome::new();
    let fifo = home.path().join("in.fifo");
    let mut pipe = ChildGuard::spawn(
        home.swarm_obs()
            .args([
                "pipe",
                "--source",
                "fifo-job",
                "--interval",
                "200ms",
                "--fifo",
            ])
            .arg(&fifo)
            .stdin(Stdio::null()),
    );
    // The pipe is created by swarm-obs pipe; wait for it.
    for _ in 0..3000 {
        if fifo.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for round in 1..=3 {
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open the FIFO for writing");
        writeln!(writer, "round {round} line a").unwrap();
        writeln!(writer, "WARN round {round} line b").unwrap();
        drop(writer);
        home.wait_for_event("the round's last line", |e| {
            e.msg == format!("WARN round {round} line b")
        });
    }
    let events = home.events();
    let lines: Vec<&str> = events.iter().map(|e| e.msg.as_str()).collect();
    assert_eq!(lines.iter().filter(|l| l.starts_with("round")).count(), 3);

    // No more input: the heartbeat is held, so a reader sees the source late.
    let path = StateRoot::new(home.path()).heartbeat_file("fifo-job");
    let grace = Duration::from_secs(30);
    let mut state = WorkerState::Alive;
    for _ in 0..3000 {
        let hb = Heartbeat::read(&path).unwrap();
        state = classify_with_grace(&hb, Timestamp::now(), &LocalProcesses, grace);
        if state == WorkerState::Late {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(state, WorkerState::Late);
    home.wait_for_event("the held note", |e| e.msg.starts_with("no output for"));

    pipe.signal(libc::SIGTERM);
    assert!(pipe.wait().success());
    assert_eq!(
        Heartbeat::read(&path).unwrap().state,
        HeartbeatState::Stopped
    );
    assert!(fifo.exists(), "the named pipe is left for the next reader");
}

#[test]
fn a_fifo_path_holding_a_plain_file_is_refused() {
    let home = TestHome::new();
    let plain = home.path().join("plain");
    std::fs::write(&plain, b"keep me").unwrap();
    let out = home
        .swarm_obs()
        .args(["pipe", "--source", "x", "--fifo"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a named pipe"));
    assert_eq!(std::fs::read(&plain).unwrap(), b"keep me");
}

#[test]
fn a_tmux_pane_is_followed_through_pipe_pane() {
    if !have_programs("a_tmux_pane_is_followed_through_pipe_pane", &["tmux"]) {
        return;
    }
    let home = TestHome::new();
    let tmux = Tmux::start(&home, "sh");
    let pipe_cmd = format!(
        "'{}' pipe --source pane-1 --home '{}'",
        bin("swarm-obs").display(),
        home.path().display()
    );
    tmux.run(&["pipe-pane", "-o", "-t", "t", &pipe_cmd]);
    tmux.run(&[
        "send-keys",
        "-t",
        "t",
        "printf '%s\\n' 'hello from the pane' 'ERROR: the pane failed'",
        "Enter",
    ]);
    let hello = home.wait_for_event("the pane's line", |e| e.msg == "hello from the pane");
    assert_eq!(
        (hello.source.as_str(), hello.level),
        ("pane-1", Level::Info)
    );
    let failed = home.wait_for_event("the pane's error", |e| e.msg == "ERROR: the pane failed");
    assert_eq!(failed.kind, Kind::Error);
    // Closing the pipe ends the reader cleanly: its heartbeat says stopped.
    tmux.run(&["pipe-pane", "-t", "t"]);
    let path = StateRoot::new(home.path()).heartbeat_file("pane-1");
    let mut state = None;
    for _ in 0..3000 {
        state = Heartbeat::read(&path).ok().map(|hb| hb.state);
        if state == Some(HeartbeatState::Stopped) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(state, Some(HeartbeatState::Stopped));
}
