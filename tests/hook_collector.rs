//! `swarm-hook` offering events to a collector: a real local HTTP listener receives
//! the POST; a hung one costs no more than the budget; the event is on disk first.

use std::time::{Duration, Instant};

use swarm_obs::{CollectorInfo, Event, Timestamp};
use swarm_obs_suite::{ListenerMode, TestHome, TestListener, fixtures_dir, run_with_stdin};

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
    // The budget is 50 ms; a hook without one would wait for the collector forever.
    assert!(
        took < Duration::from_millis(1500),
        "hook took {took:?} against a hung collector"
    );
    assert_eq!(home.events().len(), 1, "the event is on disk regardless");
}

#[test]
fn a_refused_post_is_one_stderr_line_and_exit_0() {
    let listener = TestListener::start(ListenerMode::Answer(400));
    let home = TestHome::new();
    let out = run_with_stdin(
        home.hook().env("SWARM_OBS_COLLECTOR", listener.addr()),
        stop_fixture(),
    );
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 400") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert_eq!(home.events().len(), 1);
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
    let collector = swarm_obs_suite::Collector::start(&home);
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
    let collector = swarm_obs_suite::Collector::start_with(&home, &["--token", "s3cret"]);
    stop_shown_by(&home, &delivered, collector.pid());
    let logged = home.events();
    assert_eq!(logged.len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while collector.stored_ids() != vec![logged[0].id.to_string()] {
        assert!(Instant::now() < deadline, "{:?}", collector.stored_ids());
        std::thread::sleep(Duration::from_millis(20));
    }
}
