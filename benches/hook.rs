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
//!
//! Then the figure the agent feels: from Claude Code spawning the hook to the hook's
//! exit, run the way Claude Code runs it (`/bin/sh -c <command>` with sh staying as
//! the parent, or exec form, the binary spawned directly; stdin a socket closed
//! after the payload), one at a time and 8 at once (hooks of one event run in
//! parallel; Claude Code waits for the last), each against `cat > /dev/null` run
//! the same way. Budget (DESIGN.md): swarm-hook ≤ 1.2× `cat` with the collector up.
//! The variants run in interleaved rounds (each round runs every one, in a rotating
//! order), so a machine busy with something else slows them alike; medians.
//! `cargo bench --bench hook -- claude-code` runs only this part;
//! `SWARM_OBS_BENCH_HOOK_BEFORE=<another swarm-hook build>` adds its rows to the
//! same rounds, to compare a change with the build before it.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// How Claude Code starts a command hook.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `"command": "<shell command>"`: `/bin/sh -c <command>`, sh staying the parent.
    Shell,
    /// `"command": "<program>", "args": []`: the program spawned directly.
    Exec,
}

/// One way of running one hook: what, how, with which environment.
struct HookRun {
    form: Form,
    /// The program (exec form), or the shell command (shell form).
    command: OsString,
    envs: Vec<(&'static str, String)>,
}

impl HookRun {
    /// Spawns it as Claude Code does, with the payload written to a socket as its
    /// stdin, then closed.
    fn spawn(&self, input: &[u8]) -> Child {
        let mut cmd = match self.form {
            Form::Shell => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(&self.command);
                c
            }
            Form::Exec => Command::new(&self.command),
        };
        let (mut ours, theirs) = UnixStream::pair().expect("a socket pair for stdin");
        let child = cmd
            .env_remove("SWARM_OBS_COLLECTOR")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the measured hook");
        ours.write_all(input).expect("write the payload");
        drop(ours);
        child
    }

    /// Wall time from spawning `n` of it (one after another, as Claude Code starts
    /// the hooks of one event) to the exit of the last.
    fn time(&self, n: usize, input: &[u8]) -> Duration {
        let start = Instant::now();
        let children: Vec<Child> = (0..n).map(|_| self.spawn(input)).collect();
        for mut child in children {
            let status = child.wait().expect("wait for the hook");
            assert!(status.success(), "the measured hook failed: {status}");
        }
        start.elapsed()
    }
}

/// The median of `times`.
fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// One figure of [`inside_claude_code`]: a row (what runs) in a column (how, how
/// many at once), with its samples.
struct Cell {
    row: usize,
    column: usize,
    width: usize,
    run: HookRun,
    samples: Vec<Duration>,
}

