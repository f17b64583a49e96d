//! The collector as a real process: the real hook posting into it, ingest with
//! deduplication, catch-up from the event log, bad bodies, live SSE and WebSocket
//! viewers with backfill and resume, and the token check.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use swarm_obs::{Event, EventLog, Kind, StateRoot};
use swarm_obs_suite::{
    Collector, SseStream, TestHome, announce_huge_post, bin, fixtures_dir, run_with_stdin,
};

const WAIT: Duration = Duration::from_secs(30);

fn events(n: usize, source: &str) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new(source, Kind::Log, format!("event {i}")))
        .collect()
}

/// Polls until `count` events are stored (or the generous bound passes).
fn wait_for_count(c: &Collector, count: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let ids = c.stored_ids();
        if ids.len() >= count || Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_real_hook_posts_into_the_real_collector() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let fixture = std::fs::read(fixtures_dir().join("Stop.json")).unwrap();
    let out = run_with_stdin(&mut home.hook(), fixture);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_disk = home.events();
    assert_eq!(on_disk.len(), 1);
    // Whether it came by POST or by catch-up, it is stored exactly once.
    let ids = wait_for_count(&c, 1);
    assert_eq!(ids, vec![on_disk[0].id.to_string()]);
    // Posting it again is recognised as a duplicate.
    let answer = c.post_events(&on_disk);
    assert!(answer.contains("\"duplicates\":1"), "{answer}");
    assert_eq!(c.stored_ids().len(), 1);
    let sessions = c.get_json("/v1/sessions");
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
}

#[test]
fn post_and_catch_up_never_duplicate() {
    let home = TestHome::new();
    let log = EventLog::new(StateRoot::new(home.path()));
    let batch = events(300, "dup");
    for ev in &batch {
        log.append(ev).unwrap();
    }
    let mut c = Collector::start(&home);
    c.post_events(&batch[..150]);
    c.post_events(&batch);
    let ids = wait_for_count(&c, 300);
    assert_eq!(ids.len(), 300);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 300);
    // After a restart the persisted offsets keep catch-up from reading twice.
    c.terminate();
    let c = Collector::start(&home);
    c.post_events(&batch[..10]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(c.stored_ids().len(), 300);
    let metrics = c.metrics();
    assert!(
        metrics.contains("swarm_obs_events_duplicate_total 10"),
        "{metrics}"
    );
}

#[test]
fn events_written_while_down_arrive_and_sigterm_cleans_up() {
    let home = TestHome::new();
    let root = StateRoot::new(home.path());
    let mut c = Collector::start(&home);
    #[cfg(unix)]
    for name in [
        "collector.db",
        "collector.db-wal",
        "collector.db-shm",
        "collector.json",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is {mode:o}");
    }
    let status = c.terminate();
    assert!(status.success(), "{status}");
    assert!(
        !root.collector_file().exists(),
        "collector.json left behind"
    );

    let log = EventLog::new(root.clone());
    let batch = events(50, "offline");
    for ev in &batch {
        log.append(ev).unwrap();
    }
    // A torn last line (a writer mid-write) must wait until it is whole.
    let late = Event::new("offline", Kind::Done, "finished late");
    let line = late.to_json_line();
    let path = root.event_file(&late.ts.day());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&line.as_bytes()[..30]).unwrap();

    let c = Collector::start(&home);
    let ids = wait_for_count(&c, 50);
    assert_eq!(ids.len(), 50);
    f.write_all(&line.as_bytes()[30..]).unwrap();
    let ids = wait_for_count(&c, 51);
    assert_eq!(ids.len(), 51);
    assert_eq!(
        ids[0],
        late.id.to_string(),
        "the completed line arrives last"
    );
}

#[test]
fn ack_queued_answers_before_the_commit_and_the_event_is_still_stored_once() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let ev = Event::new("hook", Kind::Log, "queued");
    let line = ev.to_json_line();
    let (status, text) = c.post(
        "/v1/events?ack=queued",
        "application/x-ndjson",
        line.as_bytes(),
    );
    assert_eq!(status, 202, "{text}");
    assert_eq!(text.trim(), r#"{"queued":1}"#);
    assert_eq!(wait_for_count(&c, 1), vec![ev.id.to_string()]);
    // The same event again (as catch-up would bring it) stays one row.
    let (status, _) = c.post(
        "/v1/events?ack=queued",
        "application/x-ndjson",
        line.as_bytes(),
    );
    assert_eq!(status, 202);
    let answer = c.post_events(std::slice::from_ref(&ev));
    assert!(answer.contains("\"duplicates\":1"), "{answer}");
    assert_eq!(c.stored_ids().len(), 1);
    // An unknown mode is refused by name, and nothing is stored from it.
    let other = Event::new("hook", Kind::Log, "never").to_json_line();
    for query in ["ack=later", "ack=", "x=1&ack=QUEUED"] {
        let (status, text) = c.post(
            &format!("/v1/events?{query}"),
            "application/x-ndjson",
            other.as_bytes(),
        );
        assert_eq!(status, 400, "{query}: {text}");
        assert!(text.contains("`ack="), "{query}: {text}");
    }
    assert_eq!(c.stored_ids().len(), 1);
}

