//! Collector throughput and latency against a real `swarm-obs serve` process.
//!
//! Every figure is printed with a baseline measured in the same run on the same
//! machine, so runs on different machines compare by ratio:
//! - single POSTs from 4 keep-alive clients: against `GET /healthz` sent the same
//!   way (the cost of an HTTP round trip that does nothing);
//! - batched ingest: against parsing the same NDJSON in-process (the least any
//!   ingest must do);
//! - live latency, POST to every SSE viewer: against the `/healthz` round trip;
//! - OTLP export (stored events → log records at a receiver that answers 200):
//!   against encoding the same events in-process, and beside batched ingest;
//! - a session's conversation read from a 10 MB transcript (first page): against
//!   parsing every line of it in-process, with the collector's RSS and the store's
//!   size (collector.db + -wal) before and after (the store must not grow).
//!
//! Budgets (DESIGN.md): ≥ 50,000 events/s batched; ≥ 10,000 single POSTs/s;
//! p99 ≤ 10 ms to 100 viewers; ≤ 64 MiB RSS with 100 sources × 1,000 events.
//!
//! Run: `cargo bench --bench collector`.

mod fanout;

use std::time::{Duration, Instant};

use swarm_obs::otlp::{Message, logs_request};
use swarm_obs::{Event, Kind, Timestamp};
use swarm_obs_suite::{Collector, ListenerMode, SseStream, TestHome, TestListener, http};

fn ndjson(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .map(Event::to_json_line)
        .collect::<String>()
        .into_bytes()
}

fn per_sec(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn healthz_round_trips(c: &Collector, n: usize) -> Vec<Duration> {
    let agent = http();
    let url = c.url("/healthz");
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut r = agent.get(&url).call().expect("GET /healthz");
            let _ = r.body_mut().read_to_vec();
            t.elapsed()
        })
        .collect();
    times.sort();
    times
}

/// Clients sending at once in the keep-alive figures.
const CLIENTS: usize = 4;

/// `n` requests from each of [`CLIENTS`] keep-alive connections at once; the wall time.
fn concurrently(c: &Collector, n: usize, post: bool) -> Duration {
    let t = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            scope.spawn(move || {
                let agent = http();
                let health = c.url("/healthz");
                let events = c.url("/v1/events");
                for i in 0..n {
                    let mut r = if post {
                        let ev =
                            Event::new("bench-single", Kind::Log, format!("single {client}/{i}"));
                        agent
                            .post(&events)
                            .header("content-type", "application/x-ndjson")
                            .send(ev.to_json_line().as_bytes())
                            .expect("POST one event")
                    } else {
                        agent.get(&health).call().expect("GET /healthz")
                    };
                    assert!(r.status().is_success());
                    let _ = r.body_mut().read_to_vec();
                }
            });
        }
    });
    t.elapsed()
}

fn batched(c: &Collector, batches: usize, size: usize) -> (Duration, Duration) {
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|b| {
            let evs: Vec<Event> = (0..size)
                .map(|i| {
                    Event::new(
                        format!("bench-{}", i % 100),
                        Kind::Log,
                        format!("batch {b} event {i} doing some work"),
                    )
                })
                .collect();
            ndjson(&evs)
        })
        .collect();
    // Baseline: parsing the same bodies in-process.
    let t = Instant::now();
    for body in &bodies {
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            std::hint::black_box(Event::from_json_bytes(line).expect("valid event"));
        }
    }
    let parse = t.elapsed();
    let agent = http();
    let url = c.url("/v1/events");
    let t = Instant::now();
    for body in &bodies {
        let mut r = agent
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .send(&body[..])
            .expect("POST a batch");
        assert_eq!(r.status(), 202);
        let _ = r.body_mut().read_to_vec();
    }
    (t.elapsed(), parse)
}

