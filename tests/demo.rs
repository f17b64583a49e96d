//! The README's first command: `swarm-obs demo` runs the whole scenario on its own,
//! shows every outcome live, and leaves nothing running.

use std::process::Command;
use std::time::Duration;

use swarm_obs_suite::{LineChild, TestHome, bin, process_exists};

const WAIT: Duration = Duration::from_secs(60);

/// Every `pid N` the demo announced (collector and workers).
fn announced_pids(stdout: &str) -> Vec<u32> {
    stdout
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split("pid ").nth(1))
        .filter_map(|rest| {
            rest.trim_end_matches(')')
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
        })
        .collect()
}

fn demo(home: &TestHome) -> Command {
    // No desktop notifications from a test run.
    std::fs::write(
        home.path().join("config.toml"),
        "[notify]\nbackend = \"off\"\n",
    )
    .unwrap();
    let mut cmd = Command::new(bin("swarm-obs"));
    cmd.args(["demo", "--color", "never", "--home"])
        .arg(home.path())
        .env_remove("SWARM_OBS_COLLECTOR")
        .env_remove("SWARM_OBS_TOKEN");
    cmd
}

#[test]
fn the_demo_shows_every_outcome_and_stops_everything_it_started() {
    let home = TestHome::new();
    let out = demo(&home).arg("--once").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "Dashboard:   http://127.0.0.1:",
        // The three workers' live events and endings.
        "[START] [builder] Started BUILD_042",
        "[PROGRESS] [builder] (5/5) Compiled crate 5 of 5",
        "[DONE] [builder] Finished BUILD_042",
        "[ERROR] [tester] 3 of 40 tests failed in suite 4",
        "[ALERT] [crawler] crawler is dead: process",
        // The replayed Claude Code session, through swarm-hook and the collector.
        "[START] [proj] SessionStart (startup)",
        "[START] [proj/general-purpose] SubagentStart general-purpose",
        "[ATTENTION] [proj] PermissionRequest Bash",
        "[ERROR] [proj] PostToolUseFailure Bash: ls ./no-such-subdir — Exit code 2",
        "[DONE] [proj] Stop: done",
        "[INFO] [proj] SessionEnd",
        // The closing report.
        "  builder  done   Finished BUILD_042",
        "  tester   error  3 of 40 tests failed in suite 4",
        "  crawler  dead   crawler is dead",
        "15 hook events replayed through swarm-hook, 15 shown, ended",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // Every event also reached the files, first.
    let events = home.events();
    assert!(events.iter().filter(|e| e.hook.is_some()).count() == 15);
    // One session, its main agent and one subagent, as the replay tells it.
    let sessions: std::collections::BTreeSet<_> =
        events.iter().filter_map(|e| e.session.as_deref()).collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let subagents: std::collections::BTreeSet<_> =
        events.iter().filter_map(|e| e.agent.as_deref()).collect();
    assert_eq!(subagents.len(), 1, "{subagents:?}");
    // Nothing it started is running any more, and the collector cleaned up.
    let pids = announced_pids(&stdout);
    assert_eq!(pids.len(), 4, "collector and three workers: {pids:?}");
    for pid in pids {
        assert!(!process_exists(pid), "pid {pid} still running");
    }
    assert!(!home.path().join("collector.json").exists());
}

#[test]
fn ctrl_c_or_sigterm_stops_the_demo_and_everything_it_started() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        stopped_by(signal);
    }
}

/// `--once` stopped before every outcome was seen: exit 130, as a shell reports a
/// Ctrl-C, with no error and nothing left running.
#[test]
fn ctrl_c_during_once_exits_130_quietly() {
    let home = TestHome::new();
    let mut running = LineChild::spawn(demo(&home).arg("--once"));
    let banner = running.lines_until("[START] [builder]", Duration::from_secs(60));
    let pids = announced_pids(&banner.join("\n"));
    assert_eq!(pids.len(), 4, "{banner:?}");
    running.signal(libc::SIGINT);
    let status = running
        .wait_timeout(Duration::from_secs(60))
        .expect("the demo did not exit on Ctrl-C");
    assert_eq!(status.code(), Some(130), "{status}: {}", running.stderr());
    assert_eq!(running.stderr(), "");
    for pid in pids {
        assert!(!process_exists(pid), "pid {pid} still running");
    }
}