#[test]
fn notifications_are_shown_when_handed_over_and_bad_jobs_are_refused() {
    let home = TestHome::new();
    let shown = home.path().join("shown");
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[notify]\nbackend = \"command\"\ncommand = \"printf '%s|%s\\\\n' \\\"$SWARM_KIND\\\" \\\"$SWARM_TITLE\\\" >> '{}'\"\n",
            shown.display()
        ),
    )
    .unwrap();
    let mut c = Collector::start(&home);
    let json = "application/json";
    let job = br#"{"show":{"kind":"done","title":"proj done","body":"all green","urgency":"normal","source":"proj"}}"#;
    let (status, text) = c.post("/v1/notify", json, job);
    assert_eq!(status, 202, "{text}");
    let deadline = Instant::now() + WAIT;
    while std::fs::read_to_string(&shown).unwrap_or_default() != "done|proj done\n" {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            std::fs::read_to_string(&shown)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for (ctype, body, want_status, want) in [
        (json, &b"garbage"[..], 400, "not a notification job"),
        (json, b"", 400, "not a notification job"),
        (json, &job[..40], 400, "not a notification job"),
        (json, br#"{"show":{"kind":"done"}}"#, 400, "title"),
        (json, br#"{"launch":"rockets"}"#, 400, "unknown variant"),
        ("text/plain", job, 415, "Content-Type"),
    ] {
        let (status, text) = c.post("/v1/notify", ctype, body);
        assert_eq!(status, want_status, "{text}");
        assert!(text.contains(want), "{text} lacks {want:?}");
    }
    let answer = announce_huge_post(c.addr(), "/v1/notify", json, "{");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("over the 65536 byte cap"), "{answer}");
    assert!(c.is_running());
    assert_eq!(
        std::fs::read_to_string(&shown).unwrap(),
        "done|proj done\n",
        "nothing refused was shown"
    );

    // A collector that shows no notifications says so, and its collector.json too.
    let quiet = TestHome::new();
    std::fs::write(
        quiet.path().join("config.toml"),
        "[notify]\nbackend = \"off\"\n",
    )
    .unwrap();
    let q = Collector::start(&quiet);
    let info = swarm_obs::CollectorInfo::read(&quiet.path().join("collector.json")).unwrap();
    assert_eq!(info.notifications, None);
    let (status, text) = q.post("/v1/notify", json, job);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("show it yourself"), "{text}");
}

#[test]
fn bad_bodies_are_refused_clearly_and_the_collector_keeps_running() {
    let home = TestHome::new();
    let mut c = Collector::start(&home);
    let good = Event::new("ok", Kind::Log, "fine").to_json_line();
    let nd = "application/x-ndjson";
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (nd, b"garbage".to_vec(), 400, "event 1 (line 1"),
        (nd, Vec::new(), 400, "empty body"),
        (
            nd,
            format!("{good}{good}{{\"v\":1").into_bytes(),
            400,
            "event 3 (line 3",
        ),
        (nd, good.as_bytes()[..40].to_vec(), 400, "event 1"),
        (
            nd,
            good.replace("\"source\":\"ok\"", "\"source\":\"\"")
                .into_bytes(),
            400,
            "`source`",
        ),
        (
            "application/json",
            format!("[{},{{}}]", good.trim()).into_bytes(),
            400,
            "array index 1",
        ),
        ("text/html", good.clone().into_bytes(), 415, "Content-Type"),
        (nd, vec![0xff, 0xfe, 0x00], 400, "event 1"),
    ];
    for (ctype, body, status, want) in cases {
        let (got, text) = c.post("/v1/events", ctype, &body);
        assert_eq!(
            got,
            status,
            "{ctype} {:?}: {text}",
            String::from_utf8_lossy(&body)
        );
        assert!(text.contains(want), "{text} lacks {want:?}");
    }
    // 100 MB announced: refused with 413 before the body is read.
    let head = announce_huge_post(c.addr(), "/v1/events", nd, &good);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    // 20 MB actually sent, chunked, without a length: cut off at the 16 MiB cap.
    let head = raw_chunked_post(c.addr(), 20 << 20);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    assert!(c.is_running());
    assert_eq!(c.get_json("/healthz")["status"], "ok");
    c.post_events(&[Event::new("ok", Kind::Log, "still fine")]);
    assert_eq!(
        c.stored_ids().len(),
        1,
        "nothing from a refused body is stored"
    );
    let metrics = c.metrics();
    assert!(
        metrics.contains("swarm_obs_requests_rejected_total 10"),
        "{metrics}"
    );
}

