//! Lines per second through `swarm-obs pipe` (each line parsed, written to the event
//! and text logs, the heartbeat kept), as a ratio to `cat` copying the same input to
//! nowhere, measured in the same run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use swarm_obs_suite::bench::{median_of, time_process};
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

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1));
    let input = input();
    let home = TestHome::new();
    let pipe = bin("swarm-obs");
    let cat = median_of(&mut c, "cat", || {
        time_process(&mut Command::new("cat"), &input)
    });
    let piped = median_of(&mut c, "swarm-obs pipe", || {
        time_process(&mut pipe_command(&pipe, home.path()), &input)
    });
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
