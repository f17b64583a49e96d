//! The README's first command: `swarm-obs demo` runs end to end on its own.

use std::process::Command;

#[test]
fn the_demo_replays_a_session_into_a_real_collector_and_cleans_up() {
    let home = swarm_obs_suite::TestHome::new();
    // No desktop notifications from a test run.
    std::fs::write(
        home.path().join("config.toml"),
        "[notify]\nbackend = \"off\"\n",
    )
    .unwrap();
    let out = Command::new(swarm_obs_suite::bin("swarm-obs"))
        .args(["demo", "--home"])
        .arg(home.path())
        .env_remove("SWARM_OBS_COLLECTOR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "[START] [proj] SessionStart (startup)",
        "[START] [proj/general-purpose] SubagentStart general-purpose",
        "[ERROR] [proj] PostToolUseFailure Bash: ls ./no-such-subdir — Exit code 2",
        "[DONE] [proj] Stop: done",
        "15 events in",
        "\"session\": \"98717c42-e11c-4c39-bdff-7aa8cf672e85\"",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert_eq!(home.events().len(), 15);
    // The collector it started is gone and has cleaned up after itself.
    assert!(!home.path().join("collector.json").exists());
}