fn stopped_by(signal: libc::c_int) {
    let home = TestHome::new();
    let mut running = LineChild::spawn(&mut demo(&home));
    // The banner ends with the Ctrl-C hint; wait until the workers have started.
    let banner = running.lines_until("Ctrl-C", Duration::from_secs(60));
    let pids = announced_pids(&banner.join("\n"));
    assert_eq!(pids.len(), 4, "{banner:?}");
    running.lines_until("[START] [builder]", Duration::from_secs(60));
    running.signal(signal);
    let status = running
        .wait_timeout(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the demo did not exit on signal {signal}"));
    assert!(status.success(), "{status}: {}", running.stderr());
    for pid in pids {
        assert!(!process_exists(pid), "pid {pid} still running");
    }
    assert!(!home.path().join("collector.json").exists());
}

/// The children of `parent` whose command name is `name` (Linux: from /proc).
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parent = parent.to_string();
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // `pid (comm) state ppid …`; the name may hold spaces and parentheses.
                let Some((head, rest)) = stat.rsplit_once(')') else {
                    return false;
                };
                let comm = head.split_once('(').map_or("", |(_, c)| c);
                comm == name && rest.split_whitespace().nth(1) == Some(parent.as_str())
            })
        })
        .collect()
}

/// SIGKILLs a process group when the test fails, so a demo that did not stop
/// leaves neither its frozen collector nor its workers behind.
struct KillGroupOnPanic(libc::pid_t);

impl Drop for KillGroupOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: signalling the process group of a child this test started.
            unsafe { libc::kill(-self.0, libc::SIGKILL) };
        }
    }
}

