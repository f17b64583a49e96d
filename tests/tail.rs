//! `swarm-obs tail` against real event files and a real collector: merged history,
//! every filter, following across a collector restart and a day rollover, new
//! sources, pipes that close, and colour only where it belongs.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use swarm_obs::{Event, EventLog, Kind, Level, Progress, StateRoot, Timestamp};
use swarm_obs_suite::{Collector, LineChild, TestHome, bin, have_programs};

const WAIT: Duration = Duration::from_secs(60);

/// A `swarm-obs tail` command on `home`, with no collector unless the test starts
/// one, and no colour from the environment.
fn tail(home: &TestHome) -> Command {
    let mut cmd = Command::new(bin("swarm-obs"));
    cmd.arg("tail")
        .arg("--utc")
        .env("SWARM_OBS_HOME", home.path())
        .env_remove("SWARM_OBS_COLLECTOR")
        .env_remove("SWARM_OBS_TOKEN")
        .env_remove("NO_COLOR");
    cmd
}

/// `swarm-obs tail ARGS | head -1` under bash's pipefail, finding the collector (if
/// any) through `collector.json`; in a process group of its own, so a tail that
/// does not end can be stopped with it.
fn tail_into_head(home: &TestHome, args: &str) -> LineChild {
    let script = format!("set -o pipefail; \"$TAIL\" tail {args} | head -1");
    LineChild::spawn(
        Command::new("bash")
            .args(["-c", &script])
            .env("TAIL", bin("swarm-obs"))
            .env("SWARM_OBS_HOME", home.path())
            .env_remove("SWARM_OBS_COLLECTOR")
            .env_remove("SWARM_OBS_TOKEN")
            .process_group(0),
    )
}

/// Runs a tail to completion; returns its stdout lines, asserting success and a
/// quiet stderr.
fn lines(home: &TestHome, args: &[&str]) -> Vec<String> {
    let out = tail(home).args(args).output().expect("run swarm-obs tail");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tail {args:?}: {stderr}");
    assert!(stderr.is_empty(), "tail {args:?} wrote to stderr: {stderr}");
    stdout.lines().map(str::to_owned).collect()
}

/// Messages of human lines (everything after `[source] `).
fn msgs(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l.splitn(4, "] ")
                .nth(3)
                .unwrap_or_else(|| panic!("not a human line: {l:?}"))
                .to_owned()
        })
        .collect()
}

fn event(ts: &str, source: &str, kind: Kind, msg: &str) -> Event {
    let mut ev = Event::new(source, kind, msg);
    ev.ts = ts.parse().expect("test timestamp");
    ev.id = swarm_obs::EventId::at(ev.ts);
    ev
}

/// Events of three sources over two days, deliberately out of time order, with
/// every field a filter looks at.
fn history() -> Vec<Event> {
    let now = Timestamp::now().unix_ms();
    let ago = |mins: i64| Timestamp::from_unix_ms(now - mins * 60_000).to_string();
    let mut evs = vec![
        event(&ago(3000), "backend", Kind::Start, "m01 old start"),
        event(&ago(50), "frontend", Kind::Log, "m04 render ok"),
        event(&ago(60), "backend", Kind::Log, "m03 disk full on sda"),
        event(&ago(2000), "worker-7", Kind::Log, "m02 warming up"),
        event(&ago(5), "worker-7", Kind::Done, "m07 finished TASK_9"),
        event(&ago(20), "backend", Kind::Error, "m05 disk full on sdb"),
        event(&ago(10), "frontend", Kind::Attention, "m06 needs a person"),
    ];
    evs[1].level = Level::Debug;
    evs[4].progress = Some(Progress { done: 5, total: 5 });
    evs[6].session = Some("98717c42-e11c-4c39".into());
    evs
}

fn write_files(home: &TestHome, evs: &[Event]) {
    let log = EventLog::new(StateRoot::new(home.path()));
    for ev in evs {
        log.append(ev).expect("append test event");
    }
}