/// Stores `n` events with export off, then restarts the collector exporting to a
/// receiver that answers 200: the export rate (over the events exported after the
/// collector answered, and their count), and the rate of encoding the same events
/// in-process.
fn export(n: usize) -> (f64, usize, f64) {
    let home = TestHome::new();
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let mut ev = Event::new(
                format!("bench-{}", i % 100),
                Kind::Log,
                format!("export event {i} doing some work"),
            );
            ev.session = Some(format!("session-{}", i % 10));
            ev
        })
        .collect();
    {
        let c = Collector::start(&home);
        for chunk in events.chunks(5000) {
            c.post_events(chunk);
        }
    }
    // Baseline: turning the same events into OTLP requests, 512 per request.
    let t = Instant::now();
    for chunk in events.chunks(512) {
        std::hint::black_box(logs_request(chunk).encode_to_vec());
    }
    let encode = per_sec(n, t.elapsed());

    let receiver = TestListener::start(ListenerMode::Answer(200));
    let endpoint = format!("http://{}", receiver.addr());
    let c = Collector::start_with(
        &home,
        &[
            "--otlp-endpoint",
            &endpoint,
            "--otlp-metrics-interval",
            "3600",
        ],
    );
    let name = "swarm_obs_otlp_exported_total";
    let (t0, e0) = (Instant::now(), c.metric(name));
    let deadline = t0 + Duration::from_secs(600);
    let mut e = e0;
    while e < n as u64 {
        assert!(Instant::now() < deadline, "export stalled at {e} of {n}");
        // Drain what the receiver recorded so it does not pile up in memory.
        while receiver.next_request(Duration::ZERO).is_some() {}
        std::thread::sleep(Duration::from_millis(2));
        e = c.metric(name);
    }
    let measured = (e - e0) as usize;
    (per_sec(measured, t0.elapsed()), measured, encode)
}

fn live_latency(c: &Collector, viewers: usize, samples: usize) -> Vec<Duration> {
    let streams: Vec<SseStream> = (0..viewers)
        .map(|_| SseStream::open(c.addr(), "/v1/stream?n=0&source=bench-live", &[]))
        .collect();
    let agent = http();
    let url = c.url("/v1/events");
    let mut lat = Vec::with_capacity(samples * viewers);
    for i in 0..samples {
        let ev = Event::new("bench-live", Kind::Log, format!("live {i}"));
        let body = ndjson(std::slice::from_ref(&ev));
        let t = Instant::now();
        let mut r = agent
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .send(&body[..])
            .expect("POST");
        let _ = r.body_mut().read_to_vec();
        let want = ev.id.to_string();
        for s in &streams {
            loop {
                let m = s
                    .next_event(Duration::from_secs(30))
                    .expect("viewer got the event");
                if m.id.as_deref() == Some(want.as_str()) {
                    lat.push(t.elapsed());
                    break;
                }
            }
        }
    }
    lat.sort();
    lat
}

/// Real `swarm-hook` invocations, each timed from spawn until every one of
/// `viewers` SSE viewers has the event, against spawning a do-nothing binary that
/// reads stdin (the baseline the hook's own budget uses).
fn hook_to_viewer(
    c: &Collector,
    home: &TestHome,
    viewers: usize,
    samples: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let fixture =
        std::fs::read(swarm_obs_suite::fixtures_dir().join("PreToolUse.json")).expect("fixture");
    let hook_bin = swarm_obs_suite::bin("swarm-hook");
    let noop = hook_bin
        .parent()
        .expect("target dir")
        .join("examples/noop_stdin");
    let streams: Vec<SseStream> = (0..viewers)
        .map(|_| SseStream::open(c.addr(), "/v1/stream?n=0&kind=hook", &[]))
        .collect();
    let mut hook = Vec::with_capacity(samples);
    let mut spawn = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let out = swarm_obs_suite::run_with_stdin(
            &mut std::process::Command::new(&noop),
            fixture.clone(),
        );
        assert!(out.status.success());
        spawn.push(t.elapsed());
        let t = Instant::now();
        let out = swarm_obs_suite::run_with_stdin(&mut home.hook(), fixture.clone());
        assert!(out.status.success());
        for viewer in &streams {
            viewer
                .next_event(Duration::from_secs(30))
                .expect("the hook's event reached the viewer");
        }
        hook.push(t.elapsed());
    }
    hook.sort();
    spawn.sort();
    (hook, spawn)
}

