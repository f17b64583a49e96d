//! `swarm-obs demo`: the whole picture on one machine in a minute. A collector of its
//! own, three workers built on the library (one finishes, one fails, one dies
//! without a goodbye), and a captured Claude Code session replayed through the real
//! `swarm-hook`, all shown live by the same follower as `swarm-obs tail -f`.

mod scenario;
mod worker;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use swarm_obs::{CollectorAddress, Event, Kind, StateRoot};

use crate::signals;
use crate::tail::remote::Endpoint;
use crate::tail::render::{ColorChoice, Output, Printer};
use crate::tail::select::Selection;
use crate::tail::{Ended, Feed, Flow, Tail};
use scenario::{Narrator, SESSION, Scenario, Workers, lock};
use worker::Role;

/// Arguments of `swarm-obs demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Starts a collector on a free loopback port and a swarm that keeps going: round
after round, three example workers (one finishes, one fails, one is killed and
turns dead, then comes back) and a Claude Code session replayed through the real
swarm-hook (a subagent, a permission prompt, a failing tool, a turn that ends).
It prints the dashboard address and what to try next, and follows every event
live, exactly as `swarm-obs tail -f` would. Ctrl-C stops everything the demo
started and removes its temporary state root (--keep keeps it).

Examples:
  swarm-obs demo                       watch until Ctrl-C
  swarm-obs demo --once                one round, show the outcomes, exit
  swarm-obs demo --duration 120        stop after two minutes
  swarm-obs demo --home /tmp/swarm-demo --once --color never")]
pub struct Args {
    /// State root for the demo's files (default: a fresh temporary directory,
    /// removed at exit unless --keep).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Keep the temporary state root at exit (a --home given is always kept).
    #[arg(long)]
    keep: bool,
    /// Play one round and exit 0 once every outcome is in (each worker's ending
    /// and the whole session), instead of following until Ctrl-C.
    #[arg(long)]
    once: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Colour sources and levels: auto, always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Run as one of the demo's workers (the demo starts these itself).
    #[arg(long, value_enum, hide = true)]
    worker: Option<Role>,
}

/// Longest `--once` waits for every outcome before it reports what is missing.
const ONCE_DEADLINE: Duration = Duration::from_secs(90);
/// Heartbeat grace for the demo's collector, so a silent worker is called out fast.
const GRACE_MS: &str = "2000";
/// Set by SIGINT or SIGTERM, and when the demo is done: stop everything and exit.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set by SIGINT or SIGTERM only: the person stopped the demo.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// What the demo has seen of each ending, from the events it showed.
#[derive(Debug, Default)]
struct Outcomes {
    builder: Option<String>,
    tester: Option<String>,
    crawler: Option<String>,
    session: Option<String>,
    hook_events: usize,
    session_ended: bool,
}

impl Outcomes {
    fn see(&mut self, ev: &Event) {
        let source = ev.source.as_str();
        match ev.kind {
            Kind::Done if source == Role::Builder.source() => {
                self.builder = Some(format!("done   {}", ev.msg));
            }
            Kind::Error if source == Role::Tester.source() => {
                self.tester = Some(format!("error  {}", ev.msg));
            }
            Kind::Alert if source == Role::Crawler.source() => {
                let state = ev.fields.get("state").and_then(|s| s.as_str());
                if let Some(state @ ("dead" | "down")) = state {
                    self.crawler = Some(format!("{state:<6} {}", ev.msg));
                }
            }
            _ => {}
        }
        if let Some(hook) = &ev.hook {
            self.hook_events += 1;
            self.session_ended |= hook == "SessionEnd";
            if self.session.is_none() {
                self.session.clone_from(&ev.session);
            }
        }
    }