/// The same checks whether the history comes from the files or the collector.
fn check_history(home: &TestHome) {
    let all = msgs(&lines(home, &["-n", "100", "--color", "never"]));
    let want: Vec<String> = (1..=7)
        .map(|i| {
            history()
                .into_iter()
                .find(|e| e.msg.starts_with(&format!("m{i:02}")))
                .unwrap()
                .msg
        })
        .collect();
    assert_eq!(all, want, "merged in timestamp order");
    let pick = |args: &[&str]| -> Vec<String> {
        msgs(&lines(home, args))
            .iter()
            .map(|m| m[..3].to_owned())
            .collect()
    };
    // Default: the newest 10.
    assert_eq!(pick(&[]).len(), 7);
    assert_eq!(pick(&["-n", "2"]), ["m06", "m07"]);
    assert_eq!(pick(&["-n", "0"]), Vec::<String>::new());
    assert_eq!(pick(&["back"]), ["m01", "m03", "m05"]);
    assert_eq!(
        pick(&["^front", "worker-\\d"]),
        ["m02", "m04", "m06", "m07"]
    );
    assert_eq!(pick(&["-x", "end$"]), ["m02", "m07"]);
    assert_eq!(pick(&["--grep", "disk full"]), ["m03", "m05"]);
    assert_eq!(pick(&["--grep", "disk", "--exclude-grep", "sdb"]), ["m03"]);
    assert_eq!(pick(&["-v", "disk|old"]), ["m02", "m04", "m06", "m07"]);
    assert_eq!(pick(&["--level", "warn"]), ["m05", "m06"]);
    assert_eq!(pick(&["--level", "info", "frontend"]), ["m06"]);
    assert_eq!(pick(&["--kind", "done,error"]), ["m05", "m07"]);
    assert_eq!(pick(&["--kind", "start"]), ["m01"]);
    assert_eq!(pick(&["--session", "98717c42"]), ["m06"]);
    assert_eq!(
        pick(&["--since", "90m"]),
        ["m03", "m04", "m05", "m06", "m07"]
    );
    assert_eq!(pick(&["--since", "90m", "-n", "1"]), ["m07"]);
    let json = lines(home, &["-o", "json", "-n", "1"]);
    let ev = Event::from_json(&json[0]).expect("json output is an event");
    assert_eq!(ev.msg, "m07 finished TASK_9");
    assert_eq!(
        lines(home, &["-o", "raw", "-n", "1"]),
        ["m07 finished TASK_9"]
    );
    let progress = lines(home, &["--kind", "done"]);
    assert!(
        progress[0].ends_with("[DONE] [worker-7] m07 finished TASK_9"),
        "{progress:?}"
    );
}

#[test]
fn history_from_the_files_is_merged_and_filtered() {
    let home = TestHome::new();
    write_files(&home, &history());
    // Garbage, an empty line and a torn last line (a writer killed mid-line) are
    // skipped, not fatal.
    let files = EventLog::files(&StateRoot::new(home.path())).unwrap();
    let today = files.last().expect("an event file");
    let mut junk = std::fs::read(today).unwrap();
    junk.extend_from_slice(b"not json\n\n\xff\xfe{\"v\":1}\n{\"v\":1,\"id\":\"01");
    std::fs::write(today, junk).unwrap();
    check_history(&home);
}