/// Streams `size` bytes of spaces as a chunked POST from a separate thread (the
/// server may stop reading) and returns the start of the response.
fn raw_chunked_post(addr: &str, size: usize) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut w = s.try_clone().unwrap();
    let host = addr.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = write!(
            w,
            "POST /v1/events HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..size / chunk.len() {
            if write!(w, "{:x}\r\n", chunk.len()).is_err()
                || w.write_all(&chunk).is_err()
                || w.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    let mut head = [0u8; 64];
    let n = s.read(&mut head).unwrap_or(0);
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    String::from_utf8_lossy(&head[..n]).into_owned()
}

fn ids_of(stream: &SseStream, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let m = stream
                .next_event(WAIT)
                .unwrap_or_else(|| panic!("SSE message {i} of {n} did not arrive"));
            assert_ne!(m.event.as_deref(), Some("lagged"), "{m:?}");
            m.id.expect("event id")
        })
        .collect()
}

#[test]
fn sse_backfills_streams_live_and_resumes_without_gap_or_duplicate() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let first = events(150, "sse");
    c.post_events(&first);
    c.post_events(&events(5, "other"));

    let s = SseStream::open(c.addr(), "/v1/stream?source=sse", &[]);
    let want: Vec<String> = first[50..].iter().map(|e| e.id.to_string()).collect();
    assert_eq!(
        ids_of(&s, 100),
        want,
        "backfill is the last 100, oldest first"
    );

    let live = events(10, "sse");
    c.post_events(&live);
    let got = ids_of(&s, 10);
    assert_eq!(
        got,
        live.iter().map(|e| e.id.to_string()).collect::<Vec<_>>()
    );
    let last_seen = got.last().unwrap().clone();
    drop(s);

    // Missed while disconnected, including an event with an older id (as catch-up
    // from the event log produces): all of it arrives once on resume.
    let missed = events(20, "sse");
    c.post_events(&missed);
    let mut older = Event::new("sse", Kind::Log, "older id, stored late");
    older.id = swarm_obs::EventId::at(swarm_obs::Timestamp::from_unix_ms(
        first[0].ts.unix_ms() - 1000,
    ));
    c.post_events(std::slice::from_ref(&older));
    let s = SseStream::open(
        c.addr(),
        "/v1/stream?source=sse",
        &[("Last-Event-ID", &last_seen)],
    );
    let mut want: Vec<String> = missed.iter().map(|e| e.id.to_string()).collect();
    want.push(older.id.to_string());
    assert_eq!(ids_of(&s, 21), want);
    let after = events(3, "sse");
    c.post_events(&after);
    assert_eq!(
        ids_of(&s, 3),
        after.iter().map(|e| e.id.to_string()).collect::<Vec<_>>()
    );
    assert!(
        s.next_event(Duration::from_millis(300)).is_none(),
        "no duplicate follows"
    );

    // Filters apply to live events too.
    let errs = SseStream::open(c.addr(), "/v1/stream?n=0&level=error&q=disk", &[]);
    let mut bad = Event::new("w", Kind::Error, "disk full");
    bad.session = Some("s".into());
    c.post_events(&[
        Event::new("w", Kind::Error, "other"),
        Event::new("w", Kind::Log, "disk ok"),
        bad.clone(),
    ]);
    let m = errs.next_event(WAIT).expect("the matching event");
    assert_eq!(m.id, Some(bad.id.to_string()));
    assert_eq!(m.event.as_deref(), Some("error"));
    let data: Event = Event::from_json(&m.data).unwrap();
    assert_eq!(data, bad);
}