/// How long until a viewer of alerts hears that a worker is gone, against the
/// interval + grace the watch promises. `killed`: a real library worker on this
/// host (`examples/worker`, default interval) is SIGKILLed, found dead by its pid.
/// `silent`: a worker on another host posts heartbeats every `interval` and stops;
/// with `--heartbeat-grace-ms`, it must be reported down within interval + grace.
fn detection(
    samples: usize,
    interval: Duration,
    grace: Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let home = TestHome::new();
    let grace_ms = grace.as_millis().to_string();
    let c = Collector::start_with(&home, &["--heartbeat-grace-ms", &grace_ms]);
    let alerts = SseStream::open(c.addr(), "/v1/stream?kind=alert&n=0", &[]);
    let next_state = |want: &str| -> Instant {
        loop {
            let m = alerts
                .next_event(Duration::from_secs(60))
                .expect("an alert within a minute");
            let ev = Event::from_json(&m.data).expect("an alert event");
            if ev.fields.get("state").and_then(|v| v.as_str()) == Some(want) {
                return Instant::now();
            }
        }
    };
    let mut killed = Vec::with_capacity(samples);
    for i in 0..samples {
        let name = format!("bench-killed-{i}");
        let mut worker = std::process::Command::new(swarm_obs_suite::example("worker"))
            .args(["1", "100000", "1000", &name, "5000"])
            .env("SWARM_OBS_HOME", home.path())
            .env("SWARM_OBS_COLLECTOR", c.addr())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the example worker");
        let until = Instant::now() + Duration::from_secs(30);
        while c.get_json("/v1/workers")["workers"]
            .as_array()
            .is_none_or(|ws| {
                !ws.iter()
                    .any(|w| w["worker"] == name.as_str() && w["state"] == "alive")
            })
        {
            assert!(Instant::now() < until, "{name} never showed as alive");
            std::thread::sleep(Duration::from_millis(20));
        }
        let t = Instant::now();
        worker.kill().expect("SIGKILL the worker");
        let _ = worker.wait();
        killed.push(next_state("dead") - t);
    }
    let mut silent = Vec::with_capacity(samples);
    for i in 0..samples {
        let beat = format!(
            r#"{{"timestamp":"{}","worker":"bench-silent-{i}","task":"T","action":"working","pid":4242,"host":"elsewhere","started_at":"{}","interval_ms":{},"state":"working","seq":1,"dropped":0}}"#,
            Timestamp::now(),
            Timestamp::now(),
            interval.as_millis()
        );
        let t = Instant::now();
        let (status, text) = c.post("/v1/heartbeats", "application/json", beat.as_bytes());
        assert_eq!(status, 202, "{text}");
        silent.push(next_state("down") - t);
    }
    killed.sort();
    silent.sort();
    (killed, silent)
}

/// Lua for `wrk`: POSTs one event per request, shaped like a real client's: a fresh
/// time-ordered id (UUIDv7 layout: milliseconds first, then random bits), as the
/// event model asks, and the current time, so retention keeps what is posted (an
/// event dated months back is deleted a few seconds after start, and the run would
/// time that deletion too).
const WRK_POST: &str = r#"
wrk.method = "POST"
wrk.headers["content-type"] = "application/x-ndjson"
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local start = os.time() * 1000
local n = 0
request = function()
  n = n + 1
  local ms = start + n
  local id = string.format("%08x-%04x-7%03x-%04x-%06x%06x",
    math.floor(ms / 65536), ms % 65536, math.random(0, 0xfff),
    0x8000 + math.random(0, 0x3fff), math.random(0, 0xffffff), math.random(0, 0xffffff))
  local body = '{"v":1,"id":"' .. id .. '","ts":"' .. os.date("!%Y-%m-%dT%H:%M:%S") .. '.000Z","source":"wrk","kind":"log","level":"info","msg":"load"}\n'
  return wrk.format(nil, "/v1/events", nil, body)
end
"#;

