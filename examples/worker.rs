//! A worker that runs a few tasks and reports them through swarm-obs: a heartbeat
//! file, human and JSON log lines, and live events for the collector.
//!
//! `cargo run --example worker -- [tasks] [steps] [step_ms] [name] [interval_ms]`,
//! then watch `logs/backend.log` and `heartbeats/backend.json` under
//! `$SWARM_OBS_HOME` (the name, `backend` unless given, names the files; the
//! heartbeat interval is 1000 ms unless given).

use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: worker [tasks] [steps] [step_ms] [name] [interval_ms]   (numbers, then a name)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, what: &str, default: u64| -> Result<u64, String> {
        match args.get(i) {
            None => Ok(default),
            Some(a) => a
                .parse::<u64>()
                .map_err(|_| format!("worker: {what} must be a number, not {a:?}\n{USAGE}")),
        }
    };
    let parsed = (|| {
        Ok::<_, String>((
            number(0, "tasks", 3)?,
            number(1, "steps", 5)?,
            number(2, "step_ms", 200)?,
            number(4, "interval_ms", 1000)?,
        ))
    })();
    let (tasks, steps, step_ms, interval_ms) = match parsed {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.len() > 5 {
        eprintln!("worker: too many arguments\n{USAGE}");
        return ExitCode::from(2);
    }
    let step = Duration::from_millis(step_ms);
    let name = args.get(3).map_or("backend", String::as_str);
    let interval = Duration::from_millis(interval_ms);

    let _guard = match swarm_obs::init(name)
        .interval(interval)
        .field("version", env!("CARGO_PKG_VERSION"))
        .install()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("worker: swarm-obs could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let root = swarm_obs::StateRoot::resolve();
    eprintln!(
        "worker {name}: {tasks} tasks of {steps} steps; heartbeat {}, human log {}, events in {}",
        root.heartbeat_file(name).display(),
        root.log_file(name).display(),
        root.events_dir().display()
    );

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
    ExitCode::SUCCESS
}