#[test]
fn a_viewer_that_never_reads_does_not_stall_the_others() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    // The slow viewer: asks for a stream and never reads a byte.
    let mut slow = std::net::TcpStream::connect(c.addr()).unwrap();
    write!(
        slow,
        "GET /v1/stream?n=0 HTTP/1.1\r\nhost: {}\r\n\r\n",
        c.addr()
    )
    .unwrap();
    let fast = SseStream::open(c.addr(), "/v1/stream?n=0", &[]);
    // Enough data to fill every socket buffer between the slow viewer and the server.
    let msg = "x".repeat(2000);
    let total = 20_000;
    let posted = Instant::now();
    for chunk in 0..total / 500 {
        let batch: Vec<Event> = (0..500)
            .map(|i| Event::new("load", Kind::Log, format!("{chunk}/{i} {msg}")))
            .collect();
        c.post_events(&batch);
    }
    let marker = Event::new("load", Kind::Done, "the end");
    c.post_events(std::slice::from_ref(&marker));
    assert!(
        posted.elapsed() < WAIT,
        "ingest stalled behind a slow viewer"
    );
    // The fast viewer sees the end; anything it missed is reported, never silent.
    let (mut seen, mut missed) = (0u64, 0u64);
    loop {
        let m = fast.next_event(WAIT).expect("the fast viewer stalled");
        if m.event.as_deref() == Some("lagged") {
            let v: serde_json::Value = serde_json::from_str(&m.data).unwrap();
            missed += v["missed"].as_u64().unwrap();
            continue;
        }
        seen += 1;
        if m.id == Some(marker.id.to_string()) {
            break;
        }
    }
    assert_eq!(seen + missed, total as u64 + 1);
    drop(slow);
}

#[test]
fn websocket_viewers_subscribe_to_channels() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{}/v1/ws", c.addr())).expect("WebSocket handshake");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(WAIT)).unwrap();
    }
    ws.send(tungstenite::Message::text(
        r#"{"type":"subscribe","channels":["kind:error","source:api"]}"#,
    ))
    .unwrap();
    let read = |ws: &mut tungstenite::WebSocket<_>| -> serde_json::Value {
        loop {
            if let tungstenite::Message::Text(t) = ws.read().expect("WebSocket message") {
                return serde_json::from_str(t.as_str()).unwrap();
            }
        }
    };
    let ack = read(&mut ws);
    assert_eq!(ack["type"], "subscribed", "{ack}");
    ws.send(tungstenite::Message::text(
        r#"{"type":"subscribe","channels":["bogus"]}"#,
    ))
    .unwrap();
    let err = read(&mut ws);
    assert_eq!(err["type"], "error", "{err}");

    let skipped = Event::new("worker", Kind::Log, "not subscribed");
    let wanted = Event::new("worker", Kind::Error, "boom");
    let by_source = Event::new("api", Kind::Log, "hello");
    c.post_events(&[skipped, wanted.clone(), by_source.clone()]);
    for want in [&wanted, &by_source] {
        let m = read(&mut ws);
        assert_eq!(m["type"], "event", "{m}");
        assert_eq!(m["event"], want.kind.as_str());
        assert_eq!(m["data"]["id"], want.id.to_string());
        assert_eq!(m["timestamp"], want.ts.to_string());
    }
    ws.send(tungstenite::Message::text(
        r#"{"type":"unsubscribe","channels":["kind:error"]}"#,
    ))
    .unwrap();
    assert_eq!(read(&mut ws)["type"], "unsubscribed");
    let _ = ws.close(None);
}

