//! `swarm-hook` offering events to a collector: a real local HTTP listener receives
//! the POST; a hung one costs no more than the budget; the event is on disk first.

use std::time::{Duration, Instant};

use swarm_obs::{CollectorInfo, Event, Timestamp};
use swarm_obs_suite::{
    Collector, ListenerMode, TestHome, TestListener, fixtures_dir, run_with_stdin,
};

fn stop_fixture() -> Vec<u8> {
    std::fs::read(fixtures_dir().join("Stop.json")).unwrap()
}

#[test]
fn the_event_is_posted_to_the_collector_named_by_env() {
    let listener = TestListener::start(ListenerMode::Answer(202));
    let home = TestHome::new();
    let out = run_with_stdin(
        home.hook()
            .env("SWARM_OBS_COLLECTOR", format!("http://{}", listener.addr()))
            .env("SWARM_OBS_TOKEN", "s3cret"),
        stop_fixture(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let req = listener
        .next_request(Duration::from_secs(5))
        .expect("no POST arrived");
    // The event is on disk before the POST, so the hook asks only for it to be queued.
    assert_eq!(req.request_line, "POST /v1/events?ack=queued HTTP/1.1");
    assert_eq!(req.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    let posted = Event::from_json_bytes(req.body.trim_ascii_end()).expect("body is one event");
    let on_disk = home.events();
    assert_eq!(
        on_disk,
        vec![posted],
        "the posted event is the one on disk, same id"
    );
}

#[test]
fn the_collector_is_found_through_collector_json() {
    let listener = TestListener::start(ListenerMode::Answer(200));
    let home = TestHome::new();
    let info = CollectorInfo {
        addr: listener.addr(),
        pid: std::process::id(),
        started_at: Timestamp::now(),
        token: None,
        notifications: None,
        socket: None,
    };
    swarm_obs::write_collector_info(
        &swarm_obs::StateRoot::new(home.path()).collector_file(),
        &info,
    )
    .unwrap();
    let out = run_with_stdin(&mut home.hook(), stop_fixture());
    assert_eq!(out.status.code(), Some(0));
    let req = listener
        .next_request(Duration::from_secs(5))
        .expect("no POST arrived");
    assert_eq!(req.header("authorization"), None);
    assert_eq!(
        Event::from_json_bytes(req.body.trim_ascii_end())
            .unwrap()
            .id,
        home.events()[0].id
    );
}

#[test]
fn a_hung_collector_costs_only_the_budget() {
    let listener = TestListener::start(ListenerMode::Hang);
    let home = TestHome::new();
    // Built (and the binary located) before the clock starts.
    let mut hook = home.hook();
    hook.env("SWARM_OBS_COLLECTOR", listener.addr());
    let started = Instant::now();
    let out = run_with_stdin(&mut hook, stop_fixture());
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert!(
        listener.next_request(Duration::from_secs(5)).is_some(),
        "the hook never connected"
    );
    // An event in the log is sent and not waited for; where the hook does wait,
    // its budget (50 ms) bounds it. A hook with neither would wait forever.
    assert!(
        took < Duration::from_millis(1500),
        "hook took {took:?} against a hung collector"
    );
    assert_eq!(home.events().len(), 1, "the event is on disk regardless");
}

/// An event in the log is sent, not waited for: the collector's refusal goes
/// unheard (its catch-up reads the log anyway). Where the hook does wait, because
/// its own append failed and only the collector's commit backs the event, a
/// refusal is one stderr line beside the one about the log, and exit 0.
#[test]
fn a_refused_post_is_one_stderr_line_and_exit_0() {
    let listener = TestListener::start(ListenerMode::Answer(400));
    let home = TestHome::new();
    let out = run_with_stdin(
        home.hook().env("SWARM_OBS_COLLECTOR", listener.addr()),
        stop_fixture(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let req = listener
        .next_request(Duration::from_secs(5))
        .expect("no POST arrived");
    assert_eq!(req.request_line, "POST /v1/events?ack=queued HTTP/1.1");
    assert_eq!(home.events().len(), 1);

    // No log: a link planted where today's event file goes is refused.
    let home = TestHome::new();
    let events = home.path().join("events");
    std::fs::create_dir_all(&events).unwrap();
    let now = Timestamp::now().unix_ms();
    for day in [now, now + 86_400_000] {
        let name = format!("{}.jsonl", Timestamp::from_unix_ms(day).day());
        std::os::unix::fs::symlink("/nonexistent", events.join(name)).unwrap();
    }
    let out = run_with_stdin(
        home.hook().env("SWARM_OBS_COLLECTOR", listener.addr()),
        stop_fixture(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("event not recorded"), "{stderr}");
    assert!(lines[1].contains("HTTP 400"), "{stderr}");
    let req = listener
        .next_request(Duration::from_secs(5))
        .expect("no POST arrived");
    // Answered only once committed: nothing else backs the event.
    assert_eq!(req.request_line, "POST /v1/events HTTP/1.1");
}

/// Sends SIGCONT to a stopped process when dropped, so a failing test does not
/// leave it frozen.
struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child this test started.
        unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGCONT) };
    }
}

/// How many times each of `ids` is stored, polled (bounded) until each is there.
fn stored_counts(collector: &Collector, ids: &[String]) -> Vec<usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = collector.stored_ids();
        let counts: Vec<usize> = ids
            .iter()
            .map(|id| stored.iter().filter(|s| *s == id).count())
            .collect();
        if counts.iter().all(|&n| n > 0) || Instant::now() > deadline {
            return counts;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A collector frozen (SIGSTOP) mid-swarm: the kernel still takes the hook's
/// connection and request, so the hook exits at once rather than after its budget;
/// when the collector wakes it serves the request waiting in its socket. An event
/// of another state root can only arrive that way (the collector's catch-up reads
/// its own log); one of its own root comes by both ways and is stored once.
#[test]
fn a_frozen_collector_does_not_hold_the_hook_and_gets_the_event_when_it_wakes() {
    let home = TestHome::new();
    let elsewhere = TestHome::new();
    // A budget no one would miss: a hook that waited for the frozen collector's
    // answer would take all of it.
    for h in [&home, &elsewhere] {
        std::fs::write(
            h.path().join("config.toml"),
            "[hook]\npost_budget_ms = 10000\n",
        )
        .unwrap();
    }
    let collector = Collector::start(&home);
    let mut hooks = [home.hook(), elsewhere.hook()];
    // Its own root finds it through collector.json; the other is told.
    hooks[1].env("SWARM_OBS_COLLECTOR", collector.addr());
    // SAFETY: kill(2) on the pid of the collector this test started.
    unsafe { libc::kill(collector.pid() as libc::pid_t, libc::SIGSTOP) };
    let thaw = Thaw(collector.pid());
    for hook in &mut hooks {
        let started = Instant::now();
        let out = run_with_stdin(hook, stop_fixture());
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(0));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            took < Duration::from_secs(5),
            "the hook waited {took:?} for a frozen collector"
        );
    }
    let ids = [&home, &elsewhere].map(|h| {
        let events = h.events();
        assert_eq!(events.len(), 1);
        events[0].id.to_string()
    });
    drop(thaw);
    assert_eq!(stored_counts(&collector, &ids), [1, 1]);
    // Catch-up passes (every 250 ms) read the log line of the same event again.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stored_counts(&collector, &ids), [1, 1]);
}

/// A hook that does not wait for the answer still has its POST served, not
/// dropped as a request whose client went away: events of a state root whose
/// log the collector does not read all arrive, once each.
#[test]
fn events_sent_without_waiting_for_the_answer_are_served() {
    let home = TestHome::new();
    let collector = Collector::start(&home);
    let elsewhere = TestHome::new();
    let fixture = std::fs::read(fixtures_dir().join("PreToolUse.json")).unwrap();
    for _ in 0..20 {
        let out = run_with_stdin(
            elsewhere
                .hook()
                .env("SWARM_OBS_COLLECTOR", collector.addr()),
            fixture.clone(),
        );
        assert_eq!(out.status.code(), Some(0));
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ids: Vec<String> = elsewhere
        .events()
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(ids.len(), 20);
    assert_eq!(stored_counts(&collector, &ids), vec![1; 20]);
}

#[test]
fn no_collector_listening_is_silent() {
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = TestHome::new();
    let out = run_with_stdin(
        home.hook()
            .env("SWARM_OBS_COLLECTOR", format!("127.0.0.1:{port}")),
        stop_fixture(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(home.events().len(), 1);
}

#[test]
fn with_a_collector_and_a_notification_both_happen() {
    // The POST and the delivery process run side by side; neither is lost.
    let listener = TestListener::start(ListenerMode::Answer(202));
    let home = TestHome::new();
    let delivered = home.path().join("delivered");
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[notify]\nbackend = \"command\"\ncommand = \"printf '%s\\\\n' \\\"$SWARM_KIND\\\" >> '{}'\"\n",
            delivered.display()
        ),
    )
    .unwrap();
    let out = run_with_stdin(
        home.hook().env("SWARM_OBS_COLLECTOR", listener.addr()),
        stop_fixture(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let req = listener
        .next_request(Duration::from_secs(5))
        .expect("no POST arrived");
    let posted = Event::from_json_bytes(req.body.trim_ascii_end()).expect("one event");
    assert_eq!(home.events(), vec![posted]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&delivered).unwrap_or_default() != "done\n" {
        assert!(
            Instant::now() < deadline,
            "no delivery: {:?}",
            std::fs::read_to_string(&delivered)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A state root whose notifications run `printf "$SWARM_KIND $PPID"` into the
/// returned file, so a test sees which process delivered each.
fn home_with_command_notifications() -> (TestHome, std::path::PathBuf) {
    let home = TestHome::new();
    let delivered = home.path().join("delivered");
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[notify]\nbackend = \"command\"\ncommand = \"printf '%s %s\\\\n' \\\"$SWARM_KIND\\\" \\\"$PPID\\\" >> '{}'\"\n",
            delivered.display()
        ),
    )
    .unwrap();
    (home, delivered)
}

/// Waits for the first delivery line.
fn first_delivery(path: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.ends_with('\n') {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the hook on a Stop (quietly, exit 0) and asserts the process `shower`
/// ran the notification command: a collector that took the hand-off, not a
/// delivery process of the hook's own.
fn stop_shown_by(home: &TestHome, delivered: &std::path::Path, shower: u32) {
    let out = run_with_stdin(&mut home.hook(), stop_fixture());
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(first_delivery(delivered), format!("done {shower}\n"));
}

#[test]
fn a_collector_that_shows_notifications_is_handed_the_hooks() {
    let (home, delivered) = home_with_command_notifications();
    let collector = Collector::start(&home);
    let info = CollectorInfo::read(&home.path().join("collector.json")).unwrap();
    assert_eq!(info.notifications.as_deref(), Some("command"));
    stop_shown_by(&home, &delivered, collector.pid());
}

#[test]
fn a_collector_that_refuses_the_notification_leaves_it_to_the_hook() {
    let (home, delivered) = home_with_command_notifications();
    // collector.json says it shows notifications, but everything is refused.
    let listener = TestListener::start(ListenerMode::Answer(503));
    let info = CollectorInfo {
        addr: listener.addr(),
        pid: std::process::id(),
        started_at: Timestamp::now(),
        token: None,
        notifications: Some("desktop".into()),
        socket: None,
    };
    swarm_obs::write_collector_info(&home.path().join("collector.json"), &info).unwrap();
    let out = run_with_stdin(&mut home.hook(), stop_fixture());
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let paths: Vec<String> = std::iter::from_fn(|| listener.next_request(Duration::from_secs(5)))
        .take(2)
        .map(|r| r.request_line)
        .collect();
    assert!(
        paths.contains(&"POST /v1/notify HTTP/1.1".to_owned()),
        "{paths:?}"
    );
    let line = first_delivery(&delivered);
    assert!(line.starts_with("done "), "{line}");
}

/// A collector that requires a token: the hook reads it from `collector.json` and
/// both its POST and its notification hand-off carry it (a refusal would be a
/// stderr line, and a delivery process of the hook's own).
#[test]
fn a_collector_with_a_token_takes_the_hooks_event_and_notification() {
    let (home, delivered) = home_with_command_notifications();
    let collector = Collector::start_with(&home, &["--token", "s3cret"]);
    stop_shown_by(&home, &delivered, collector.pid());
    let logged = home.events();
    assert_eq!(logged.len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while collector.stored_ids() != vec![logged[0].id.to_string()] {
        assert!(Instant::now() < deadline, "{:?}", collector.stored_ids());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Hooks of the collector's own state root reach it on its Unix socket, which
/// only its user may open. A socket file left behind by a killed collector does
/// not cost a hook its event (it goes over TCP), a new collector takes the socket
/// over, and a stopped one removes it.
#[test]
fn hooks_of_the_state_root_use_the_collectors_unix_socket() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let home = TestHome::new();
    let socket = home.path().join("collector.sock");
    let info_path = home.path().join("collector.json");
    let fixture = std::fs::read(fixtures_dir().join("PreToolUse.json")).unwrap();
    let run_hooks = |n: usize| -> Vec<String> {
        let before = home.events().len();
        for _ in 0..n {
            let out = run_with_stdin(&mut home.hook(), fixture.clone());
            assert_eq!(out.status.code(), Some(0));
            assert!(out.stdout.is_empty() && out.stderr.is_empty());
        }
        let events = home.events();
        assert_eq!(events.len(), before + n);
        events[before..].iter().map(|e| e.id.to_string()).collect()
    };

    let mut collector = Collector::start(&home);
    let info = CollectorInfo::read(&info_path).unwrap();
    assert_eq!(info.socket.as_deref(), Some(socket.as_path()));
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let ids = run_hooks(5);
    assert_eq!(stored_counts(&collector, &ids), vec![1; 5]);
    assert_eq!(collector.metric("swarm_obs_unix_connections_total"), 5);

    // collector.json naming a socket nobody serves: the hooks go over TCP.
    let dead = home.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let mut moved = info.clone();
    moved.socket = Some(dead);
    swarm_obs::write_collector_info(&info_path, &moved).unwrap();
    let ids = run_hooks(3);
    assert_eq!(stored_counts(&collector, &ids), vec![1; 3]);
    assert_eq!(collector.metric("swarm_obs_unix_connections_total"), 5);

    // Killed, it leaves its socket file; the next collector takes it over.
    collector.kill();
    assert!(socket.exists());
    let mut collector = Collector::start(&home);
    let ids = run_hooks(2);
    assert_eq!(stored_counts(&collector, &ids), vec![1; 2]);
    assert_eq!(collector.metric("swarm_obs_unix_connections_total"), 2);

    // Stopped, it removes the socket with collector.json.
    assert!(collector.terminate().success());
    assert!(!socket.exists() && !info_path.exists());
}
