//! `swarm-obs top`'s CPU cost, measured on the real program under tmux against a
//! real collector.
//!
//! The baseline is the same dashboard in the same run with no new events (it still
//! polls ten times a second and redraws once a second); the figure is the CPU it
//! takes while events arrive at a steady rate, as a ratio to that baseline and per
//! event shown.
//!
//! Run: `cargo bench --bench top` (needs tmux; Linux, as it reads `/proc`).

use std::time::{Duration, Instant};

use swarm_obs::{Event, Kind};
use swarm_obs_suite::{Collector, TestHome, Tmux, bin, have_programs};

/// How long each phase is measured.
const PHASE: Duration = Duration::from_secs(10);
/// Events posted per batch, and batches per second, while busy.
const BATCH: usize = 10;
const BATCHES_PER_SEC: u64 = 20;

/// CPU time (user + system) of `pid` so far.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 1..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("tick count"))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((fields[0] + fields[1]) * 1000 / hz)
}

/// The CPU `pid` uses while `during` runs for [`PHASE`].
fn measure(pid: u32, mut during: impl FnMut()) -> Duration {
    let before = cpu(pid);
    let end = Instant::now() + PHASE;
    while Instant::now() < end {
        during();
    }
    cpu(pid) - before
}

fn main() {
    if !have_programs("bench top", Tmux::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let collector = Collector::start(&home);
    let tmux = Tmux::start_program(
        &home,
        &bin("swarm-obs"),
        &[
            "top",
            "--home",
            home.path().to_str().expect("a UTF-8 temp path"),
            "--collector",
            collector.addr(),
        ],
        160,
        50,
    );
    tmux.wait_for("the dashboard", |s| s.contains("┌ Events"));
    let pid = tmux.program_pid().expect("the pid of swarm-obs top");

    let idle = measure(pid, || std::thread::sleep(Duration::from_millis(100)));
    let mut posted = 0usize;
    let busy = measure(pid, || {
        let batch: Vec<Event> = (0..BATCH)
            .map(|i| Event::new("bench", Kind::Log, format!("event {}", posted + i)))
            .collect();
        collector.post_events(&batch);
        posted += BATCH;
        std::thread::sleep(Duration::from_millis(1000 / BATCHES_PER_SEC));
    });
    tmux.wait_for("the last event on screen", |s| {
        s.contains(&format!("event {}", posted - 1))
    });
    tmux.send_keys(&["q"]);
    assert_eq!(tmux.wait_exit(), 0, "top exits cleanly after the bench");

    let pct = |d: Duration| 100.0 * d.as_secs_f64() / PHASE.as_secs_f64();
    let rate = posted as f64 / PHASE.as_secs_f64();
    println!(
        "top, idle (baseline):         {:5.2}% of one core",
        pct(idle)
    );
    println!(
        "top, {rate:.0} events/s:            {:5.2}% of one core ({:.1}x the baseline)",
        pct(busy),
        busy.as_secs_f64() / idle.as_secs_f64().max(0.001)
    );
    println!(
        "top, CPU per event shown:      {:.0} µs above the baseline",
        busy.saturating_sub(idle).as_secs_f64() * 1e6 / posted.max(1) as f64
    );
}
