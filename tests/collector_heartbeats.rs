//! The collector's heartbeat watch as a real process: a worker process killed with
//! SIGKILL becomes a `dead` alert; a remote worker that stops posting goes late,
//! then down, then recovers, each as an alert event a viewer sees.

use std::time::Duration;

use swarm_obs::{StateRoot, Timestamp};
use swarm_obs_suite::{Collector, SseStream, TestHome};

const WAIT: Duration = Duration::from_secs(30);

fn heartbeat(worker: &str, host: &str, pid: u32, interval_ms: u64) -> String {
    format!(
        r#"{{"timestamp":"{}","worker":"{worker}","task":"TASK_1","action":"working","pid":{pid},"host":"{host}","started_at":"{}","interval_ms":{interval_ms},"state":"working","seq":1,"dropped":0}}"#,
        Timestamp::now(),
        Timestamp::now()
    )
}

/// The next alert on `stream`, parsed.
fn next_alert(stream: &SseStream) -> swarm_obs::Event {
    let m = stream.next_event(WAIT).expect("an alert within the bound");
    assert_eq!(m.event.as_deref(), Some("alert"), "{m:?}");
    swarm_obs::Event::from_json(&m.data).unwrap()
}

#[test]
fn a_worker_killed_with_sigkill_becomes_a_dead_alert() {
    let home = TestHome::new();
    let root = StateRoot::new(home.path());
    // A real process stands in for the worker; its heartbeat file names its pid.
    let mut worker = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    std::fs::create_dir_all(root.heartbeats_dir()).unwrap();
    // A long interval, so only the process check can find it dead quickly.
    let beat = heartbeat("backend", swarm_obs::hostname(), worker.id(), 600_000);
    swarm_obs::write_atomic(&root.heartbeat_file("backend"), beat.as_bytes()).unwrap();

    // Alerts go through the sound rules: a command backend records what is shown.
    let notified = home.path().join("notified.txt");
    let config = format!(
        "[notify]\nbackend = \"command\"\ncommand = '''printf '%s|%s\\n' \"$SWARM_KIND\" \"$SWARM_BODY\" >> {}'''\n",
        notified.display()
    );
    std::fs::write(root.config_file(), config).unwrap();

    let c = Collector::start(&home);
    let alerts = SseStream::open(c.addr(), "/v1/stream?kind=alert&n=0", &[]);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let w = c.get_json("/v1/workers");
        if w["workers"][0]["state"] == "alive" {
            assert_eq!(w["workers"][0]["via"], "file");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never alive: {w}");
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let alert = next_alert(&alerts);
    assert_eq!(alert.source, "backend");
    assert_eq!(alert.fields["state"], "dead", "{alert:?}");
    assert_eq!(alert.fields["previous"], "alive");
    assert_eq!(alert.level, swarm_obs::Level::Error);
    assert_eq!(alert.task.as_deref(), Some("TASK_1"));
    assert_eq!(c.get_json("/v1/workers")["workers"][0]["state"], "dead");
    // The alert is stored, and written to the event log like every event.
    let stored = c.get_json("/v1/events?kind=alert");
    assert_eq!(stored["events"][0]["id"], alert.id.to_string());
    assert!(home.events().iter().any(|e| e.id == alert.id));
    // The death is announced as an error (Basso on macOS, dialog-error on Linux).
    let expected = format!("error|{}\n", alert.msg);
    let deadline = std::time::Instant::now() + WAIT;
    while std::fs::read_to_string(&notified).unwrap_or_default() != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "no notification: {:?}",
            std::fs::read_to_string(&notified)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_remote_worker_goes_late_then_down_then_recovers() {
    let home = TestHome::new();
    // Only going down is announced as an error; late and recovered are quiet.
    let notified = home.path().join("notified.txt");
    let config = format!(
        "[notify]\nbackend = \"command\"\ndebounce_ms = 0\ncommand = '''printf '%s|%s\\n' \"$SWARM_KIND\" \"$SWARM_BODY\" >> {}'''\n",
        notified.display()
    );
    std::fs::write(StateRoot::new(home.path()).config_file(), config).unwrap();
    let c = Collector::start_with(&home, &["--heartbeat-grace-ms", "3000"]);
    let alerts = SseStream::open(c.addr(), "/v1/stream?kind=alert&n=0", &[]);
    let post = |body: &str| c.post("/v1/heartbeats", "application/json", body.as_bytes());
    let (status, text) = post(&heartbeat("remote", "elsewhere", 4242, 300));
    assert_eq!(status, 202, "{text}");
    let w = c.get_json("/v1/workers");
    assert_eq!(w["workers"][0]["host"], "elsewhere");
    assert_eq!(w["workers"][0]["via"], "post");

    // No more beats: late after the interval, down after interval + grace (wide
    // enough that the watch, checking twice a second, cannot skip `late`).
    let late = next_alert(&alerts);
    assert_eq!(late.fields["state"], "late", "{late:?}");
    assert_eq!(late.host.as_deref(), Some("elsewhere"));
    assert_eq!(late.level, swarm_obs::Level::Warn);
    let down = next_alert(&alerts);
    assert_eq!(down.fields["state"], "down", "{down:?}");
    assert_eq!(down.fields["previous"], "late");
    assert_eq!(down.level, swarm_obs::Level::Error);
    // One delivery thread shows alerts in order: once the down one is shown, a
    // late one would have been too.
    let expected = format!("error|{}\n", down.msg);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let shown = std::fs::read_to_string(&notified).unwrap_or_default();
        if shown.contains(&expected) {
            assert_eq!(shown, expected, "only `down` is announced");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no notification: {shown:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (status, _) = post(&heartbeat("remote", "elsewhere", 4242, 60_000));
    assert_eq!(status, 202);
    let back = next_alert(&alerts);
    assert_eq!(back.fields["state"], "alive");
    assert_eq!(back.fields["recovered"], true);

    // Bad heartbeats are refused with the reason.
    for (body, want) in [("nope", "not JSON"), ("{}", "not a heartbeat")] {
        let (status, text) = post(body);
        assert_eq!(status, 400);
        assert!(text.contains(want), "{text}");
    }
    let answer =
        swarm_obs_suite::announce_huge_post(c.addr(), "/v1/heartbeats", "application/json", "{");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("byte cap"), "{answer}");
}
