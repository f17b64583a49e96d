//! Wall time of one `swarm-hook` process per Claude Code event, as a ratio to a
//! do-nothing binary that reads stdin, measured in the same run.
//!
//! Budgets (DESIGN.md): median ≤ 2× the baseline with the collector up; with the
//! collector hung, back within 100 ms with the event on disk. With notifications on,
//! a `Stop` that is shown costs the hook one detached delivery process (the hook does
//! not wait for it), or, with a collector that shows notifications, one more request
//! on the POST's connection; one held back by the debounce costs a locked state-file update.
//! The shown case is measured one at a time (each run after the previous delivery is
//! done, as with one Stop per turn) and back to back, where deliveries overlap runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use swarm_obs_suite::bench::{median_of, time_process};
use swarm_obs_suite::{
    Collector, ListenerMode, TestHome, TestListener, bin, example, fixtures_dir,
};

/// The median wall time of `program` run with `envs` and `input` on stdin.
fn measure(
    c: &mut Criterion,
    name: &str,
    program: &Path,
    envs: &[(&str, String)],
    input: &[u8],
) -> Duration {
    median_of(c, name, || {
        let mut cmd = Command::new(program);
        cmd.env_remove("SWARM_OBS_COLLECTOR")
            .envs(envs.iter().map(|(k, v)| (k, v)));
        time_process(&mut cmd, input)
    })
}

/// Waits (up to 10 s) until `path` holds `n` lines: every delivery so far is done.
fn wait_for_lines(path: &Path, n: usize) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < until {
        let lines = std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        if lines >= n {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    panic!("{} did not reach {n} deliveries in 10 s", path.display());
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let hook: PathBuf = bin("swarm-hook");
    let noop = example("noop_stdin");
    let input = std::fs::read(fixtures_dir().join("PreToolUse.json")).expect("fixture");
    let home = TestHome::new();
    let home_env = ("SWARM_OBS_HOME", home.path().display().to_string());

    let baseline = measure(
        &mut c,
        "baseline: noop binary reading stdin",
        &noop,
        &[],
        &input,
    );
    let absent = measure(
        &mut c,
        "swarm-hook, no collector",
        &hook,
        std::slice::from_ref(&home_env),
        &input,
    );
    let collector_home = TestHome::new();
    let collector = Collector::start(&collector_home);
    let up = measure(
        &mut c,
        "swarm-hook, collector listening",
        &hook,
        &[
            home_env.clone(),
            ("SWARM_OBS_COLLECTOR", collector.addr().to_owned()),
        ],
        &input,
    );
    drop(collector);
    let hung = TestListener::start(ListenerMode::Hang);
    let hung_median = measure(
        &mut c,
        "swarm-hook, collector hung",
        &hook,
        &[home_env, ("SWARM_OBS_COLLECTOR", hung.addr())],
        &input,
    );
    drop(hung);

    // Notifications on: the command backend, so no desktop is needed to measure the
    // hook's side (the rules, the shared gate, the hand-off to a delivery process or
    // to the collector). Its command appends a line per delivery, so a run can wait
    // for the previous one. The rate cap is lifted so every run is shown; its window
    // is short so the gate's state stays as small as the default cap (5 in 10 s)
    // keeps it, instead of holding every run of the last 10 s.
    let stop = std::fs::read(fixtures_dir().join("Stop.json")).expect("fixture");
    let notify_home = |debounce_ms: u64| {
        let home = TestHome::new();
        let delivered = home.path().join("delivered");
        let config = format!(
            "[notify]\nbackend = \"command\"\ncommand = \"echo >> '{}'\"\ndebounce_ms = {debounce_ms}\nrate_limit = 1000000\nrate_window_ms = 20\n",
            delivered.display()
        );
        std::fs::write(home.path().join("config.toml"), config).expect("config");
        (home, delivered)
    };
    let (shown_home, delivered) = notify_home(0);
    let shown_env = [("SWARM_OBS_HOME", shown_home.path().display().to_string())];
    // Claude Code ends a turn with one Stop: the hook's own wall time is what it
    // waits for, so each run starts once the previous delivery has finished, and
    // after a pause for what follows it (the command's shell exiting and being
    // reaped, the collector's commit) that seconds between turns would absorb.
    let mut runs = 0;
    let mut one_at_a_time = |c: &mut Criterion, name: &str| {
        median_of(c, name, || {
            let mut cmd = Command::new(&hook);
            cmd.env_remove("SWARM_OBS_COLLECTOR")
                .envs(shown_env.clone());
            let took = time_process(&mut cmd, &stop);
            runs += 1;
            wait_for_lines(&delivered, runs);
            std::thread::sleep(Duration::from_millis(5));
            took
        })
    };
    let shown = one_at_a_time(&mut c, "swarm-hook Stop, notification shown");
    // A collector on the same state root shows notifications itself: the hook hands
    // it the job instead of starting a delivery process.
    let shown_collector = Collector::start(&shown_home);
    let shown_up = one_at_a_time(
        &mut c,
        "swarm-hook Stop, notification shown, collector listening",
    );
    drop(shown_collector);
    // Back to back, each run also competes with the deliveries still running.
    let burst = measure(
        &mut c,
        "swarm-hook Stop, notification shown, back to back",
        &hook,
        &shown_env,
        &stop,
    );
    let (held_home, _) = notify_home(3_600_000);
    let held = measure(
        &mut c,
        "swarm-hook Stop, notification debounced",
        &hook,
        &[("SWARM_OBS_HOME", held_home.path().display().to_string())],
        &stop,
    );
    c.final_summary();

    let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
    println!();
    println!("swarm-hook wall time per event (median), against the baseline in this run:");
    println!(
        "  baseline (noop reading stdin)   {:>9.3} ms   1.00x",
        baseline.as_secs_f64() * 1e3
    );
    println!(
        "  no collector                    {:>9.3} ms   {:.2}x  (budget 2x)",
        absent.as_secs_f64() * 1e3,
        ratio(absent)
    );
    println!(
        "  collector listening             {:>9.3} ms   {:.2}x  (budget 2x)",
        up.as_secs_f64() * 1e3,
        ratio(up)
    );
    println!(
        "  collector hung                  {:>9.3} ms   {:.2}x  (budget 100 ms)",
        hung_median.as_secs_f64() * 1e3,
        ratio(hung_median)
    );
    println!(
        "  Stop, notification shown        {:>9.3} ms   {:.2}x  (budget 2x)",
        shown.as_secs_f64() * 1e3,
        ratio(shown)
    );
    println!(
        "  Stop, shown, collector up       {:>9.3} ms   {:.2}x  (budget 2x)",
        shown_up.as_secs_f64() * 1e3,
        ratio(shown_up)
    );
    println!(
        "  Stop, shown, back to back       {:>9.3} ms   {:.2}x  (deliveries overlap)",
        burst.as_secs_f64() * 1e3,
        ratio(burst)
    );
    println!(
        "  Stop, notification debounced    {:>9.3} ms   {:.2}x  (budget 2x)",
        held.as_secs_f64() * 1e3,
        ratio(held)
    );
    println!(
        "  events written during the run: {}",
        home.event_lines().len()
    );
}
