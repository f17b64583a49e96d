//! Cost that does not grow with history: a real `swarm-obs serve` loaded with 10k,
//! 100k and 1M hook-shaped events (50 sources, 200 sessions; 10M with
//! `SWARM_OBS_SCALE_10M=1`), and every read measured at each size.
//!
//! Each figure is printed with its ratio to the same figure at 10k stored, measured
//! in the same run: a read whose cost grows with the store shows a ratio that grows.
//! Budgets (DESIGN.md): every ratio ≤ 2 at 1M; `/v1/sessions` and `/v1/sources`
//! ≤ 20 ms at 1M; batched ingest at 1M ≥ 0.8× its rate on an empty store.
//!
//! Events are loaded newest first, each 0.5 s older than the one before (5 days
//! across the largest size), so the last hour holds the same 7,200 events at every
//! size and `tail --since 1h` asks for the same amount of work.
//!
//! Run: `cargo bench --bench scale`.

use std::time::{Duration, Instant};

use swarm_obs::{Event, Kind, Level, Timestamp};
use swarm_obs_suite::{Collector, SseStream, TestHome, http};

const SOURCES: usize = 50;
const SESSIONS: usize = 200;
const BATCH: usize = 10_000;
/// Events timed for each ingest figure: five batches, so one slow commit does not
/// decide it.
const INGEST_SAMPLE: usize = 5 * BATCH;

/// The `i`th event back from now: a hook event of one of 200 sessions across 50
/// projects, with a tool, now and then an error.
fn event(i: usize, spacing_ms: i64, now: i64) -> Event {
    let session = i % SESSIONS;
    let mut ev = Event::new(
        format!("proj{}", session % SOURCES),
        if i.is_multiple_of(97) {
            Kind::Error
        } else {
            Kind::Hook
        },
        format!("PreToolUse Bash: cargo test --package crate{}", i % 13),
    );
    if ev.kind == Kind::Error {
        ev.level = Level::Error;
    }
    ev.ts = Timestamp::from_unix_ms(now - i as i64 * spacing_ms);
    ev.id = swarm_obs::EventId::at(ev.ts);
    ev.session = Some(format!("session-{session:04}"));
    if i.is_multiple_of(5) {
        ev.agent = Some(format!("agent-{}", i % 3));
        ev.agent_type = Some("Explore".into());
    }
    ev.hook = Some(["PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop"][i % 4].into());
    ev.tool = Some(["Bash", "Read", "Edit", "Grep"][i % 4].into());
    ev
}

fn ndjson(events: impl Iterator<Item = Event>) -> Vec<u8> {
    events
        .map(|e| e.to_json_line())
        .collect::<String>()
        .into_bytes()
}

/// Loads events `from..to` in 10k-event POSTs; the events per second.
fn load(c: &Collector, from: usize, to: usize, spacing_ms: i64, now: i64) -> f64 {
    let started = Instant::now();
    let mut i = from;
    while i < to {
        let end = (i + BATCH).min(to);
        let body = ndjson((i..end).map(|k| event(k, spacing_ms, now)));
        let (status, answer) = c.post("/v1/events", "application/x-ndjson", &body);
        assert_eq!(status, 202, "{answer}");
        i = end;
    }
    (to - from) as f64 / started.elapsed().as_secs_f64()
}

/// Median of `n` timed GETs of `path` (after one warm-up).
fn median_get(c: &Collector, path: &str, n: usize) -> Duration {
    let agent = http();
    let url = c.url(path);
    let once = || {
        let t = Instant::now();
        let mut r = agent.get(&url).call().expect("GET");
        assert_eq!(r.status(), 200, "{path}");
        let _ = r.body_mut().with_config().limit(64 << 20).read_to_vec();
        t.elapsed()
    };
    once();
    let mut times: Vec<Duration> = (0..n).map(|_| once()).collect();
    times.sort();
    times[n / 2]
}

/// Median time from opening a stream to its 100th backfilled event.
fn sse_backfill(c: &Collector, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let s = SseStream::open(c.addr(), "/v1/stream?n=100", &[]);
            for _ in 0..100 {
                s.next_event(Duration::from_secs(30))
                    .expect("a backfilled event");
            }
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

/// Median of `swarm-obs tail --since 1h` against the collector, run to its end.
fn tail_since(home: &TestHome, n: usize) -> (Duration, usize) {
    let mut lines = 0;
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let out = home
                .swarm_obs()
                .args(["tail", "--since", "1h", "-o", "json"])
                .output()
                .expect("run swarm-obs tail");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            lines = out.stdout.iter().filter(|b| **b == b'\n').count();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], lines)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Every figure at one store size.
