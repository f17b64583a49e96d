//! The README's first command: `swarm-obs demo` runs the whole scenario on its own,
//! shows every outcome live, and leaves nothing running.

use std::process::Command;
use std::time::Duration;

use swarm_obs_suite::{LineChild, TestHome, bin, process_exists};

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