    /// What an event means for a person watching, said as it happens.
    fn news(ev: &Event) -> Option<String> {
        let source = ev.source.as_str();
        let state = ev.fields.get("state").and_then(|s| s.as_str());
        Some(match (ev.kind, ev.hook.as_deref()) {
            (Kind::Done, None) if source == Role::Builder.source() => {
                "outcome: builder finished its task; its last heartbeat says stopped".to_owned()
            }
            (Kind::Error, None) if source == Role::Tester.source() => {
                "outcome: tester failed with an error; status, top and the dashboard show it failed (exit 1)".to_owned()
            }
            (Kind::Alert, _) if source == Role::Crawler.source() && state == Some("dead") => {
                "outcome: crawler was killed without a goodbye; the collector saw its process gone and called it dead".to_owned()
            }
            (Kind::Alert, _)
                if ev.fields.get("previous").and_then(|v| v.as_str()) == Some("dead")
                    && state == Some("alive") =>
            {
                format!("outcome: {source} is back: its new process beats, and the collector says it recovered")
            }
            (_, Some("PermissionRequest")) => {
                "outcome: the Claude Code session waits for a permission: it needs you".to_owned()
            }
            (_, Some("Stop")) => {
                "outcome: the agent's turn is over; the session waits for the next prompt".to_owned()
            }
            (_, Some("SessionEnd")) => "outcome: the Claude Code session ended".to_owned(),
            _ => return None,
        })
    }

    fn complete(&self) -> bool {
        self.builder.is_some()
            && self.tester.is_some()
            && self.crawler.is_some()
            && self.session_ended
            && self.hook_events >= SESSION.len()
    }

    fn missing(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.builder.is_none() {
            m.push("the builder's done event");
        }
        if self.tester.is_none() {
            m.push("the tester's error event");
        }
        if self.crawler.is_none() {
            m.push("the crawler's dead/down alert");
        }
        if !self.session_ended || self.hook_events < SESSION.len() {
            m.push("every hook event of the session");
        }
        m
    }
}

/// Runs the demo, or one of its workers.
pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(role) = args.worker {
        return worker::run(role);
    }
    catch_signals()?;
    let temporary = args.home.is_none();
    let home = match &args.home {
        Some(h) => h.clone(),
        None => std::env::temp_dir().join(format!("swarm-obs-demo-{}", std::process::id())),
    };
    let result = run_in(&args, &home);
    if temporary && !args.keep {
        // Everything the demo started has stopped: its files can go.
        match std::fs::remove_dir_all(&home) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "swarm-obs demo: cannot remove its state root {}: {e}",
                home.display()
            ),
        }
    }
    result
}