struct Figures {
    stored: usize,
    reads: Vec<(&'static str, Duration)>,
    ingest: f64,
    startup: Duration,
    rss: f64,
    tail_lines: usize,
}

const READS: [(&str, &str); 6] = [
    ("GET /v1/sessions", "/v1/sessions"),
    ("GET /v1/sources", "/v1/sources"),
    (
        "GET /v1/events?kind=error&limit=100",
        "/v1/events?kind=error&limit=100",
    ),
    (
        "GET /v1/events?source=proj7&limit=100",
        "/v1/events?source=proj7&limit=100",
    ),
    ("GET /v1/events?limit=100", "/v1/events?limit=100"),
    (
        "GET /v1/events?session=…&agent=main&limit=100",
        "/v1/events?session=session-0042&agent=main&limit=100",
    ),
];

fn measure(home: &TestHome, c: &mut Collector, stored: usize, ingest: f64) -> Figures {
    let mut reads: Vec<(&'static str, Duration)> = READS
        .iter()
        .map(|(name, path)| (*name, median_get(c, path, 15)))
        .collect();
    reads.push(("SSE connect + 100 backfilled", sse_backfill(c, 9)));
    let (tail, tail_lines) = tail_since(home, 5);
    reads.push(("swarm-obs tail --since 1h", tail));
    // Start-up: a new collector on the same store, until it answers /healthz.
    c.terminate();
    let t = Instant::now();
    *c = Collector::start(home);
    let startup = t.elapsed();
    // Let it settle (catch-up scan, first checkpoint) before reading its memory.
    std::thread::sleep(Duration::from_millis(1500));
    let rss = rss_mib(c.pid());
    Figures {
        stored,
        reads,
        ingest,
        startup,
        rss,
        tail_lines,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let mut sizes = vec![10_000, 100_000, 1_000_000];
    if std::env::var_os("SWARM_OBS_SCALE_10M").is_some() {
        sizes.push(10_000_000);
    }
    let largest = *sizes.last().unwrap_or(&1);
    // 5 days across the largest size, at least 0.5 s apart so the last hour holds
    // 7,200 events at every size.
    let spacing_ms = (5 * 86_400_000 / largest as i64).min(500);
    let now = Timestamp::now().unix_ms();
    let home = TestHome::new();
    // Batched ingest on an empty store: 50k events into a collector of its own.
    let empty_rate = {
        let scratch = TestHome::new();
        let mut c = Collector::start(&scratch);
        let rate = load(&c, 0, INGEST_SAMPLE, spacing_ms, now);
        c.terminate();
        rate
    };
    let mut c = Collector::start(&home);
    let mut loaded = 0;
    let mut all: Vec<Figures> = Vec::new();
    for &size in &sizes {
        // The last 50k of each size (all of it below that) are its ingest figure.
        let sample = INGEST_SAMPLE.min(size);
        if loaded < size - sample {
            load(&c, loaded, size - sample, spacing_ms, now);
        }
        let rate = load(&c, size - sample, size, spacing_ms, now);
        loaded = size;
        let f = measure(&home, &mut c, size, rate);
        eprintln!("scale: measured at {size} stored");
        all.push(f);
    }
    let base = &all[0];
    println!("\nscale: each figure with its ratio to the same figure at 10k stored\n");
    print!("{:<48}", "what");
    for f in &all {
        print!(" {:>18}", format!("{} stored", f.stored));
    }
    println!();
    for (i, (name, _)) in base.reads.iter().enumerate() {
        print!("{name:<48}");
        for f in &all {
            let d = f.reads[i].1;
            print!(
                " {:>18}",
                format!("{:.2} ms ({:.2}×)", ms(d), ms(d) / ms(base.reads[i].1))
            );
        }
        println!();
    }
    print!("{:<48}", "batched ingest, events/s (ratio to empty store)");
    for f in &all {
        print!(
            " {:>18}",
            format!("{:.0}k ({:.2}×)", f.ingest / 1e3, f.ingest / empty_rate)
        );
    }
    println!();
    print!("{:<48}", "collector start-up to /healthz");
    for f in &all {
        print!(
            " {:>18}",
            format!(
                "{:.0} ms ({:.2}×)",
                ms(f.startup),
                ms(f.startup) / ms(base.startup)
            )
        );
    }
    println!();
    print!("{:<48}", "collector RSS after start-up");
    for f in &all {
        print!(
            " {:>18}",
            format!("{:.1} MiB ({:.2}×)", f.rss, f.rss / base.rss)
        );
    }
    println!();
    print!("{:<48}", "lines printed by tail --since 1h");
    for f in &all {
        print!(" {:>18}", f.tail_lines);
    }
    println!();
    if let Some(big) = all.iter().find(|f| f.stored == 1_000_000) {
        let worst = big
            .reads
            .iter()
            .zip(&base.reads)
            .map(|((n, d), (_, b))| (ms(*d) / ms(*b), *n))
            .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
        println!(
            "\nat 1M: worst read ratio {:.2}× ({}; budget ≤ 2×), sessions {:.2} ms and sources {:.2} ms (budget ≤ 20 ms), ingest {:.2}× empty (budget ≥ 0.8×)",
            worst.0,
            worst.1,
            ms(big.reads[0].1),
            ms(big.reads[1].1),
            big.ingest / empty_rate
        );
    }
    c.terminate();
    retention_stall(spacing_ms, now);
}

/// Ingest while retention trims an over-full store: a collector capped at 20 MiB
/// takes 700k events in 10k POSTs (its first retention pass starts 5 s in, with the
/// store far over the cap); the slowest POST against the median says how long any
/// POST waited on retention.
fn retention_stall(spacing_ms: i64, now: i64) {
    let home = TestHome::new();
    let mut c = Collector::start_with(&home, &["--max-store-mb", "20"]);
    let mut took: Vec<Duration> = Vec::new();
    let mut i = 0;
    while i < 700_000 {
        let body = ndjson((i..i + BATCH).map(|k| event(k, spacing_ms, now)));
        let t = Instant::now();
        let (status, answer) = c.post("/v1/events", "application/x-ndjson", &body);
        took.push(t.elapsed());
        assert_eq!(status, 202, "{answer}");
        i += BATCH;
    }
    let slowest = took.iter().max().copied().unwrap_or_default();
    took.sort();
    let median = took[took.len() / 2];
    c.terminate();
    println!(
        "retention under a 20 MiB cap while 700k events arrive: slowest 10k POST {:.1} ms, median {:.1} ms ({:.2}× the median)",
        ms(slowest),
        ms(median),
        ms(slowest) / ms(median)
    );
}