#[test]
fn history_from_the_collector_is_merged_and_filtered() {
    let home = TestHome::new();
    let collector = Collector::start(&home);
    // Posted only: no event file holds them, so what tail shows came from the collector.
    collector.post_events(&history());
    assert!(home.events().is_empty());
    check_history(&home);
    // --files reads the (empty) event files instead, and says they hold nothing.
    let out = tail(&home)
        .arg("--files")
        .output()
        .expect("run swarm-obs tail");
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no events yet in the event files"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_name_what_is_wrong() {
    let home = TestHome::new();
    for (args, want) in [
        (&["--grep", "("][..], "--grep: invalid regex"),
        (&["--since", "yesterday"], "invalid --since \"yesterday\""),
        (&["--level", "loud"], "unknown level \"loud\""),
        (&["--kind", "nope"], "unknown kind \"nope\""),
        (&["-x", "[z-a]"], "--exclude-source: invalid regex"),
    ] {
        let out = tail(&home).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    std::fs::write(home.path().join("config.toml"), "[collector\n").unwrap();
    let out = tail(&home).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("config"),
        "{stderr}"
    );
}

#[test]
fn follow_files_shows_the_last_lines_then_new_sources_and_the_next_day() {
    let home = TestHome::new();
    let now = Timestamp::now().unix_ms();
    let at = |ms: i64| Timestamp::from_unix_ms(now + ms).to_string();
    write_files(
        &home,
        &[
            event(&at(-4000), "a", Kind::Log, "old-1"),
            event(&at(-3000), "a", Kind::Log, "old-2"),
            event(&at(-2000), "b", Kind::Log, "old-3"),
        ],
    );
    let follower = LineChild::spawn(tail(&home).args(["-f", "-n", "2", "--color", "never"]));
    let first = follower.lines_until("old-3", WAIT);
    assert_eq!(msgs(&first), ["old-2", "old-3"]);

    // A source never seen before, then an event of the next UTC day: a new file.
    write_files(&home, &[event(&at(0), "newcomer", Kind::Start, "hello")]);
    let got = follower.lines_until("hello", WAIT);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("[START] [newcomer] hello"));
    let tomorrow = Timestamp::from_unix_ms(now + 86_400_000);
    write_files(
        &home,
        &[event(&tomorrow.to_string(), "a", Kind::Log, "next-day")],
    );
    assert!(
        StateRoot::new(home.path())
            .event_file(&tomorrow.day())
            .exists()
    );
    let got = follower.lines_until("next-day", WAIT);
    assert_eq!(msgs(&got), ["next-day"]);
    // And today's file is still followed after the rollover.
    write_files(&home, &[event(&at(1), "b", Kind::Log, "today-again")]);
    let got = follower.lines_until("today-again", WAIT);
    assert_eq!(msgs(&got), ["today-again"]);
}