/// Spawn → exit inside Claude Code: swarm-hook (collector up, collector down) and
/// `cat > /dev/null`, in shell and exec form, one at a time and 8 at once, in
/// interleaved rounds. Prints each median as a ratio to `cat` run the same way.
fn inside_claude_code(hook: &Path, input: &[u8], rounds: usize) {
    let up_home = TestHome::new();
    let collector = Collector::start(&up_home);
    let down_home = TestHome::new();
    // The address of a collector that is gone: connects are refused.
    let gone = format!("127.0.0.1:{}", swarm_obs_suite::free_port());
    let env = |home: &TestHome, addr: Option<String>| {
        let mut env = vec![("SWARM_OBS_HOME", home.path().display().to_string())];
        env.extend(addr.map(|a| ("SWARM_OBS_COLLECTOR", a)));
        env
    };
    // Rows: what runs (no program: the baseline, cat) and where. "Collector up" is
    // a hook of the collector's own state root, which finds it as a user's hook
    // does (collector.json: its Unix socket); "over TCP" is told its address.
    let before = std::env::var_os("SWARM_OBS_BENCH_HOOK_BEFORE").map(PathBuf::from);
    let up_env = env(&up_home, None);
    let tcp_env = env(&up_home, Some(collector.addr().to_owned()));
    let down_env = env(&down_home, Some(gone));
    let mut rows = vec![
        ("cat > /dev/null", None, Vec::new()),
        ("swarm-hook, collector up", Some(hook), up_env.clone()),
        ("swarm-hook, up, over TCP", Some(hook), tcp_env),
        ("swarm-hook, collector down", Some(hook), down_env.clone()),
    ];
    if let Some(before) = &before {
        rows.push(("before, collector up", Some(before.as_path()), up_env));
        rows.push(("before, collector down", Some(before.as_path()), down_env));
    }
    let quoted = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let columns = [
        (Form::Shell, 1, "sh -c, one"),
        (Form::Shell, 8, "sh -c, 8 at once"),
        (Form::Exec, 1, "exec, one"),
        (Form::Exec, 8, "exec, 8 at once"),
    ];
    let mut cells = Vec::new();
    for (row, (_, program, envs)) in rows.iter().enumerate() {
        for (column, &(form, width, _)) in columns.iter().enumerate() {
            let command: OsString = match (program, form) {
                (None, Form::Shell) => "cat > /dev/null".into(),
                (None, Form::Exec) => "cat".into(),
                (Some(p), Form::Shell) => quoted(p).into(),
                (Some(p), Form::Exec) => p.as_os_str().to_owned(),
            };
            let envs = envs.clone();
            cells.push(Cell {
                row,
                column,
                width,
                run: HookRun {
                    form,
                    command,
                    envs,
                },
                samples: Vec::with_capacity(rounds),
            });
        }
    }
    // A warm-up round, unrecorded: page cache, the collector's first connections.
    for c in &cells {
        c.run.time(c.width, input);
    }
    for round in 0..rounds {
        let len = cells.len();
        for i in 0..len {
            let c = &mut cells[(i + round) % len];
            c.samples.push(c.run.time(c.width, input));
        }
    }
    drop(collector);

    let mut medians = vec![[Duration::ZERO; 4]; rows.len()];
    for c in &mut cells {
        medians[c.row][c.column] = median(&mut c.samples);
    }
    println!();
    println!(
        "Spawned → exit inside Claude Code (median of {rounds} interleaved rounds), against `cat > /dev/null` run the same way:"
    );
    print!("  {:<28}", "");
    for (_, _, head) in &columns {
        print!("{head:>24}");
    }
    println!();
    if let Some(before) = &before {
        println!("  (before: {})", before.display());
    }
    for ((what, _, _), row) in rows.iter().zip(&medians) {
        print!("  {what:<28}");
        for (d, base) in row.iter().zip(&medians[0]) {
            let ratio = d.as_secs_f64() / base.as_secs_f64();
            let figure = format!("{:.3} ms {ratio:.2}x", d.as_secs_f64() * 1e3);
            print!("{figure:>24}");
        }
        if what.starts_with("swarm-hook, collector up") {
            print!("  (budget 1.2x)");
        }
        println!();
    }
}

fn main() {
    // `cargo bench` passes --bench; a plain `cargo test --benches` passes nothing
    // and runs this too, so keep that run short.
    let full = std::env::args().any(|a| a == "--bench");
    let hook: PathBuf = bin("swarm-hook");
    let input = std::fs::read(fixtures_dir().join("PreToolUse.json")).expect("fixture");
    let rounds = if full { 200 } else { 2 };
    if std::env::args().any(|a| a == "claude-code") {
        inside_claude_code(&hook, &input, rounds);
        return;
    }
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let noop = example("noop_stdin");
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
    // The hook's own client against the one outbound client (ureq), in-process, one
    // event per call to the same collector, a new client per call as a fresh hook
    // process has: what keeping the hook's client buys.
    let event = swarm_obs::Event::new("bench", swarm_obs::Kind::Log, "one event");
    let address = swarm_obs::CollectorAddress::parse(collector.addr()).expect("address");
    let budget = Duration::from_secs(2);
    let hook_leaves = median_of(&mut c, "client: hook's, request written, no answer", || {
        let t = Instant::now();
        swarm_obs::CollectorClient::new(address.clone(), budget)
            .send_logged(std::slice::from_ref(&event))
            .expect("send");
        t.elapsed()
    });
    let hook_answered = median_of(&mut c, "client: hook's, answer read", || {
        let t = Instant::now();
        swarm_obs::CollectorClient::new(address.clone(), budget)
            .post_logged(std::slice::from_ref(&event))
            .expect("post");
        t.elapsed()
    });
    let url = address.url("/v1/events?ack=queued");
    let body = event.to_json_line();
    let tls = swarm_obs::tls::TlsOptions::default().load().expect("tls");
    let ureq_answered = median_of(&mut c, "client: ureq (http_client), answer read", || {
        let t = Instant::now();
        let r = swarm_obs::http_client::HttpClient::new(&tls, budget)
            .post(&url, &[], "application/x-ndjson", body.as_bytes())
            .expect("post");
        assert!(r.status < 300, "{}", r.status);
        t.elapsed()
    });
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
    let per = |d: Duration| d.as_secs_f64() / hook_leaves.as_secs_f64();
    println!();
    println!("one event to the collector, in-process, new client per call (median):");
    for (what, d) in [
        ("hook's client, written, no answer", hook_leaves),
        ("hook's client, answer read       ", hook_answered),
        ("ureq (http_client), answer read  ", ureq_answered),
    ] {
        println!(
            "  {what} {:>9.3} ms   {:.2}x",
            d.as_secs_f64() * 1e3,
            per(d)
        );
    }

    inside_claude_code(&hook, &input, rounds);
}
