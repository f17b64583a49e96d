//! Cost per event of `SwarmLayer` against tracing-subscriber's `fmt()` (Full) and
//! `fmt().json()`, all writing to files in the same temporary directory, in one run;
//! also the cost of a disabled event and of one heartbeat beat.
//!
//! `SwarmLayer` writes on a background thread, so its figures are end to end: the
//! time to emit a batch of events *and* flush them to disk, divided by the batch
//! (blocking mode, so nothing is dropped to look fast). The summary prints each figure
//! as a ratio against `fmt().json()`; the budget is ≤ 0.5×.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use swarm_obs::{HeartbeatWriter, Overflow, StateRoot, SwarmGuard, SwarmLayer};
use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

/// Total time and events measured per benchmark, across every criterion sample.
static TALLY: Mutex<BTreeMap<&'static str, (Duration, u64)>> = Mutex::new(BTreeMap::new());

fn tally(name: &'static str, elapsed: Duration, iters: u64) -> Duration {
    let mut t = TALLY.lock().unwrap();
    let e = t.entry(name).or_default();
    e.0 += elapsed;
    e.1 += iters;
    elapsed
}

fn one_event() {
    tracing::info!(
        task = "TASK_123",
        step = 3_u64,
        ok = true,
        "Analysing file X"
    );
}

/// Emits `iters` events inside a span under `dispatch`, then runs `finish`.
fn emit(dispatch: &Dispatch, iters: u64, finish: impl Fn()) -> Duration {
    tracing::dispatcher::with_default(dispatch, || {
        let span = tracing::info_span!("job", job_id = 7_u64);
        let _entered = span.enter();
        let start = Instant::now();
        for _ in 0..iters {
            one_event();
        }
        finish();
        start.elapsed()
    })
}

fn file_writer(dir: &std::path::Path, name: &str) -> Mutex<File> {
    Mutex::new(File::create(dir.join(name)).unwrap())
}

fn swarm(dir: &std::path::Path, text: bool, json: bool) -> (SwarmLayer, SwarmGuard) {
    swarm_obs::init("bench")
        .state_root(StateRoot::new(dir))
        .no_collector()
        .heartbeat(false)
        .panic_hook(false)
        .text(text)
        .json(json)
        .overflow(Overflow::Block)
        .build()
        .unwrap()
}

fn bench_layers(c: &mut Criterion, dir: &std::path::Path) {
    let mut g = c.benchmark_group("layer");

    let full = Dispatch::new(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(file_writer(dir, "fmt-full.log"))
            .finish(),
    );
    g.bench_function("fmt_full", |b| {
        b.iter_custom(|n| tally("fmt() Full", emit(&full, n, || {}), n))
    });

    let json = Dispatch::new(
        tracing_subscriber::fmt()
            .json()
            .with_writer(file_writer(dir, "fmt-json.log"))
            .finish(),
    );
    g.bench_function("fmt_json", |b| {
        b.iter_custom(|n| tally("fmt().json()", emit(&json, n, || {}), n))
    });

    for (name, id, text, json) in [
        ("SwarmLayer human", "swarm_human", true, false),
        ("SwarmLayer JSON", "swarm_json", false, true),
        ("SwarmLayer human+JSON", "swarm_both", true, true),
    ] {
        let sub_dir = dir.join(id);
        let (layer, guard) = swarm(&sub_dir, text, json);
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
        g.bench_function(id, |b| {
            b.iter_custom(|n| tally(name, emit(&dispatch, n, || assert!(guard.flush())), n))
        });
        assert_eq!(guard.dropped(), 0, "blocking mode drops nothing");
    }

    // The caller's share alone: the time to queue, with the writing left to the
    // writer thread (flushed outside the timing so the queue never fills).
    let (layer, guard) = swarm(&dir.join("caller"), true, true);
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    g.bench_function("swarm_caller_only", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            let mut left = n;
            while left > 0 {
                let chunk = left.min(32_768);
                total += emit(&dispatch, chunk, || {});
                assert!(guard.flush());
                left -= chunk;
            }
            tally("SwarmLayer human+JSON, caller thread only", total, n)
        })
    });

    let (layer, _guard) = swarm(&dir.join("disabled"), true, true);
    let filtered = Dispatch::new(
        tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(layer),
    );
    g.bench_function("swarm_disabled_debug", |b| {
        b.iter_custom(|n| {
            tracing::dispatcher::with_default(&filtered, || {
                let start = Instant::now();
                for _ in 0..n {
                    tracing::debug!(step = 3_u64, "not recorded");
                }
                tally("disabled event (debug! under info)", start.elapsed(), n)
            })
        })
    });
    g.finish();
}

fn bench_heartbeat(c: &mut Criterion, dir: &std::path::Path) {
    let root = StateRoot::new(dir.join("hb"));
    let writer = HeartbeatWriter::start(&root, "bench", Duration::from_secs(3600)).unwrap();
    let handle = writer.handle().clone();
    handle.set_task("TASK_123");
    handle.set_progress(3, 5);
    let path = writer.path().to_owned();
    c.bench_function("heartbeat_beat", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            for seq in 0..n {
                let mut beat = handle.snapshot();
                beat.seq = seq;
                beat.write_to(&path).unwrap();
            }
            tally(
                "heartbeat beat (snapshot + atomic replace)",
                start.elapsed(),
                n,
            )
        })
    });
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_layers(&mut c, dir.path());
    bench_heartbeat(&mut c, dir.path());
    c.final_summary();

    let tally = TALLY.lock().unwrap();
    let ns = |name: &str| {
        tally
            .get(name)
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| d.as_nanos() as f64 / *n as f64)
    };
    let Some(base) = ns("fmt().json()") else {
        return; // a filtered run without the baseline
    };
    println!("\nns per event, and ratio against fmt().json() (budget for SwarmLayer: <= 0.5x):");
    for (name, _) in tally.iter() {
        if let Some(v) = ns(name) {
            println!("  {name:<45} {v:>10.1} ns   {:>6.3}x", v / base);
        }
    }
}