fn run_in(args: &Args, home: &Path) -> Result<ExitCode> {
    let hook = crate::locate::find_program("swarm-hook")?;
    let exe = std::env::current_exe().context("cannot locate the swarm-obs binary")?;
    let root = StateRoot::new(home);
    // A reused state root keeps the last run's heartbeats; its dead crawler must not
    // be mistaken for this run's.
    for role in Role::ALL {
        let path = root.heartbeat_file(role.source());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot remove the old heartbeat {}", path.display())
                });
            }
        }
    }
    let collector = DemoCollector::start(&exe, &root)?;
    let address = CollectorAddress::parse(&collector.addr).with_context(|| {
        format!(
            "the demo collector wrote a bad address to {}",
            root.collector_file().display()
        )
    })?;

    // Follow before anything happens, so every event is shown.
    let sel = Selection::default();
    let (mut feed, _, notice) =
        Feed::open(&root, Some(Endpoint::Fixed(address)), &sel, Some(0), true)?;
    if let Some(n) = notice {
        eprintln!("swarm-obs demo: {n}");
    }

    let workers = Arc::new(Mutex::new(Workers::default()));
    lock(&workers).start(&exe, home)?;
    println!(
        "{}",
        banner(args, &collector, home, &exe, &lock(&workers).running)
    );

    // The rounds and the reaping of workers run beside the follower.
    let scenario = Scenario {
        exe: exe.clone(),
        hook,
        home: home.to_owned(),
        addr: collector.addr.clone(),
        live: !args.once,
    };
    let playing = {
        let workers = workers.clone();
        std::thread::Builder::new()
            .name("demo-scenario".into())
            .spawn(move || scenario.play(&workers))
            .context("cannot start the demo's scenario thread")?
    };

    let color = args.color.enabled();
    let stdout = std::io::stdout();
    let printer = Printer::new(
        BufWriter::new(stdout.lock()),
        Output::Human,
        color,
        swarm_obs::local_offset_secs(),
    );
    let mut tail = Tail::new(sel, printer);
    let mut outcomes = Outcomes::default();
    let narrator = Narrator::new(home, &collector.addr);
    let started = Instant::now();
    let once = args.once;
    let limit = args
        .duration
        .map(Duration::from_secs)
        .or(once.then_some(ONCE_DEADLINE));
    let ended = tail.run(
        &mut feed,
        &[],
        true,
        &mut |ev| {
            outcomes.see(ev);
            if let Some(news) = Outcomes::news(ev) {
                narrator.say(swarm_obs::Level::Info, news);
            }
            if once && outcomes.complete() {
                Flow::Stop
            } else {
                Flow::Continue
            }
        },
        &|| INTERRUPTED.load(Ordering::SeqCst) || limit.is_some_and(|l| started.elapsed() >= l),
    );
    drop(tail);
    drop(feed);

    // Stop everything, whatever ended the tail.
    INTERRUPTED.store(true, Ordering::SeqCst);
    let replayed = playing
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the scenario thread panicked")));
    let mut w = lock(&workers);
    w.stop();
    let collector_pid = collector.pid();
    drop(collector);
    let ended = ended?;
    let replayed = replayed?;

    let mut out = std::io::stdout().lock();
    let summary = summary(&outcomes, replayed, &w.exited, collector_pid);
    if ended != Ended::OutputClosed {
        let _ = out.write_all(summary.as_bytes());
        let _ = out.flush();
    }
    // Stopped by the person before every outcome was seen: not a failure of the
    // demo, but not a pass of `--once` either (130, as a shell reports SIGINT).
    if once && !outcomes.complete() && SIGNALLED.load(Ordering::SeqCst) {
        return Ok(ExitCode::from(130));
    }
    if once && !outcomes.complete() && ended != Ended::OutputClosed {
        bail!(
            "the demo ended without {} (state root {})",
            outcomes.missing().join(", "),
            home.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Routes SIGINT, SIGTERM, SIGHUP and SIGQUIT to [`INTERRUPTED`] through
/// the CLI's one signal mechanism, so the demo stops what it started rather than
/// dying and leaving it running.
fn catch_signals() -> Result<()> {
    signals::block()
        .context("cannot block signals to stop cleanly")?
        .spawn_waiter(|r| {
            if signals::STOPS.contains(&r.signal) {
                SIGNALLED.store(true, Ordering::SeqCst);
                INTERRUPTED.store(true, Ordering::SeqCst);
            }
        })
        .context("cannot start the signal thread")
}

/// How to run this `swarm-obs` from a shell: its name when that is what `PATH`
/// finds, else its full path.
fn command_name(exe: &Path) -> String {
    let same = crate::locate::on_path("swarm-obs")
        .and_then(|p| std::fs::canonicalize(p).ok())
        .is_some_and(|p| std::fs::canonicalize(exe).is_ok_and(|e| e == p));
    if same {
        "swarm-obs".to_owned()
    } else {
        crate::shell::shell_word(&exe.to_string_lossy())
    }
}

/// What the demo started, where to look, and what to try next.
fn banner(
    args: &Args,
    collector: &DemoCollector,
    home: &Path,
    exe: &Path,
    workers: &[(Role, Child)],
) -> String {
    let swarm_obs = command_name(exe);
    let env = format!(
        "SWARM_OBS_HOME={}",
        crate::shell::shell_word(&home.to_string_lossy())
    );
    let mut banner = format!(
        "swarm-obs demo: a collector, three workers and a Claude Code session replayed through swarm-hook\n\
         \x20 Dashboard:   http://{addr}/\n\
         \x20 State root:  {home}{kept}\n\
         \x20 Collector:   pid {pid}\n",
        addr = collector.addr,
        home = home.display(),
        kept = if args.home.is_some() || args.keep {
            ""
        } else {
            " (removed at exit; --keep keeps it)"
        },
        pid = collector.pid(),
    );
    for (role, child) in workers {
        banner.push_str(&format!(
            "  Worker:      {} (pid {})\n",
            role.source(),
            child.id()
        ));
    }
    banner.push_str(&format!(
        "  Try, while it runs:\n\
         \x20   the web dashboard:       open http://{addr}/ in a browser\n\
         \x20   the terminal dashboard:  {env} {swarm_obs} top\n\
         \x20   who is alive or dead:    {env} {swarm_obs} status\n\
         \x20   your own Claude Code:    {swarm_obs} hooks install\n",
        addr = collector.addr,
    ));
    banner.push_str(match (args.once, args.duration) {
        (true, _) => "  One round: runs until every outcome is in, then stops everything.\n",
        (false, Some(_)) => {
            "  Round after round for the given duration, then stops everything; Ctrl-C stops sooner.\n"
        }
        (false, None) => "  Round after round until you press Ctrl-C, which stops everything.\n",
    });
    banner
}

/// The closing report: each ending, the session, and what was stopped.
fn summary(
    o: &Outcomes,
    replayed: usize,
    exited: &[(Role, u32, ExitStatus)],
    collector_pid: u32,
) -> String {
    let pending = "(not seen)".to_owned();
    let mut s = String::from("\nOutcomes:\n");
    for (role, outcome) in [
        (Role::Builder, &o.builder),
        (Role::Tester, &o.tester),
        (Role::Crawler, &o.crawler),
    ] {
        s.push_str(&format!(
            "  {:<8} {}\n",
            role.source(),
            outcome.as_ref().unwrap_or(&pending)
        ));
    }
    s.push_str(&format!(
        "  session  {}: {replayed} hook events replayed through swarm-hook, {} shown{}\n",
        o.session.as_deref().unwrap_or("(none seen)"),
        o.hook_events,
        if o.session_ended { ", ended" } else { "" }
    ));
    let pids: Vec<String> = exited
        .iter()
        .map(|(role, pid, status)| format!("{} pid {pid} ({status})", role.source()))
        .collect();
    s.push_str(&format!(
        "Stopped: collector pid {collector_pid}; workers {}\n",
        pids.join(", ")
    ));
    s
}

/// A collector started for the demo, stopped when dropped.
struct DemoCollector {
    child: Child,
    addr: String,
}

impl DemoCollector {
    /// Starts `swarm-obs serve` on a free loopback port and waits for `collector.json`.
    fn start(exe: &Path, root: &StateRoot) -> Result<Self> {
        let info_path = root.collector_file();
        let child = signals::unblocked_in_child(
            Command::new(exe)
                .args([
                    "serve",
                    "--addr",
                    "127.0.0.1:0",
                    "--heartbeat-grace-ms",
                    GRACE_MS,
                    "--home",
                ])
                .arg(root.dir())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .spawn()
        .context("cannot start the demo collector (swarm-obs serve)")?;
        let mut collector = Self {
            child,
            addr: String::new(),
        };
        for _ in 0..400 {
            if let Some(info) = swarm_obs::CollectorInfo::read(&info_path)
                && info.pid == collector.child.id()
            {
                collector.addr = info.addr;
                return Ok(collector);
            }
            if let Some(status) = collector.child.try_wait()? {
                bail!(
                    "the demo collector exited with {status}; run `swarm-obs serve --addr 127.0.0.1:0 --home {}` to see why",
                    root.dir().display()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!(
            "the demo collector did not write {} within 10 s",
            info_path.display()
        )
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for DemoCollector {
    fn drop(&mut self) {
        // SIGTERM lets it commit and remove collector.json; kill as a last resort.
        #[cfg(unix)]
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..500 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