#[test]
fn follow_the_collector_across_a_restart_without_gap_or_repeat() {
    let home = TestHome::new();
    let mut collector = Collector::start(&home);
    let batch = |prefix: &str, n: usize, source: &str| -> Vec<Event> {
        (1..=n)
            .map(|i| Event::new(source, Kind::Log, format!("{prefix}{i}")))
            .collect()
    };
    collector.post_events(&batch("a", 3, "api"));
    let follower = LineChild::spawn(tail(&home).args(["-f", "-n", "10", "--color", "never"]));
    follower.lines_until("a3", WAIT);
    collector.post_events(&batch("a", 4, "api")[3..]);
    follower.lines_until("a4", WAIT);

    // The collector stops; events keep landing in the files meanwhile, and the
    // follower reads them there.
    assert!(collector.terminate().success());
    write_files(&home, &batch("b", 2, "api"));
    let mut after = follower.lines_until("b2", WAIT);
    drop(collector);
    // Back again: it catches up b1 and b2 from the files, and the stream resumes
    // after a4, so they come again from the collector and must not be shown twice.
    let mut collector = Collector::start(&home);
    // A source that appears only after the restart.
    collector.post_events(&batch("c", 1, "late-joiner"));
    after.extend(follower.lines_until("c1", WAIT));
    // Anything repeated would arrive right behind; give it the chance.
    while let Some(l) = follower.next_line(Duration::from_millis(500)) {
        after.push(l);
    }
    assert_eq!(msgs(&after), ["b1", "b2", "c1"], "{}", follower.stderr());
    assert!(after[2].contains("[late-joiner]"));
    // News of the connection is held a moment (a stop under way makes it moot).
    let deadline = std::time::Instant::now() + WAIT;
    let told = |s: &str| s.contains("following the event files") && s.contains("again");
    while !told(&follower.stderr()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = follower.stderr();
    assert!(told(&stderr), "{stderr}");

    // Resumed, not refilled: the follower is stopped (as by Ctrl-Z) so it can neither
    // reconnect early nor read the files meanwhile; the collector goes down, and more
    // events land in the files than a stream opened afresh would send as backfill
    // (tail asks for 1000). The collector catches them up when it is back; only a
    // stream resumed after c1 gives the follower every one of them.
    const MISSED: usize = 1500;
    follower.signal(libc::SIGSTOP);
    assert!(collector.terminate().success());
    let missed = batch("d", MISSED, "api");
    write_files(&home, &missed);
    drop(collector);
    let collector = Collector::start(&home);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let stored: std::collections::HashSet<String> =
            collector.stored_ids().into_iter().collect();
        if missed.iter().all(|e| stored.contains(&e.id.to_string())) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the collector did not catch up the event files within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    follower.signal(libc::SIGCONT);
    let mut resumed = follower.lines_until(&format!("d{MISSED}"), WAIT);
    while let Some(l) = follower.next_line(Duration::from_millis(500)) {
        resumed.push(l);
    }
    let want: Vec<String> = missed.iter().map(|e| e.msg.clone()).collect();
    let got = msgs(&resumed);
    if got != want {
        let missing = want.iter().filter(|m| !got.contains(m)).count();
        panic!(
            "after the resume: {} lines for {MISSED} events, {missing} missing, first {:?}, last {:?}\nstderr:\n{}",
            got.len(),
            got.first(),
            got.last(),
            follower.stderr()
        );
    }
}

#[test]
fn piped_into_head_it_exits_cleanly() {
    let home = TestHome::new();
    let now = Timestamp::now().unix_ms();
    let evs: Vec<Event> = (0..5000)
        .map(|i| {
            event(
                &Timestamp::from_unix_ms(now - 5000 + i).to_string(),
                "bulk",
                Kind::Log,
                &format!("line {i} {}", "x".repeat(100)),
            )
        })
        .collect();
    write_files(&home, &evs);
    for args in ["-n 5000", "-f -n 5000", "-f -n 1"] {
        let mut child = tail_into_head(&home, args);
        let status = child
            .wait_timeout(WAIT)
            .unwrap_or_else(|| panic!("`tail {args} | head -1` did not end"));
        assert!(status.success(), "tail {args}: {status}");
        assert_eq!(child.stderr(), "", "tail {args} wrote to stderr");
        let first = child.next_line(WAIT).expect("head printed a line");
        assert!(first.contains("[bulk]"), "{first}");
    }
}

#[test]
fn piped_into_head_from_a_running_collector_it_exits_cleanly() {
    let home = TestHome::new();
    let collector = Collector::start(&home);
    let history: Vec<Event> = (0..50)
        .map(|i| Event::new("bulk", Kind::Log, format!("line {i}")))
        .collect();
    collector.post_events(&history);
    // From the history, and (with -n 0) from the live stream alone.
    for args in ["-f -n 1", "-f -n 50", "-f -n 0"] {
        let mut child = tail_into_head(&home, args);
        // With no history shown, head waits for a live event: post until it ends
        // (last, so the history cases never see these).
        let live = args.ends_with(" 0");
        let deadline = std::time::Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = child.wait_timeout(Duration::from_millis(200)) {
                break status;
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: signalling the process group of our own child.
                unsafe { libc::kill(-(child.pid() as libc::pid_t), libc::SIGKILL) };
                panic!(
                    "`tail {args} | head -1` did not end; stderr: {}",
                    child.stderr()
                );
            }
            if live {
                collector.post_events(&[Event::new("live", Kind::Log, "live line")]);
            }
        };
        assert!(
            status.success(),
            "tail {args}: {status}: {}",
            child.stderr()
        );
        assert_eq!(child.stderr(), "", "tail {args} wrote to stderr");
        let first = child.next_line(WAIT).expect("head printed a line");
        let want = if live { "[live]" } else { "[bulk]" };
        assert!(first.contains(want), "tail {args}: {first}");
    }
}

