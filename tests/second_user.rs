//! Another user on the machine cannot steer swarm-obs through its state root: a
//! `config.toml` or `collector.json` they wrote is refused, so their notify command
//! never runs as this user and this user's events and token never reach them.
//!
//! The other user is `nobody`, writing its files with a real process of its own;
//! that takes root (as CI runs the suite), and is skipped loudly otherwise.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use swarm_obs_suite::{
    ListenerMode, TestHome, TestListener, bin, fixtures_dir, run_with_stdin, skip_or_fail,
};

const NOBODY: u32 = 65534;

fn as_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip_or_fail(&format!(
        "{test}: SKIPPED — needs root to act as a second user (nobody)"
    ));
    false
}

/// Writes `text` to `path` as `nobody`, with a real `sh` of that user.
fn write_as_nobody(path: &Path, text: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg("cat > \"$1\"")
        .arg("sh")
        .arg(path)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())?;
            child.wait()
        })
        .expect("run sh as nobody");
    assert!(
        status.success(),
        "nobody could not write {}",
        path.display()
    );
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The planted files: a command backend that leaves a mark, and a collector
/// address that is the attacker's listener.
fn plant(root: &Path, mark: &Path, listener: &TestListener) {
    write_as_nobody(
        &root.join("config.toml"),
        &format!(
            "[notify]\nbackend = \"command\"\ncommand = 'touch {}'\n",
            mark.display()
        ),
    );
    write_as_nobody(
        &root.join("collector.json"),
        &format!(
            "{{\"addr\":\"{}\",\"pid\":{},\"started_at\":\"{}\"}}",
            listener.addr(),
            std::process::id(),
            swarm_obs::Timestamp::now()
        ),
    );
}

fn stop_payload() -> Vec<u8> {
    std::fs::read(fixtures_dir().join("Stop.json")).unwrap()
}

#[test]
fn a_world_writable_state_root_gets_nothing_from_the_hook() {
    if !as_root("a_world_writable_state_root_gets_nothing_from_the_hook") {
        return;
    }
    let home = TestHome::new();
    chmod(home.path(), 0o711);
    let shared = home.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let mark = home.path().join("ran");
    let listener = TestListener::start(ListenerMode::Answer(200));
    plant(&shared, &mark, &listener);

    let mut cmd = Command::new(bin("swarm-hook"));
    cmd.env("SWARM_OBS_HOME", &shared)
        .env_remove("SWARM_OBS_COLLECTOR")
        .env_remove("SWARM_OBS_TOKEN");
    let out = run_with_stdin(&mut cmd, stop_payload());
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "the hook wrote to stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("refusing the state root") && err.contains("writable by other users"),
        "{err}"
    );
    assert!(
        listener.next_request(Duration::from_millis(500)).is_none(),
        "the planted collector got a request"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!mark.exists(), "the planted command ran");
    assert!(!shared.join("events").exists(), "events were written");
}

#[test]
fn files_another_user_owns_are_refused_in_a_private_root() {
    if !as_root("files_another_user_owns_are_refused_in_a_private_root") {
        return;
    }
    let home = TestHome::new();
    let mark = home.path().join("ran");
    let listener = TestListener::start(ListenerMode::Answer(200));
    // The root is private, but the two files are nobody's: written in a directory
    // they could reach, then moved in (a rename keeps the owner).
    let drop_box = tempfile::tempdir().unwrap();
    chmod(drop_box.path(), 0o777);
    plant(drop_box.path(), &mark, &listener);
    for f in ["config.toml", "collector.json"] {
        std::fs::rename(drop_box.path().join(f), home.path().join(f)).unwrap();
    }

    let out = run_with_stdin(&mut home.hook(), stop_payload());
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing the config file") && err.contains("uid 65534"),
        "{err}"
    );
    assert!(listener.next_request(Duration::from_millis(500)).is_none());

    // `run` and `serve` refuse with a clear error instead of using them.
    let run = home
        .swarm_obs()
        .args(["run", "--source", "w", "--", "true"])
        .output()
        .unwrap();
    assert_ne!(run.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("refusing the config file"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let serve = home
        .swarm_obs()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(serve.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&serve.stderr).contains("refusing the config file"),
        "{}",
        String::from_utf8_lossy(&serve.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!mark.exists(), "the planted command ran");
}

#[test]
fn a_planted_log_link_is_not_written_through() {
    let home = TestHome::new();
    let victim = home.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::fs::create_dir(home.path().join("logs")).unwrap();
    std::os::unix::fs::symlink(&victim, home.path().join("logs/w.log")).unwrap();
    let out = home
        .swarm_obs()
        .args(["run", "--source", "w", "--", "echo", "hello"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "run went on through the link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
}