#[test]
fn a_token_is_required_when_configured() {
    let home = TestHome::new();
    // Notifications handed over are shown by a command, so /v1/notify accepts them
    // and the test can see which ones were shown.
    let shown = home.path().join("shown");
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[notify]\nbackend = \"command\"\ncommand = \"printf '%s\\\\n' \\\"$SWARM_TITLE\\\" >> '{}'\"\n",
            shown.display()
        ),
    )
    .unwrap();
    let c = Collector::start_with(&home, &["--token", "s3cret"]);
    let info =
        swarm_obs::CollectorInfo::read(&StateRoot::new(home.path()).collector_file()).unwrap();
    assert_eq!(info.token.as_deref(), Some("s3cret"));
    let agent = swarm_obs_suite::http();
    let refused = |resp: &mut ureq::http::Response<ureq::Body>, what: &str| {
        assert_eq!(resp.status(), 401, "{what}");
        let text = resp.body_mut().read_to_string().unwrap();
        assert!(text.contains("bearer token"), "{what}: {text}");
    };

    // Every read, the live streams, health, metrics and unknown paths: refused
    // without the token and with a wrong one.
    let gets = [
        "/healthz",
        "/metrics",
        "/v1/events",
        "/v1/sources",
        "/v1/sessions",
        "/v1/workers",
        "/v1/activity",
        "/v1/probes",
        "/v1/stream",
        "/v1/ws",
        "/v1/no-such-endpoint",
        "/no-such-page",
    ];
    for path in gets {
        refused(&mut agent.get(c.url(path)).call().unwrap(), path);
        let mut resp = agent
            .get(c.url(path))
            .header("authorization", "Bearer wrong")
            .call()
            .unwrap();
        refused(&mut resp, &format!("{path} with a wrong token"));
        let mut resp = agent
            .get(c.url(&format!("{path}?access_token=wrong")))
            .call()
            .unwrap();
        refused(&mut resp, &format!("{path} with a wrong query token"));
    }
    // A real WebSocket upgrade without the token is refused before it upgrades.
    match tungstenite::connect(format!("ws://{}/v1/ws", c.addr())) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        Err(e) => panic!("WebSocket without a token: {e}"),
        Ok(_) => panic!("WebSocket without a token was accepted"),
    }
    let mut upgrade = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/v1/ws",
        c.addr()
    ))
    .unwrap();
    upgrade
        .headers_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    match tungstenite::connect(upgrade) {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        Err(e) => panic!("WebSocket with a wrong token: {e}"),
        Ok(_) => panic!("WebSocket with a wrong token was accepted"),
    }

    // Every ingest endpoint: refused without the token, with a wrong one, and with
    // the right one in the query (URLs leak, so ingest takes the header only).
    let json = "application/json";
    let event = Event::new("t", Kind::Log, "authorised");
    let heartbeat = format!(
        r#"{{"timestamp":"{now}","worker":"remote","task":"TASK_1","action":"working","pid":4242,"host":"elsewhere","started_at":"{now}","interval_ms":600000,"state":"working","seq":1,"dropped":0}}"#,
        now = swarm_obs::Timestamp::now()
    );
    let posts: [(&str, &str, Vec<u8>, u16); 6] = [
        ("/v1/events", json, event.to_json_line().into_bytes(), 202),
        (
            "/v1/events",
            "application/x-ndjson",
            Event::new("t", Kind::Log, "second").to_json_line().into_bytes(),
            202,
        ),
        ("/v1/heartbeats", json, heartbeat.into_bytes(), 202),
        (
            "/v1/notify",
            json,
            br#"{"show":{"kind":"done","title":"authorised","body":"b","urgency":"normal","source":"t"}}"#.to_vec(),
            202,
        ),
        ("/v1/logs", json, br#"{"resourceLogs":[]}"#.to_vec(), 200),
        ("/v1/metrics", json, br#"{"resourceMetrics":[]}"#.to_vec(), 200),
    ];
    for (path, ctype, body, _) in &posts {
        // One keep-alive agent for all: a refusal that comes before the body was
        // read says `connection: close`, so the agent never sends the next request
        // into a connection the server is closing.
        let send = |url: String, auth: Option<&str>| {
            let mut req = agent.post(&url).header("content-type", *ctype);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req
                .send(&body[..])
                .unwrap_or_else(|e| panic!("POST {url} ({auth:?}): {e}"));
            assert_eq!(
                resp.headers().get("connection").map(|v| v.as_bytes()),
                Some(&b"close"[..]),
                "POST {url} refused with its body unread"
            );
            resp
        };
        refused(&mut send(c.url(path), None), path);
        refused(
            &mut send(c.url(path), Some("Bearer wrong")),
            &format!("{path} with a wrong token"),
        );
        refused(
            &mut send(c.url(path), Some("s3cret")),
            &format!("{path} with the token but not as a bearer"),
        );
        refused(
            &mut send(c.url(&format!("{path}?access_token=s3cret")), None),
            &format!("{path} with the token in the query"),
        );
    }
    // Nothing refused reached the store, the workers or the desktop.
    assert_eq!(c.stored_ids(), Vec::<String>::new());
    assert_eq!(c.get_json("/v1/workers")["workers"], serde_json::json!([]));

    // With the token (Collector sends it from collector.json as a bearer), every
    // endpoint answers as it would without a token configured.
    for (path, ctype, body, want) in &posts {
        let (status, text) = c.post(path, ctype, body);
        assert_eq!(status, *want, "{path}: {text}");
    }
    assert_eq!(c.stored_ids().len(), 2);
    assert_eq!(c.get_json("/v1/workers")["workers"][0]["worker"], "remote");
    let deadline = Instant::now() + WAIT;
    while std::fs::read_to_string(&shown).unwrap_or_default() != "authorised\n" {
        assert!(
            Instant::now() < deadline,
            "shown: {:?}",
            std::fs::read_to_string(&shown)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.get_json("/healthz")["status"], "ok");
    assert!(c.metrics().contains("swarm_obs_events_ingested_total"));
    for path in ["/v1/sources", "/v1/sessions", "/v1/activity", "/v1/probes"] {
        c.get_json(path);
    }
    let resp = c.get("/v1/no-such-endpoint").call().unwrap();
    assert_eq!(resp.status(), 404, "an unknown path, once authorised");
    let stream = SseStream::open(
        c.addr(),
        "/v1/stream?n=10",
        &[("authorization", "Bearer s3cret")],
    );
    let first = stream.next_event(WAIT).expect("backfill with the token");
    assert_eq!(first.event.as_deref(), Some("log"));
    drop(stream);
    // A GET may carry the token as a query parameter (a browser's EventSource and
    // WebSocket cannot set headers); a POST may not (above).
    let q = "?access_token=s3cret";
    for path in [
        "/v1/events",
        "/v1/workers",
        "/v1/activity",
        "/healthz",
        "/metrics",
    ] {
        let resp = agent.get(c.url(&format!("{path}{q}"))).call().unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let _ = SseStream::open(c.addr(), &format!("/v1/stream{q}&n=0"), &[]);
    for url in [
        format!("ws://{}/v1/ws{q}", c.addr()),
        format!("ws://{}/v1/ws", c.addr()),
    ] {
        let mut req = tungstenite::client::IntoClientRequest::into_client_request(&url).unwrap();
        if !url.contains(q) {
            req.headers_mut()
                .insert("authorization", "Bearer s3cret".parse().unwrap());
        }
        let (mut ws, resp) = tungstenite::connect(req).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(resp.status(), 101, "{url}");
        let _ = ws.close(None);
    }

    // The dashboard page and its assets need no token: they hold no data, and the
    // page is what asks for the token.
    for path in [
        "/",
        "/index.html",
        "/assets/app.js",
        "/assets/app.css",
        "/assets/icon.svg",
    ] {
        assert_eq!(
            agent.get(c.url(path)).call().unwrap().status(),
            200,
            "{path}"
        );
    }
    assert_eq!(
        agent.get(c.url("/assets/nope.js")).call().unwrap().status(),
        404,
        "an unknown asset is simply not there"
    );

    // A non-loopback address without a token is refused before binding.
    let out = std::process::Command::new(swarm_obs_suite::bin("swarm-obs"))
        .args(["serve", "--addr", "0.0.0.0:0", "--home"])
        .arg(home.path())
        .env_remove("SWARM_OBS_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs --token"), "{stderr}");
}

#[test]
fn a_killed_collector_loses_nothing_that_reached_the_log() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let home = TestHome::new();
    let root = StateRoot::new(home.path());
    let mut c = Collector::start(&home);
    let addr = swarm_obs::CollectorAddress::parse(c.addr()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    // Four real hooks, invoked again and again (each finds the collector itself).
    for _ in 0..4 {
        let mut cmd = home.hook();
        let stop = stop.clone();
        let fixture = std::fs::read(fixtures_dir().join("PostToolUse.json")).unwrap();
        writers.push(std::thread::spawn(move || {
            for _ in 0..500 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let out = run_with_stdin(&mut cmd, fixture.clone());
                assert_eq!(out.status.code(), Some(0));
            }
        }));
    }
    // Four workers: append to the log first, then post, as the library's shipper does.
    for w in 0..4 {
        let log = EventLog::new(root.clone());
        let client = swarm_obs::CollectorClient::new(addr.clone(), Duration::from_millis(200));
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            for i in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let ev = Event::new(format!("worker-{w}"), Kind::Progress, format!("step {i}"));
                log.append(&ev).unwrap();
                let _ = client.post(std::slice::from_ref(&ev));
            }
        }));
    }
    let lines = || home.event_lines().len();
    let deadline = Instant::now() + WAIT;
    while lines() < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    c.kill();
    let killed_at = lines();
    while lines() < killed_at + 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = Collector::start(&home);
    while lines() < killed_at + 600 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let on_disk: HashSet<String> = home.events().iter().map(|e| e.id.to_string()).collect();
    assert!(
        on_disk.len() > killed_at,
        "writers kept going while the collector was down"
    );
    let deadline = Instant::now() + WAIT;
    let mut stored = c.stored_ids();
    while stored.len() < on_disk.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        stored = c.stored_ids();
    }
    let unique: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    assert_eq!(unique, on_disk, "the store and the event log differ");
}

