//! Wall time of one `swarm-hook` process per Claude Code event, as a ratio to a
//! do-nothing binary that reads stdin, measured in the same run.
//!
//! Budgets (DESIGN.md): median ≤ 2× the baseline with the collector up; with the
//! collector hung, back within 100 ms with the event on disk. With notifications on,
//! a `Stop` that is shown costs the hook one detached delivery process (the hook does
//! not wait for it); one held back by the debounce costs a locked state-file update.

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
    // hook's side (the rules, the shared gate, the detached hand-off).
    let stop = std::fs::read(fixtures_dir().join("Stop.json")).expect("fixture");
    let notify_home = |debounce_ms: u64| {
        let home = TestHome::new();
        let config = format!(
            "[notify]\nbackend = \"command\"\ncommand = \"true\"\ndebounce_ms = {debounce_ms}\nrate_limit = 1000000\n"
        );
        std::fs::write(home.path().join("config.toml"), config).expect("config");
        home
    };
    let shown_home = notify_home(0);
    let shown = measure(
        &mut c,
        "swarm-hook Stop, notification shown",
        &hook,
        &[("SWARM_OBS_HOME", shown_home.path().display().to_string())],
        &stop,
    );
    let held_home = notify_home(3_600_000);
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
        "  Stop, notification debounced    {:>9.3} ms   {:.2}x  (budget 2x)",
        held.as_secs_f64() * 1e3,
        ratio(held)
    );
    println!(
        "  events written during the run: {}",
        home.event_lines().len()
    );
}
