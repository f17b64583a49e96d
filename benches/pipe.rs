//! Lines per second through `swarm-obs pipe` (each line parsed, written to the event
//! and text logs, the heartbeat kept), as a ratio to `cat` copying the same input to
//! nowhere, measured in the same run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use swarm_obs_suite::{TestHome, bin};

/// Lines per run.
const LINES: usize = 20_000;

/// Mixed output: plain lines, levels in the text, progress, JSON.
fn input() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..LINES {
        let line = match i % 4 {
            0 => format!("processing item {i} of {LINES}"),
            1 => format!("2026-01-05 14:32:15 WARN slow request id={i} took 231ms"),
            2 => format!("{{\"level\":\"info\",\"msg\":\"batch {i}\",\"rows\":{i}}}"),
            _ => format!("step {i}/{LINES} \x1b[32mok\x1b[0m"),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Feeds `input` to `cmd` and waits for it to finish; returns the wall time.
fn run_once(cmd: &mut Command, input: &[u8]) -> Duration {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    assert!(child.wait().expect("wait").success());
    start.elapsed()
}

fn measure(c: &mut Criterion, name: &str, make: &dyn Fn() -> Command, input: &[u8]) -> Duration {
    let samples = Mutex::new(Vec::new());
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = run_once(&mut make(), input);
                samples.lock().unwrap().push(t);
                total += t;
            }
            total
        })
    });
    let mut all = samples.into_inner().unwrap();
    all.sort();
    all[all.len() / 2]
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1));
    let input = input();
    let home = TestHome::new();
    let pipe = bin("swarm-obs");
    let cat = measure(&mut c, "cat", &|| Command::new("cat"), &input);
    let piped = measure(
        &mut c,
        "swarm-obs pipe",
        &|| pipe_command(&pipe, home.path()),
        &input,
    );
    let per_sec = |d: Duration| LINES as f64 / d.as_secs_f64();
    println!();
    println!("{LINES} lines (median run), against `cat` in this run:");
    println!("  cat              {:>10.0} lines/s", per_sec(cat));
    println!(
        "  swarm-obs pipe   {:>10.0} lines/s  ({:.1}× the time of cat)",
        per_sec(piped),
        piped.as_secs_f64() / cat.as_secs_f64()
    );
}

fn pipe_command(program: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(["pipe", "--source", "bench", "--home"])
        .arg(home)
        .env("SWARM_OBS_COLLECTOR", "off")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    cmd
}