#[test]
fn queries_filter_page_and_summarise() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let hook = |agent: Option<&str>, hook: &str, tool: Option<&str>, kind: Kind| {
        let mut e = Event::new("proj", kind, format!("{hook} {}", tool.unwrap_or("")));
        e.session = Some("sess-1".into());
        e.agent = agent.map(str::to_owned);
        e.agent_type = agent.map(|_| "general-purpose".to_owned());
        e.hook = Some(hook.into());
        e.tool = tool.map(str::to_owned);
        e
    };
    let session = vec![
        hook(None, "SessionStart", None, Kind::Start),
        hook(None, "PreToolUse", Some("Bash"), Kind::Hook),
        hook(None, "PreToolUse", Some("Read"), Kind::Hook),
        hook(Some("sub-1"), "PreToolUse", Some("Bash"), Kind::Hook),
        hook(
            Some("sub-1"),
            "PostToolUseFailure",
            Some("Bash"),
            Kind::Error,
        ),
        hook(None, "Stop", None, Kind::Done),
    ];
    c.post_events(&session);
    c.post_events(&events(250, "worker"));

    // Filters.
    let count = |q: &str| {
        c.get_json(&format!("/v1/events?limit=1000&{q}"))["events"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count("source=proj"), 6);
    assert_eq!(count("session=sess-1&agent=main"), 4);
    assert_eq!(count("agent=sub-1"), 2);
    assert_eq!(count("kind=error"), 1);
    assert_eq!(count("level=error"), 1);
    assert_eq!(count("q=Read%7CBash&source=proj"), 4);
    assert_eq!(count("q=event%2024[0-9]"), 10);
    let first = session[0].ts;
    assert_eq!(count(&format!("source=proj&until={first}")), 0);
    assert_eq!(count(&format!("source=proj&since={first}")), 6);
    for bad in [
        "kind=nope",
        "level=loud",
        "q=(",
        "since=yesterday",
        "limit=x",
        "cursor=x",
    ] {
        let mut resp = c.get(&format!("/v1/events?{bad}")).call().unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let text = resp.body_mut().read_to_string().unwrap();
        let name = bad.split('=').next().unwrap();
        assert!(text.contains(&format!("`{name}`")), "{bad}: {text}");
    }

    // Pages of 100 cover everything once, newest first.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = c.get_json(&format!(
            "/v1/events?source=worker&limit=100&cursor={cursor}"
        ));
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["msg"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(n) => cursor = n.to_owned(),
            None => break,
        }
    }
    let want: Vec<String> = (0..250).rev().map(|i| format!("event {i}")).collect();
    assert_eq!(seen, want);

    let sources = c.get_json("/v1/sources");
    let proj = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "proj")
        .unwrap();
    assert_eq!(proj["events"], 6);
    assert_eq!(proj["errors"], 1);

    let sessions = c.get_json("/v1/sessions");
    let s = &sessions["sessions"][0];
    assert_eq!(s["session"], "sess-1");
    assert_eq!(s["events"], 6);
    assert_eq!(s["errors"], 1);
    assert_eq!(s["tools"]["Bash"], 2);
    assert_eq!(s["tools"]["Read"], 1);
    let agents = s["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{s}");
    let sub = agents.iter().find(|a| a["agent"] == "sub-1").unwrap();
    assert_eq!(sub["agent_type"], "general-purpose");
    assert_eq!(sub["tool_calls"], 1);
    assert_eq!(sub["errors"], 1);
    assert!(s["duration_ms"].as_i64().unwrap() >= 0);
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let home = TestHome::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(swarm_obs_suite::bin("swarm-obs"))
        .args(["serve", "--addr", &addr, "--home"])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("--addr 127.0.0.1:0"), "{stderr}");
    assert_eq!(stderr.matches("in use").count(), 1, "said once: {stderr}");
    assert!(!StateRoot::new(home.path()).collector_file().exists());
}

