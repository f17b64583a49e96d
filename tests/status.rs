//! `swarm-obs status` against real worker processes, with and without a running
//! collector: the table, the exit code per state, `--json`, colour, and bad input.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use swarm_obs::{Heartbeat, HeartbeatState, StateRoot};
use swarm_obs_suite::{ChildGuard, Collector, TestHome, bin, example};

/// A long-running worker named `name` with a 5 s heartbeat interval (so a loaded
/// machine cannot make it late), posting nowhere.
fn worker(home: &TestHome, name: &str, tasks: &str) -> ChildGuard {
    worker_beating(home, name, tasks, "5000")
}

/// Like [`worker`], beating every `interval_ms`.
fn worker_beating(home: &TestHome, name: &str, tasks: &str, interval_ms: &str) -> ChildGuard {
    ChildGuard::spawn(
        Command::new(example("worker"))
            .args([tasks, "5", "20", name, interval_ms])
            .env("SWARM_OBS_HOME", home.path())
            .env("SWARM_OBS_COLLECTOR", "off")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// Waits until `name`'s heartbeat says `state` (any state when `None`).
fn wait_for_beat(home: &TestHome, name: &str, state: Option<HeartbeatState>) {
    let path = StateRoot::new(home.path()).heartbeat_file(name);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Heartbeat::read(&path).is_ok_and(|hb| state.is_none_or(|s| hb.state == s)) {
        assert!(
            Instant::now() < deadline,
            "{name} did not beat {state:?} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status(home: &Path, args: &[&str]) -> Output {
    Command::new(bin("swarm-obs"))
        .arg("status")
        .args(args)
        .env("SWARM_OBS_HOME", home)
        .env_remove("SWARM_OBS_COLLECTOR")
        .env_remove("SWARM_OBS_TOKEN")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run swarm-obs status")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The table line of `name`.
fn line_of(out: &Output, name: &str) -> String {
    text(out)
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{}", text(out)))
        .to_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}):\n{}", text(out)))
}

/// Runs `status --json` until `done` holds for its answer (the collector rescans
/// heartbeat files twice a second), for at most 60 s.
fn status_until(
    home: &Path,
    what: &str,
    done: impl Fn(&Output, &serde_json::Value) -> bool,
) -> (Output, serde_json::Value) {
    status_until_with(home, &[], what, done)
}

/// [`status_until`] with more arguments (`--collector off`).
fn status_until_with(
    home: &Path,
    args: &[&str],
    what: &str,
    done: impl Fn(&Output, &serde_json::Value) -> bool,
) -> (Output, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut args = args.to_vec();
    args.push("--json");
    loop {
        let out = status(home, &args);
        let v = json(&out);
        if done(&out, &v) {
            return (out, v);
        }
        assert!(Instant::now() < deadline, "waited 60 s for {what}: {v:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn state_of(v: &serde_json::Value, name: &str) -> Option<String> {
    v["workers"]
        .as_array()?
        .iter()
        .find(|w| w["worker"] == name)
        .map(|w| w["state"].as_str().unwrap_or("").to_owned())
}

#[test]
fn exit_code_follows_real_workers_from_the_files() {
    let home = TestHome::new();
    let mut alpha = worker(&home, "alpha", "100000");
    // A worker that finishes: its last beat says stopped, which is fine.
    let mut short = worker(&home, "gamma", "1");
    wait_for_beat(&home, "alpha", None);
    wait_for_beat(&home, "gamma", Some(HeartbeatState::Stopped));
    let mut beta = worker(&home, "beta", "100000");
    wait_for_beat(&home, "beta", None);

    let out = status(home.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let head = text(&out).lines().next().unwrap_or("").to_owned();
    for col in [
        "WORKER",
        "STATE",
        "TASK",
        "ACTION",
        "PROGRESS",
        "LAST BEAT",
        "PID",
        "HOST",
    ] {
        assert!(head.contains(col), "header lacks {col}: {head}");
    }
    let alpha_line = line_of(&out, "alpha");
    assert!(alpha_line.contains(" alive "), "{alpha_line}");
    assert!(alpha_line.contains(&alpha.id().to_string()), "{alpha_line}");
    assert!(alpha_line.contains(swarm_obs::hostname()), "{alpha_line}");
    // The last beat of a finished worker keeps its task, action and progress.
    let gamma_line = line_of(&out, "gamma");
    for part in [
        " stopped ",
        "TASK_001",
        "Finished TASK_001",
        "██████████ 5/5 100%",
    ] {
        assert!(gamma_line.contains(part), "{gamma_line}");
    }
    assert!(text(&out).contains("3 workers: 2 alive, 1 stopped (from files in"));
    assert!(!text(&out).contains('\x1b'), "no colour into a pipe");

    beta.kill();
    let out = status(home.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(line_of(&out, "beta").contains(" dead "), "{}", text(&out));
    assert!(line_of(&out, "alpha").contains(" alive "), "{}", text(&out));

    // --json: the collector's shape for each worker, plus a verdict.
    let out = status(home.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["from"], "files");
    assert_eq!(v["unreadable"], serde_json::json!([]));
    let workers = v["workers"].as_array().expect("workers array");
    let names: Vec<&str> = workers
        .iter()
        .filter_map(|w| w["worker"].as_str())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    let b = &workers[1];
    assert_eq!(b["state"], "dead");
    assert_eq!(b["via"], "file");
    assert_eq!(b["host"], swarm_obs::hostname());
    assert_eq!(b["heartbeat"]["pid"], beta.id());
    assert_eq!(b["heartbeat"]["interval_ms"], 5000);
    assert!(b["age_ms"].as_i64().is_some());
    assert_eq!(workers[2]["heartbeat"]["progress"]["total"], 5);

    // Colour: on request, even with NO_COLOR; never when told not to.
    let out = status(home.path(), &["--color", "always"]);
    assert!(
        text(&out).contains("\x1b[1;31mdead\x1b[0m"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("\x1b[32malive\x1b[0m"));
    let out = Command::new(bin("swarm-obs"))
        .args(["status", "--color", "never"])
        .env("SWARM_OBS_HOME", home.path())
        .env("SWARM_OBS_COLLECTOR", "off")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!text(&out).contains('\x1b'));

    alpha.kill();
    short.kill();
}

#[test]
fn exit_code_follows_real_workers_through_the_collector() {
    let home = TestHome::new();
    let collector = Collector::start(&home);
    let _alpha = worker(&home, "alpha", "100000");
    let mut beta = worker(&home, "beta", "100000");
    let (out, v) = status_until(home.path(), "both workers alive", |_, v| {
        state_of(v, "alpha").as_deref() == Some("alive")
            && state_of(v, "beta").as_deref() == Some("alive")
    });
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["from"], "collector");
    assert_eq!(v["ok"], true);
    assert!(
        v["source"]
            .as_str()
            .is_some_and(|s| s.contains(collector.addr())),
        "{v:#}"
    );
    let table = status(home.path(), &[]);
    assert!(
        text(&table).contains(&format!("(from collector {})", collector.addr())),
        "{}",
        text(&table)
    );

    beta.kill();
    let (out, v) = status_until(home.path(), "beta dead", |_, v| {
        state_of(v, "beta").as_deref() == Some("dead")
    });
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(v["ok"], false);
    let table = status(home.path(), &[]);
    assert_eq!(table.status.code(), Some(1));
    assert!(line_of(&table, "beta").contains(" dead "));
}

/// A worker frozen with SIGSTOP goes late, then down (exit 1 both times), and is
/// alive again (exit 0) once SIGCONT lets it beat; `from` says who judged it.
fn late_then_down_then_alive(home: &TestHome, worker: &ChildGuard, args: &[&str], from: &str) {
    let (out, v) = status_until_with(home.path(), args, "alpha alive", |_, v| {
        state_of(v, "alpha").as_deref() == Some("alive")
    });
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["from"], from, "{v:#}");

    worker.signal(libc::SIGSTOP);
    for state in ["late", "down"] {
        let (out, v) = status_until_with(home.path(), args, &format!("alpha {state}"), |_, v| {
            state_of(v, "alpha").as_deref() == Some(state)
        });
        assert_eq!(out.status.code(), Some(1), "{state}: {v:#}");
        assert_eq!(v["ok"], false, "{state}: {v:#}");
    }
    // Down stays down while the worker is frozen; the table says so too.
    let table = status(home.path(), args);
    assert_eq!(table.status.code(), Some(1), "{}", text(&table));
    assert!(
        line_of(&table, "alpha").contains(" down "),
        "{}",
        text(&table)
    );

    worker.signal(libc::SIGCONT);
    let (out, v) = status_until_with(home.path(), args, "alpha alive again", |_, v| {
        state_of(v, "alpha").as_deref() == Some("alive")
    });
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
}

#[test]
fn a_frozen_worker_is_late_then_down_then_alive_from_the_files() {
    let home = TestHome::new();
    // The files use the default grace (10 s at least): down some 10 s after the stop.
    let mut alpha = worker_beating(&home, "alpha", "100000", "500");
    wait_for_beat(&home, "alpha", None);
    late_then_down_then_alive(&home, &alpha, &["--collector", "off"], "files");
    alpha.kill();
}

#[test]
fn a_frozen_worker_is_late_then_down_then_alive_through_the_collector() {
    let home = TestHome::new();
    let _collector = Collector::start_with(&home, &["--heartbeat-grace-ms", "4000"]);
    let mut alpha = worker_beating(&home, "alpha", "100000", "500");
    wait_for_beat(&home, "alpha", None);
    late_then_down_then_alive(&home, &alpha, &[], "collector");
    alpha.kill();
}

#[test]
fn a_collector_that_stopped_answering_falls_back_to_the_files() {
    let home = TestHome::new();
    let mut collector = Collector::start(&home);
    let addr = collector.addr().to_owned();
    // SIGKILL leaves collector.json behind, naming a port nobody listens on.
    collector.kill();
    let _w = worker(&home, "alpha", "100000");
    wait_for_beat(&home, "alpha", None);
    let out = status(home.path(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&addr)
            && err.contains("no collector answers")
            && err.contains("reading the files"),
        "{err}"
    );
    assert!(line_of(&out, "alpha").contains(" alive "));

    // Named explicitly, a dead collector is an error that says which and what to do.
    let out = status(home.path(), &["--collector", &addr]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(&addr) && err.contains("--collector off"),
        "{err}"
    );
}

#[test]
fn bad_input_is_reported_not_fatal() {
    let home = TestHome::new();
    // No state root at all: no workers, all fine.
    let out = status(&home.path().join("missing"), &["--collector", "off"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("No workers have written a heartbeat"));

    let root = StateRoot::new(home.path());
    std::fs::create_dir_all(root.heartbeats_dir()).unwrap();
    let junk = root.heartbeat_file("junk");
    for bad in [&b""[..], b"{\"timestamp\":", b"\xff\xfe garbage", b"[]"] {
        std::fs::write(&junk, bad).unwrap();
        let out = status(home.path(), &["--collector", "off"]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(
            text(&out).contains("unreadable") && text(&out).contains("junk.json"),
            "{}",
            text(&out)
        );
        let v = json(&status(home.path(), &["--collector", "off", "--json"]));
        assert!(
            v["unreadable"][0]["path"]
                .as_str()
                .unwrap()
                .ends_with("junk.json")
        );
    }
    // A huge file is refused as a heartbeat, not read into a crash.
    std::fs::write(&junk, vec![b'x'; 8 << 20]).unwrap();
    let out = status(home.path(), &["--collector", "off"]);
    assert_eq!(out.status.code(), Some(1));

    let out = status(home.path(), &["--collector", "not an address"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("not an address"), "{err}");
}

#[test]
fn watch_redraws_until_stopped() {
    use std::io::Read;
    let home = TestHome::new();
    let _w = worker(&home, "alpha", "100000");
    wait_for_beat(&home, "alpha", None);
    let mut watch = ChildGuard::spawn(
        Command::new(bin("swarm-obs"))
            .args([
                "status",
                "--watch",
                "--collector",
                "off",
                "--color",
                "never",
            ])
            .env("SWARM_OBS_HOME", home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    );
    let mut stdout = watch.child().stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let frames = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .split("\x1b[H\x1b[2J")
            .filter(|f| f.contains("1 worker: 1 alive"))
            .count()
    };
    while frames(&seen) < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!(
                "two frames not seen within 60 s:\n{}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    assert!(watch.is_running(), "--watch keeps running");
    watch.kill();
}

/// A collector's health probes are listed too, and one that goes down fails the
/// status like a dead worker.
#[test]
fn probes_of_the_collector_are_listed_and_count_in_the_exit_code() {
    use swarm_obs_suite::{ListenerMode, TestListener};
    let home = TestHome::new();
    let server = TestListener::start(ListenerMode::Answer(200));
    let probe = format!(
        "http:http://{}/health name=web interval_ms=100 timeout_ms=500 grace_ms=400",
        server.addr()
    );
    let _collector = Collector::start_with(&home, &["--probe", &probe]);
    let probe_state = |v: &serde_json::Value| v["probes"][0]["state"].as_str().map(str::to_owned);
    let (out, v) = status_until(home.path(), "the probe alive", |_, v| {
        probe_state(v).as_deref() == Some("alive")
    });
    assert!(out.status.success(), "{v:#}");
    assert_eq!(v["ok"], true);
    let table = status(home.path(), &["--color", "never"]);
    let line = line_of(&table, "web");
    assert!(
        line.contains("alive") && line.contains("HTTP 200"),
        "{line}"
    );

    server.set_mode(ListenerMode::Answer(500));
    let (out, v) = status_until(home.path(), "the probe down", |_, v| {
        probe_state(v).as_deref() == Some("down")
    });
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(v["ok"], false);
    assert!(line_of(&status(home.path(), &[]), "web").contains("down"));
}

/// A state root that does not exist is named as missing, by status and by tail,
/// and a selection that matches nothing says so: silence would read as an idle
/// swarm.
#[test]
fn a_missing_state_root_or_an_empty_selection_is_said() {
    let home = TestHome::new();
    let missing = home.path().join("not-here");
    let out = Command::new(bin("swarm-obs"))
        .args(["status", "--collector", "off", "--home"])
        .arg(&missing)
        .env_remove("SWARM_OBS_COLLECTOR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("does not exist yet"), "{text}");
    let out = Command::new(bin("swarm-obs"))
        .args(["tail", "--files", "--home"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist yet"), "{err}");

    // An existing root with events, and a session nobody has.
    let log = swarm_obs::EventLog::new(StateRoot::new(home.path()));
    log.append(&swarm_obs::Event::new("w", swarm_obs::Kind::Log, "hello"))
        .unwrap();
    let out = Command::new(bin("swarm-obs"))
        .args(["tail", "--files", "--session", "nosuch", "--home"])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no events match the selection"), "{err}");
}

/// One policy for a broken `config.toml`: every command stops and names the line
/// and the key, with the collector or without; durations take units as flags do.
#[test]
fn a_config_typo_stops_every_command_and_durations_take_units() {
    let home = TestHome::new();
    // Writes config.toml, then runs `swarm-obs ARGS --home <root>`.
    let with_config = |config: &str, args: &[&str]| {
        std::fs::write(home.path().join("config.toml"), config).unwrap();
        let out = Command::new(bin("swarm-obs"))
            .args(args)
            .arg("--home")
            .arg(home.path())
            .env_remove("SWARM_OBS_COLLECTOR")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), err)
    };
    for args in [
        &["status", "--collector", "off"][..],
        &["status"],
        &["tail", "--files"],
    ] {
        let (ok, err) = with_config("[hook]\npost_budgt_ms = 5\n", args);
        assert!(!ok, "{args:?} ignored the typo: {err}");
        assert!(
            err.contains("line 2") && err.contains("post_budgt_ms"),
            "{args:?}: {err}"
        );
    }
    let status = ["status", "--collector", "off"];
    let (ok, err) = with_config(
        "[hook]\npost_budget_ms = \"50ms\"\nstdin_timeout_ms = \"2s\"\n\n[notify]\ndebounce_ms = \"1m\"\n",
        &status,
    );
    assert!(ok, "{err}");
    let (ok, err) = with_config("[hook]\npost_budget_ms = \"50\"\n", &status);
    assert!(!ok && err.contains("has no unit"), "{err}");
}
