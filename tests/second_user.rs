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

/// Runs `python3 -c script args…` as `nobody` and returns what it printed.
fn python_as_nobody(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .current_dir("/")
        .output()
        .expect("run python3 as nobody");
    assert!(
        out.status.success(),
        "python3 as nobody failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Status of a GET and a POST on a loopback collector, from another user.
const PROBE: &str = r#"
import sys, urllib.request, urllib.error
addr, token = sys.argv[1], sys.argv[2]
def call(method, path, body=None, ctype=None):
    req = urllib.request.Request("http://" + addr + path, data=body, method=method)
    if ctype: req.add_header("Content-Type", ctype)
    if token: req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return str(r.status)
    except urllib.error.HTTPError as e:
        return str(e.code) + " " + e.read().decode()[:300].replace("\n", " ")
ev = '{"v":1,"id":"0190a000-0000-7000-8000-00000000beef","ts":"2026-01-05T14:32:15.000Z","source":"intruder","kind":"log","msg":"planted"}'
print(call("GET", "/v1/events"))
print(call("GET", "/v1/stream?n=0&follow=0"))
print(call("POST", "/v1/events", ev.encode(), "application/json"))
"#;

#[test]
fn another_user_cannot_read_or_post_to_a_collector_without_its_token() {
    if !as_root("another user on loopback")
        || !swarm_obs_suite::have_programs("another user on loopback", &["python3"])
    {
        return;
    }
    let home = swarm_obs_suite::TestHome::new();
    let collector = swarm_obs_suite::Collector::start(&home);
    collector.post_events(&[swarm_obs::Event::new(
        "mine",
        swarm_obs::Kind::Log,
        "secret work",
    )]);
    let out = python_as_nobody(PROBE, &[collector.addr(), ""]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for line in &lines {
        assert!(line.starts_with("403 "), "another user was served: {out}");
        assert!(
            line.contains("--token"),
            "the refusal says what to do: {out}"
        );
    }
    assert!(!out.contains("secret work"), "{out}");
    // The user's own requests are served, and nothing was planted.
    let events = collector.get_json("/v1/events");
    let sources: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["source"].as_str())
        .collect();
    assert_eq!(sources, ["mine"], "{events}");
}

/// Opens `n` live streams as one client and holds them while it checks: prints
/// how many were let in (200) and how many refused with 429.
const HOLD_VIEWERS: &str = r#"
import socket, sys
addr, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = addr.rsplit(":", 1)
held, ok, refused = [], 0, 0
for i in range(n):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(("GET /v1/stream?n=0 HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + token + "\r\n\r\n").encode())
    status = s.recv(64).split(b" ")[1]
    if status == b"200": ok += 1
    elif status == b"429": refused += 1
    held.append(s)
print(ok, refused, flush=True)
sys.stdin.readline()
"#;

#[test]
fn one_client_cannot_take_every_viewer_place() {
    if !as_root("per-client viewer limit")
        || !swarm_obs_suite::have_programs("per-client viewer limit", &["python3"])
    {
        return;
    }
    let home = swarm_obs_suite::TestHome::new();
    let token = "per-client-viewer-test-token";
    let collector = swarm_obs_suite::Collector::start_with(&home, &["--token", token]);
    // Another user with the token opens more streams than one client may hold.
    let mut greedy = Command::new("python3")
        .arg("-c")
        .arg(HOLD_VIEWERS)
        .args([collector.addr(), token, "300"])
        .uid(NOBODY)
        .gid(NOBODY)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 as nobody");
    let mut line = String::new();
    {
        use std::io::BufRead;
        let stdout = greedy.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the counts");
    }
    let counts: Vec<u32> = line
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    // While they are held, the user's own viewers still get in.
    let own = python_counts_as_self(collector.addr(), token, 20);
    drop(greedy.stdin.take());
    let _ = greedy.wait();
    assert_eq!(counts, [256, 44], "nobody's streams: {line}");
    assert_eq!(own, [20, 0], "the user's own streams were locked out");
}

fn python_counts_as_self(addr: &str, token: &str, n: u32) -> Vec<u32> {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(HOLD_VIEWERS)
        .args([addr, token, &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the counts");
    }
    drop(child.stdin.take());
    let _ = child.wait();
    line.split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}
