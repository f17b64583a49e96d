//! A real worker process (`examples/worker.rs`) seen from outside: its heartbeat
//! judged by the reader when it is killed or exits cleanly, and its events posted to a
//! real HTTP listener.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use swarm_obs::{
    Event, Heartbeat, HeartbeatState, Kind, LocalProcesses, StateRoot, Timestamp, WorkerState,
    read_heartbeats,
};
use swarm_obs_suite::{ListenerMode, TestHome, TestListener, example};

fn worker(home: &TestHome, args: &[&str]) -> Command {
    let mut cmd = Command::new(example("worker"));
    cmd.args(args)
        .env("SWARM_OBS_HOME", home.path())
        .env("SWARM_OBS_COLLECTOR", "off")
        .env_remove("SWARM_OBS_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// Waits (polling, without judging how long it takes) for a heartbeat saying `working`.
fn wait_until_working(home: &TestHome, child: &mut Child) -> Heartbeat {
    let path = StateRoot::new(home.path()).heartbeat_file("backend");
    loop {
        if let Ok(hb) = Heartbeat::read(&path)
            && hb.state == HeartbeatState::Working
        {
            return hb;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the worker exited before it started working"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn verdicts(home: &TestHome, now: Timestamp) -> Vec<(String, WorkerState)> {
    read_heartbeats(&StateRoot::new(home.path()), now, &LocalProcesses)
        .unwrap()
        .into_iter()
        .map(|r| {
            let (hb, state) = r.result.expect("a readable heartbeat");
            (hb.worker, state)
        })
        .collect()
}

#[test]
fn a_worker_killed_with_sigkill_is_dead() {
    let home = TestHome::new();
    let mut child = worker(&home, &["1000", "1000", "20"]).spawn().unwrap();
    let hb = wait_until_working(&home, &mut child);
    assert_eq!(hb.pid, child.id());
    assert_eq!(
        verdicts(&home, hb.timestamp),
        [("backend".to_owned(), WorkerState::Alive)]
    );
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let now = Timestamp::now();
    assert_eq!(
        verdicts(&home, now),
        [("backend".to_owned(), WorkerState::Dead)]
    );
    // Seen from another host (no pid to check), the silence alone makes it down.
    let mut remote =
        Heartbeat::read(&StateRoot::new(home.path()).heartbeat_file("backend")).unwrap();
    remote.host.push_str("-elsewhere");
    let later = Timestamp::from_unix_ms(remote.timestamp.unix_ms() + 11_001);
    assert_eq!(
        swarm_obs::classify(&remote, later, &LocalProcesses),
        WorkerState::Down
    );
}

#[test]
fn a_worker_that_exits_cleanly_is_stopped_with_every_event_written() {
    let home = TestHome::new();
    let out = worker(&home, &["2", "3", "1"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let v = verdicts(&home, Timestamp::now());
    assert_eq!(v, [("backend".to_owned(), WorkerState::Stopped)]);
    let events = home.events();
    let kinds: Vec<Kind> = events.iter().map(|e| e.kind).collect();
    use Kind::{Done, Progress, Start};
    assert_eq!(
        kinds,
        [
            Start, Progress, Progress, Progress, Done, Start, Progress, Progress, Progress, Done
        ]
    );
    let log = std::fs::read_to_string(StateRoot::new(home.path()).log_file("backend")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), events.len());
    assert!(
        lines[0].ends_with("] [START] [backend] Started TASK_001"),
        "{}",
        lines[0]
    );
    assert!(lines[3].ends_with("] [PROGRESS] [backend] (3/3) Analysing file 3.rs"));
    assert!(lines[9].ends_with("] [DONE] [backend] Finished TASK_002"));
}

#[test]
fn the_shipper_posts_every_event_to_the_collector() {
    let listener = TestListener::start(ListenerMode::Answer(202));
    let home = TestHome::new();
    let out = worker(&home, &["2", "2", "1"])
        .env("SWARM_OBS_COLLECTOR", format!("http://{}", listener.addr()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let on_disk = home.events();
    assert_eq!(on_disk.len(), 8);
    let mut posted: Vec<Event> = Vec::new();
    while posted.len() < on_disk.len() {
        let req = listener
            .next_request(Duration::from_secs(10))
            .expect("the worker posted its events before exiting");
        assert_eq!(req.request_line, "POST /v1/events HTTP/1.1");
        assert_eq!(req.header("content-type"), Some("application/x-ndjson"));
        for line in req.body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            posted.push(Event::from_json_bytes(line).expect("each posted line is an event"));
        }
    }
    assert_eq!(posted, on_disk, "the posted events are the ones on disk");
}

#[test]
fn the_layer_notifies_start_and_done_through_the_configured_command() {
    let home = TestHome::new();
    let out_file = home.path().join("notified.txt");
    let config = format!(
        "[notify]\nbackend = \"command\"\ndebounce_ms = 0\ncommand = '''printf '%s|%s|%s\\n' \"$SWARM_KIND\" \"$SWARM_SOURCE\" \"$SWARM_BODY\" >> {}'''\n",
        out_file.display()
    );
    std::fs::write(StateRoot::new(home.path()).config_file(), config).unwrap();
    let out = worker(&home, &["2", "1", "1"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // The guard's drop delivers what is queued before the process exits.
    let shown = std::fs::read_to_string(&out_file).unwrap_or_default();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines,
        [
            "start|backend|Started TASK_001",
            "done|backend|Finished TASK_001",
            "start|backend|Started TASK_002",
            "done|backend|Finished TASK_002",
        ],
        "progress events raise nothing; start and done each raise one"
    );
}

/// The example says where its files are, and refuses an argument it cannot use
/// instead of running with a default.
#[test]
fn the_example_worker_says_where_it_writes_and_refuses_bad_arguments() {
    let home = TestHome::new();
    let out = worker(&home, &["banana"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tasks must be a number, not \"banana\""),
        "{err}"
    );
    assert!(err.contains("usage: worker"), "{err}");
    assert!(
        !StateRoot::new(home.path())
            .heartbeat_file("backend")
            .exists(),
        "a refused run wrote a heartbeat"
    );

    let out = worker(&home, &["1", "1", "1", "tiny"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let root = StateRoot::new(home.path());
    for path in [root.heartbeat_file("tiny"), root.log_file("tiny")] {
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
        assert!(path.exists(), "{}", path.display());
    }
}
