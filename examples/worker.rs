//! A worker that runs a few tasks and reports them through swarm-obs: a heartbeat
//! file, human and JSON log lines, and live events for the collector.
//!
//! `cargo run --example worker -- [tasks] [steps] [step_ms] [name] [interval_ms]`,
//! then watch `logs/backend.log` and `heartbeats/backend.json` under
//! `$SWARM_OBS_HOME` (the name, `backend` unless given, names the files; the
//! heartbeat interval is 1000 ms unless given).

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| {
        args.get(i)
            .map_or(default, |a| a.parse::<u64>().unwrap_or(1))
    };
    let (tasks, steps) = (number(0, 3), number(1, 5));
    let step = Duration::from_millis(number(2, 200));
    let name = args.get(3).map_or("backend", String::as_str);
    let interval = Duration::from_millis(number(4, 1000));

    let _guard = swarm_obs::init(name)
        .interval(interval)
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