#[test]
fn the_dashboard_is_served_with_a_strict_policy_and_revalidates() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let agent = swarm_obs_suite::http();
    for (path, ctype) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let mut resp = agent.get(c.url(path)).call().unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert!(
            h("content-type").starts_with(ctype),
            "{path}: {}",
            h("content-type")
        );
        let csp = h("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("cache-control"), "no-cache");
        let etag = h("etag");
        assert!(!resp.body_mut().read_to_vec().unwrap().is_empty());
        let again = agent
            .get(c.url(path))
            .header("if-none-match", &etag)
            .call()
            .unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates with its ETag");
    }
    let resp = agent.get(c.url("/assets/nope.js")).call().unwrap();
    assert_eq!(resp.status(), 404);
}

#[test]
fn activity_counts_events_per_minute_by_kind_with_filters() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let mut batch = events(3, "alpha");
    batch.push(Event::new("alpha", Kind::Error, "disk full"));
    batch.push(Event::new("beta", Kind::Done, "finished"));
    c.post_events(&batch);
    let total = |a: &serde_json::Value, kind: &str| -> i64 {
        a["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["counts"][kind].as_i64().unwrap_or(0))
            .sum()
    };
    let all = c.get_json("/v1/activity?minutes=5");
    assert_eq!(all["bucket_ms"], 60_000);
    assert_eq!(all["buckets"].as_array().unwrap().len(), 5, "{all}");
    assert_eq!(total(&all, "log"), 3);
    assert_eq!(total(&all, "error"), 1);
    assert_eq!(total(&all, "done"), 1);
    let alpha = c.get_json("/v1/activity?minutes=1&source=alpha");
    assert_eq!(alpha["buckets"].as_array().unwrap().len(), 1);
    assert_eq!(total(&alpha, "done"), 0);
    let disk = c.get_json("/v1/activity?q=disk");
    assert_eq!(
        disk["buckets"].as_array().unwrap().len(),
        15,
        "15 minutes by default"
    );
    assert_eq!((total(&disk, "error"), total(&disk, "log")), (1, 0));
    for bad in ["minutes=soon", "kind=nope", "q=("] {
        let resp = c.get(&format!("/v1/activity?{bad}")).call().unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    // Huge windows are capped, not refused.
    let day = c.get_json("/v1/activity?minutes=999999");
    assert_eq!(day["buckets"].as_array().unwrap().len(), 1440);
}

/// What a poster sends is admitted, not trusted: a secret in any field is
/// redacted, a 10 MB message and a 1 MB source are cut, and a time in the year
/// 9999 becomes the time it arrived (the claim kept beside it).
#[test]
fn posted_events_are_redacted_capped_and_kept_out_of_the_future() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let mut ev = swarm_obs::Event::new(
        "x".repeat(1 << 20),
        swarm_obs::Kind::Log,
        "m".repeat(10 << 20),
    );
    ev.ts = "9999-12-31T23:59:59.000Z".parse().unwrap();
    ev.task = Some("deploy --token 0123456789abcdefSECRET".into());
    ev.tool = Some("ghp_0123456789abcdefghijABCDEFGHIJ0123".into());
    let (status, body) = c.post(
        "/v1/events",
        "application/json",
        serde_json::to_string(&ev).unwrap().as_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    let got = c.get_json("/v1/events?limit=1");
    let e = &got["events"][0];
    assert!(
        e["source"].as_str().unwrap().len() <= 200,
        "source kept whole"
    );
    assert!(e["msg"].as_str().unwrap().len() < 8192, "msg kept whole");
    assert!(
        e["msg"].as_str().unwrap().contains("[truncated"),
        "{}",
        &e["msg"].as_str().unwrap()[..100]
    );
    assert_eq!(e["task"], "deploy --token [REDACTED]");
    assert_eq!(e["tool"], "[REDACTED]");
    assert_eq!(e["fields"]["claimed_ts"], "9999-12-31T23:59:59.000Z", "{e}");
    assert!(e["ts"].as_str().unwrap().starts_with("20"), "{}", e["ts"]);
}

/// Lines of the event files that are not events are skipped by catch-up, and
/// said so (on stderr with the file and byte range, and in `/metrics`).
#[test]
fn catch_up_reports_the_garbage_lines_it_skips() {
    let home = TestHome::new();
    let events = home.path().join("events");
    std::fs::create_dir_all(&events).unwrap();
    let good = swarm_obs::Event::new("w", swarm_obs::Kind::Log, "a real one").to_json_line();
    std::fs::write(
        events.join("2026-01-05.jsonl"),
        format!("not json at all\n{{\"v\":1}}\n{good}"),
    )
    .unwrap();
    let c = Collector::start(&home);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !c
        .metrics()
        .contains("swarm_obs_catchup_invalid_lines_total 2")
    {
        assert!(std::time::Instant::now() < deadline, "{}", c.metrics());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(c.get_json("/v1/events")["events"][0]["msg"], "a real one");
}

/// A second `serve` on a port already served says whose it is, and leaves no
/// trace in a state root it never served.
#[test]
fn a_second_serve_on_a_taken_port_names_the_running_collector() {
    let home = TestHome::new();
    let running = Collector::start(&home);
    let serve = |root: &std::path::Path| {
        std::process::Command::new(bin("swarm-obs"))
            .args(["serve", "--addr", running.addr(), "--home"])
            .arg(root)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run a second swarm-obs serve")
    };
    let out = serve(home.path());
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("pid {}", running.pid())),
        "the running collector is named: {err}"
    );
    assert!(err.contains("--addr 127.0.0.1:0"), "{err}");

    let other = TestHome::new();
    let out = serve(other.path());
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another program"), "{err}");
    assert!(
        !other.path().join("collector.db").exists(),
        "a collector that could not listen created its store"
    );
    assert!(!other.path().join("collector.json").exists());
}