/// A terminal's Ctrl-C signals the whole foreground process group: the demo, its
/// collector and workers, and the `swarm-hook` running at that moment, which dies
/// of it. That is the user stopping the demo, not a failure of the hook.
#[test]
fn ctrl_c_to_the_whole_process_group_mid_replay_stops_cleanly() {
    use std::os::unix::process::CommandExt;
    let home = TestHome::new();
    let mut cmd = demo(&home);
    // A hook that waits long for a collector that does not answer, so the Ctrl-C
    // surely finds one running.
    std::fs::write(
        home.path().join("config.toml"),
        "[notify]\nbackend = \"off\"\n\n[hook]\npost_budget_ms = 10000\n",
    )
    .unwrap();
    // Its own process group, as a shell gives a foreground job.
    let mut running = LineChild::spawn(cmd.process_group(0));
    let group = running.pid() as libc::pid_t;
    let _cleanup = KillGroupOnPanic(group);
    let banner = running.lines_until("Ctrl-C", WAIT);
    let pids = announced_pids(&banner.join("\n"));
    assert_eq!(pids.len(), 4, "{banner:?}");
    let collector = pids[0] as libc::pid_t;
    // SAFETY: signalling processes this test started (the demo's collector, then
    // the demo's whole group).
    let signal = |pid: libc::pid_t, sig: libc::c_int| unsafe {
        libc::kill(pid, sig);
    };
    // Freeze the collector: the next hook waits on its answer.
    signal(collector, libc::SIGSTOP);
    let deadline = std::time::Instant::now() + WAIT;
    let hook = loop {
        if let Some(&pid) = children_named(running.pid(), "swarm-hook").first() {
            break pid;
        }
        if std::time::Instant::now() > deadline {
            signal(collector, libc::SIGCONT);
            panic!("no swarm-hook started within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    signal(-group, libc::SIGINT);
    signal(collector, libc::SIGCONT);
    let status = running
        .wait_timeout(WAIT)
        .expect("the demo did not exit on Ctrl-C");
    let mut stdout = banner;
    while let Some(l) = running.next_line(Duration::from_millis(100)) {
        stdout.push(l);
    }
    let stdout = stdout.join("\n");
    let stderr = running.stderr();
    assert!(status.success(), "{status}\n{stdout}\nstderr:\n{stderr}");
    // No error, and no talk of following the files until a collector is back.
    assert_eq!(stderr, "", "a Ctrl-C is a clean stop");
    assert!(
        stdout.contains("Outcomes:") && stdout.contains("Stopped: collector pid"),
        "no summary:\n{stdout}"
    );
    for pid in pids.into_iter().chain([hook]) {
        assert!(!process_exists(pid), "pid {pid} still running");
    }
    assert!(!home.path().join("collector.json").exists());
}

/// The live demo keeps going: round after round the workers start again (the
/// crawler comes back after dying), each outcome is said as it happens, the
/// commands it prints work as printed, and at Ctrl-C it stops everything and
/// removes its temporary state root.
#[test]
fn the_live_demo_keeps_going_and_cleans_up_after_itself() {
    use std::os::unix::process::CommandExt;
    let tmp = TestHome::new();
    let mut cmd = Command::new(bin("swarm-obs"));
    // Its own process group, so a failing test takes the collector and workers
    // down with it.
    cmd.process_group(0);
    cmd.args(["demo", "--color", "never"])
        // Its temporary state root lands here, where the test can look.
        .env("TMPDIR", tmp.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env_remove("SWARM_OBS_HOME")
        .env_remove("SWARM_OBS_COLLECTOR")
        .env_remove("SWARM_OBS_TOKEN");
    let mut running = LineChild::spawn(&mut cmd);
    let _cleanup = KillGroupOnPanic(running.pid() as libc::pid_t);
    let banner = running.lines_until("Ctrl-C", WAIT);
    let mut pids = announced_pids(&banner.join("\n"));
    assert_eq!(pids.len(), 4, "{banner:?}");
    let root = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("State root:"))
        .map(|r| r.trim().split(" (").next().unwrap_or("").to_owned())
        .expect("the banner names the state root");
    assert!(root.starts_with(&*tmp.path().to_string_lossy()), "{root}");
    assert!(banner.iter().any(|l| l.contains("--keep")), "{banner:?}");

    // The status command exactly as printed, through a shell.
    let status = banner
        .iter()
        .find(|l| l.trim_end().ends_with(" status"))
        .and_then(|l| l.split_once(":  "))
        .map(|(_, command)| command.trim().to_owned())
        .expect("the banner prints a status command");
    // Outcomes are said as they happen, and the second round starts.
    let seen = lines_with_all(
        &running,
        &[
            "outcome: tester failed",
            "outcome: crawler was killed",
            "round 2: the workers start again",
        ],
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&status)
        .env_remove("SWARM_OBS_HOME")
        .output()
        .expect("run the printed status command");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("builder") && text.contains("crawler"),
        "{status}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = seen
        .iter()
        .find(|l| l.contains("round 2: the workers start again"))
        .expect("the round line");
    pids.extend(line.split("pid ").skip(1).filter_map(|rest| {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<u32>()
            .ok()
    }));
    assert_eq!(pids.len(), 7, "{line}");
    running.lines_until("outcome: crawler is back", WAIT);

    running.signal(libc::SIGINT);
    let status = running
        .wait_timeout(WAIT)
        .expect("the demo did not exit on Ctrl-C");
    assert!(status.success(), "{status}: {}", running.stderr());
    for pid in pids {
        assert!(!process_exists(pid), "pid {pid} still running");
    }
    assert!(
        !std::path::Path::new(&root).exists(),
        "the temporary state root {root} was left behind"
    );
}

/// Lines read until each of `needles` has appeared, in any order.
fn lines_with_all(running: &LineChild, needles: &[&str]) -> Vec<String> {
    let deadline = std::time::Instant::now() + WAIT;
    let mut lines: Vec<String> = Vec::new();
    while !needles.iter().all(|n| lines.iter().any(|l| l.contains(n))) {
        assert!(
            std::time::Instant::now() < deadline,
            "not all of {needles:?} within {WAIT:?}; read:\n{}",
            lines.join("\n")
        );
        if let Some(l) = running.next_line(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    lines
}
