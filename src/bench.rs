//! Timing whole processes for the benchmarks in `benches/`: each figure is the median
//! of single runs, so it can be set against a baseline measured in the same run.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// Spawns `cmd`, writes `input` to its stdin, closes it, and waits; returns the wall
/// time from spawn to exit. Output is discarded; a failed exit panics, so a broken
/// binary cannot pass for a fast one.
pub fn time_process(cmd: &mut Command, input: &[u8]) -> Duration {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the measured process");
    let mut stdin = child.stdin.take().expect("its stdin");
    stdin.write_all(input).expect("write its stdin");
    drop(stdin);
    let status = child.wait().expect("wait for it");
    assert!(status.success(), "the measured process failed: {status}");
    start.elapsed()
}

/// Runs one criterion benchmark of `run` (which times one repetition itself) and
/// returns the median of every repetition.
pub fn median_of(c: &mut Criterion, name: &str, mut run: impl FnMut() -> Duration) -> Duration {
    let samples = Mutex::new(Vec::new());
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = run();
                samples.lock().unwrap_or_else(|p| p.into_inner()).push(t);
                total += t;
            }
            total
        })
    });
    let mut all = samples.into_inner().unwrap_or_else(|p| p.into_inner());
    all.sort();
    all[all.len() / 2]
}