#[test]
fn colour_only_when_asked_or_on_a_terminal_without_no_color() {
    let home = TestHome::new();
    write_files(
        &home,
        &[event(
            "2026-01-05T14:00:00Z",
            "backend",
            Kind::Error,
            "boom",
        )],
    );
    let always = lines(&home, &["--color", "always"]).join("\n");
    assert!(always.contains("\x1b["), "{always:?}");
    let never = lines(&home, &["--color", "never"]).join("\n");
    assert!(!never.contains('\x1b'), "{never:?}");
    // auto into a pipe: no colour.
    assert!(!lines(&home, &[]).join("\n").contains('\x1b'));
    let out = tail(&home).env("NO_COLOR", "1").output().expect("run tail");
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\x1b'));

    // On a real terminal, auto colours unless NO_COLOR is set.
    if !have_programs("colour_on_a_terminal", &["tmux"]) {
        return;
    }
    let on_terminal = |no_color: bool| -> String {
        let socket = home.path().join(format!("tmux-{no_color}"));
        let done = home.path().join(format!("done-{no_color}"));
        let script = format!(
            "{} {} tail --utc; touch {}; sleep 600",
            if no_color { "NO_COLOR=1" } else { "" },
            bin("swarm-obs").display(),
            done.display()
        );
        let tmux = |args: &[&str]| {
            Command::new("tmux")
                .arg("-S")
                .arg(&socket)
                .args(args)
                .env("SWARM_OBS_HOME", home.path())
                .env_remove("NO_COLOR")
                .env_remove("SWARM_OBS_COLLECTOR")
                .env("TERM", "xterm-256color")
                .output()
                .expect("run tmux")
        };
        let started = tmux(&["new-session", "-d", "-x", "160", "-y", "20", &script]);
        assert!(started.status.success(), "{started:?}");
        for _ in 0..3000 {
            if done.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let shot = tmux(&["capture-pane", "-p", "-e"]);
        let _ = tmux(&["kill-server"]);
        let text = String::from_utf8_lossy(&shot.stdout).into_owned();
        assert!(text.contains("boom"), "pane: {text}");
        text
    };
    assert!(on_terminal(false).contains("\x1b["), "colour on a terminal");
    assert!(
        !on_terminal(true).contains("\x1b["),
        "NO_COLOR on a terminal"
    );
}

#[test]
fn a_collector_that_is_gone_is_named_and_the_files_are_read() {
    let home = TestHome::new();
    write_files(
        &home,
        &[event(
            "2026-01-05T14:00:00Z",
            "backend",
            Kind::Log,
            "from-file",
        )],
    );
    // collector.json left behind by a collector killed with SIGKILL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    std::fs::write(
        home.path().join("collector.json"),
        format!(r#"{{"addr":"{addr}","pid":1,"started_at":"2026-01-05T14:00:00Z"}}"#),
    )
    .unwrap();
    let out = tail(&home).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("from-file"), "{stdout}");
    assert!(
        stderr.contains(&addr) && stderr.contains("reading the event files"),
        "{stderr}"
    );
}

#[test]
fn a_collector_with_a_token_is_read_with_it() {
    let home = TestHome::new();
    let collector = Collector::start_with(&home, &["--token", "s3cret"]);
    collector.post_events(&[Event::new("secure", Kind::Log, "behind-a-token")]);
    let got = lines(&home, &["--color", "never"]);
    assert_eq!(msgs(&got), ["behind-a-token"]);
}
