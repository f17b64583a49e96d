//! A worker that runs a few tasks and reports them through swarm-obs: a heartbeat
//! file, human and JSON log lines, and live events for the collector.
//!
//! `cargo run --example worker -- [tasks] [steps] [step_ms]`, then watch
//! `logs/backend.log` and `heartbeats/backend.json` under `$SWARM_OBS_HOME`.

use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().unwrap_or(1));
    let (tasks, steps) = (args.next().unwrap_or(3), args.next().unwrap_or(5));
    let step = Duration::from_millis(args.next().unwrap_or(200));

    let _guard = swarm_obs::init("backend")
        .interval(Duration::from_secs(1))
        .field("version", env!("CARGO_PKG_VERSION"))
        .install()
        .expect("swarm-obs could not start");

    for n in 1..=tasks {
        let task = format!("TASK_{n:03}");
        let _span = tracing::info_span!("task", attempt = 1).entered();
        let started = Instant::now();
        swarm_obs::start!(task);
        for s in 1..=steps {
            std::thread::sleep(step);
            swarm_obs::progress!(s, steps, "Analysing file {s}.rs");
        }
        if n % 4 == 0 {
            tracing::warn!(retries = 1, "Slow upstream, retried once");
        }
        let ms = started.elapsed().as_millis() as u64;
        swarm_obs::done!(duration_ms = ms, "Finished {task}");
    }
}