/// Requests/s that `wrk` (8 keep-alive connections, 5 s) reaches, when it is
/// installed and every answer was a success.
fn wrk_rate(url: &str, script: Option<&std::path::Path>) -> Option<f64> {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args(["-t1", "-c8", "-d5s"]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Refused requests would make a rate that measures nothing.
    if text.contains("Non-2xx") {
        eprintln!("wrk saw refused requests against {url}:\n{text}");
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The store's size on disk: `collector.db` and its write-ahead log.
fn store_bytes(home: &TestHome) -> u64 {
    let db = swarm_obs::StateRoot::new(home.path()).collector_db();
    let mut wal = db.clone().into_os_string();
    wal.push("-wal");
    [db, wal.into()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// What serving a conversation from a big transcript costs.
struct ConversationFigures {
    bytes: usize,
    turns: u64,
    first: Duration,
    pages: Vec<Duration>,
    parse: Duration,
    rss: (u64, u64, u64),
    store: (u64, u64),
}

/// A transcript of at least `mb` MB (the real CLI's fixture, repeated) under a
/// collector's Claude Code directory, a session naming it, and its first page
/// asked for `n` times.
fn conversation(mb: usize, n: usize) -> ConversationFigures {
    let fixture = swarm_obs_suite::workspace_root()
        .join("tests/fixtures/claude-code-transcripts/session.jsonl");
    let one = std::fs::read_to_string(fixture).expect("read the transcript fixture");
    let claude = tempfile::tempdir().expect("temp claude dir");
    let path = claude.path().join("projects/-bench/s-big.jsonl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = one.repeat((mb << 20) / one.len() + 1);
    std::fs::write(&path, &text).expect("write the transcript");

    let home = TestHome::new();
    let c = Collector::start_with_env(
        &home,
        &[],
        &[("CLAUDE_CONFIG_DIR", claude.path().to_str().unwrap())],
    );
    let mut ev = Event::new("bench", Kind::Hook, "SessionStart");
    ev.session = Some("s-big".into());
    ev.hook = Some("SessionStart".into());
    ev.payload = Some(serde_json::json!({"transcript_path": path.to_str().unwrap()}));
    c.post_events(&[ev]);
    // Let the writer settle before the store is measured.
    std::thread::sleep(Duration::from_millis(500));
    let store_before = store_bytes(&home);
    let rss_before = rss_kib(c.pid()).unwrap_or(0);

    let agent = http();
    let url = c.url("/v1/sessions/s-big/conversation");
    let get = || {
        let t = Instant::now();
        let mut r = agent.get(&url).call().expect("GET the conversation");
        assert_eq!(r.status(), 200);
        let body = r.body_mut().read_to_string().expect("read the page");
        (t.elapsed(), body)
    };
    let (first, body) = get();
    let page: serde_json::Value = serde_json::from_str(&body).expect("a JSON page");
    let turns = page["total"].as_u64().unwrap_or(0);
    assert_eq!(page["turns"].as_array().map(Vec::len), Some(50));
    let mut pages: Vec<Duration> = (0..n).map(|_| get().0).collect();
    pages.sort();
    let rss_after = rss_kib(c.pid()).unwrap_or(0);
    let peak = std::fs::read_to_string(format!("/proc/{}/status", c.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let store_after = store_bytes(&home);

    let t = Instant::now();
    let parsed = text
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    let parse = t.elapsed();
    assert!(parsed > 0);
    ConversationFigures {
        bytes: text.len(),
        turns,
        first,
        pages,
        parse,
        rss: (rss_before, rss_after, peak),
        store: (store_before, store_after),
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() {
    // `cargo bench` passes --bench; a plain `cargo test --benches` passes nothing
    // and would run this too, so keep that run short.
    let full = std::env::args().any(|a| a == "--bench");
    // `cargo bench --bench collector -- fan-out wrk` runs only the parts named.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |part: &str| only.is_empty() || only.iter().any(|o| part.contains(o.as_str()));
    let scale = if full { 1 } else { 10 };
    let home = TestHome::new();
    let c = Collector::start(&home);

    let base = healthz_round_trips(&c, 3000 / scale);
    let base_rps = per_sec(base.len(), base.iter().sum());
    println!(
        "baseline GET /healthz, one keep-alive client: {base_rps:.0} req/s, p50 {:?}",
        percentile(&base, 0.5)
    );

    if wants("single") {
        let n = 3000 / scale;
        let health = per_sec(n * CLIENTS, concurrently(&c, n, false));
        let single = per_sec(n * CLIENTS, concurrently(&c, n, true));
        println!(
            "single POST, {CLIENTS} keep-alive clients: {single:.0} events/s = {:.2}× GET /healthz the same way ({health:.0}/s) (budget ≥ 10,000/s)",
            single / health
        );
    }

    if wants("wrk") {
        // A faster load generator, where installed, shows what the collector itself can take.
        let script = home.path().join("post.lua");
        std::fs::write(&script, WRK_POST).expect("write the wrk script");
        let stored = || c.metric("swarm_obs_events_ingested_total");
        if full
            && let Some(health) = wrk_rate(&c.url("/healthz"), None)
            && let before = stored()
            && let Some(posts) = wrk_rate(&c.url("/v1/events"), Some(&script))
        {
            // Every answer was a success; each must also be a new event stored, not
            // a duplicate id (which costs no write), or the rate flatters the store.
            let new = stored() - before;
            println!(
                "single POST, wrk 8 keep-alive connections: {posts:.0} events/s = {:.2}× GET /healthz the same way ({health:.0}/s) (budget ≥ 10,000/s), {new} new events stored",
                posts / health
            );
        }
    }

    if wants("batched export") {
        let (batches, size) = (40 / scale.min(4), 5000);
        let (took, parse) = batched(&c, batches, size);
        let rate = per_sec(batches * size, took);
        let parse_rate = per_sec(batches * size, parse);
        println!(
            "batched ingest ({size}/POST): {rate:.0} events/s = {:.2}× in-process parsing ({parse_rate:.0}/s) (budget ≥ 50,000/s)",
            rate / parse_rate
        );

        let (export_rate, measured, encode_rate) = export(300_000 / scale);
        println!(
            "OTLP export (512/request, HTTP/protobuf, {measured} events timed): {export_rate:.0} events/s = {:.2}× in-process encoding ({encode_rate:.0}/s), {:.2}× batched ingest",
            export_rate / encode_rate,
            export_rate / rate
        );
    }

    if wants("live") {
        for viewers in [1, 10, 100] {
            let lat = live_latency(&c, viewers, 200 / scale);
            let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
            println!(
                "POST → {viewers} SSE viewer(s): p50 {p50:?} p99 {p99:?} = {:.1}× / {:.1}× the /healthz p50 (budget p99 ≤ 10 ms at 100)",
                p50.as_secs_f64() / percentile(&base, 0.5).as_secs_f64(),
                p99.as_secs_f64() / percentile(&base, 0.5).as_secs_f64(),
            );
        }
    }

    if wants("fan-out") {
        // Fan-out as a swarm makes it: 8 posters of single events, many viewers.
        let (posters, events) = (8, 3000 / scale);
        for (round, transport) in [fanout::Transport::WebSocket, fanout::Transport::Sse]
            .into_iter()
            .enumerate()
        {
            let one = fanout::run(&c, transport, 1, posters, events, round * 2);
            let many = fanout::run(&c, transport, 50, posters, events, round * 2 + 1);
            let (p50_1, p50) = (
                percentile(&one.latencies, 0.5),
                percentile(&many.latencies, 0.5),
            );
            let (p99_1, p99) = (
                percentile(&one.latencies, 0.99),
                percentile(&many.latencies, 0.99),
            );
            println!(
                "fan-out, {posters} posters × {events} events → 50 {transport:?} viewers: p50 {p50:?} p99 {p99:?}, delivered {}/{}, server CPU {:?} ({:?}/delivery); 1 viewer: p50 {p50_1:?} p99 {p99_1:?}, {}/{}, CPU {:?} ({:?}/delivery); ratios p50 {:.2}× (budget ≤ 1.5×), p99 {:.2}×, CPU per delivery {:.3}× (budget ≤ 0.2×)",
                many.delivered,
                many.expected,
                many.cpu,
                many.cpu_per_delivery(),
                one.delivered,
                one.expected,
                one.cpu,
                one.cpu_per_delivery(),
                p50.as_secs_f64() / p50_1.as_secs_f64(),
                p99.as_secs_f64() / p99_1.as_secs_f64(),
                many.cpu_per_delivery().as_secs_f64()
                    / one.cpu_per_delivery().as_secs_f64().max(1e-9),
            );
        }
    }

    if wants("hook") {
        for viewers in [1, 100] {
            let (hook, spawn) = hook_to_viewer(&c, &home, viewers, 100 / scale);
            println!(
                "swarm-hook invoked → event on all of {viewers} SSE viewer(s): p50 {:?} p99 {:?} = {:.2}× / {:.2}× the p50 spawn of a do-nothing stdin reader ({:?}) (budget p99 ≤ 10 ms at 100)",
                percentile(&hook, 0.5),
                percentile(&hook, 0.99),
                percentile(&hook, 0.5).as_secs_f64() / percentile(&spawn, 0.5).as_secs_f64(),
                percentile(&hook, 0.99).as_secs_f64() / percentile(&spawn, 0.5).as_secs_f64(),
                percentile(&spawn, 0.5),
            );
        }
    }

    if wants("detection") {
        let (interval, grace) = (Duration::from_millis(1000), Duration::from_millis(2000));
        let (killed, silent) = detection(if full { 5 } else { 1 }, interval, grace);
        let budget = Duration::from_secs(15);
        println!(
            "worker SIGKILLed → dead alert on a viewer: median {:?}, worst {:?} = {:.3}× interval + grace (5 s + 10 s by default; budget ≤ 15 s)",
            percentile(&killed, 0.5),
            percentile(&killed, 1.0),
            percentile(&killed, 1.0).as_secs_f64() / budget.as_secs_f64(),
        );
        println!(
            "remote worker falls silent → down alert: median {:?}, worst {:?} = {:.2}× its interval + grace ({:?} + {:?})",
            percentile(&silent, 0.5),
            percentile(&silent, 1.0),
            percentile(&silent, 1.0).as_secs_f64() / (interval + grace).as_secs_f64(),
            interval,
            grace,
        );
    }

    if wants("conversation") {
        let f = conversation(if full { 10 } else { 1 }, if full { 20 } else { 2 });
        let p50 = percentile(&f.pages, 0.5);
        println!(
            "conversation of a {:.1} MB transcript ({} turns), first page of 50: first {:?}, p50 {p50:?} over {} = {:.2}× parsing every line in-process ({:?}); collector RSS {:.1} → {:.1} MiB (peak {:.1} MiB); store {} → {} bytes{}",
            f.bytes as f64 / 1e6,
            f.turns,
            f.first,
            f.pages.len(),
            p50.as_secs_f64() / f.parse.as_secs_f64(),
            f.parse,
            f.rss.0 as f64 / 1024.0,
            f.rss.1 as f64 / 1024.0,
            f.rss.2 as f64 / 1024.0,
            f.store.0,
            f.store.1,
            if f.store.1 > f.store.0 {
                " (GREW: the transcript must not be stored)"
            } else {
                " (not grown)"
            },
        );
        assert!(
            f.store.1 <= f.store.0,
            "serving a conversation grew the store"
        );
    }

    if wants("rss") {
        // 100 sources × 1,000 events stored, then 100 viewers each backfilling 1,000.
        let agent = http();
        for s in 0..100 {
            let evs: Vec<Event> = (0..1000 / scale)
                .map(|i| {
                    Event::new(
                        format!("rss-{s}"),
                        Kind::Log,
                        format!("event {i} of a source"),
                    )
                })
                .collect();
            let mut r = agent
                .post(c.url("/v1/events"))
                .header("content-type", "application/x-ndjson")
                .send(&ndjson(&evs)[..])
                .expect("POST");
            let _ = r.body_mut().read_to_vec();
        }
        let viewers: Vec<SseStream> = (0..100)
            .map(|s| SseStream::open(c.addr(), &format!("/v1/stream?n=1000&source=rss-{s}"), &[]))
            .collect();
        for v in &viewers {
            for _ in 0..1000 / scale {
                v.next_event(Duration::from_secs(60)).expect("backfill");
            }
        }
        if let Some(kib) = rss_kib(c.pid()) {
            println!(
                "collector RSS with 100 sources × {} events and 100 backfilled viewers: {:.1} MiB (budget ≤ 64 MiB)",
                1000 / scale,
                kib as f64 / 1024.0
            );
        }
    }
}
