//! `swarm-obs demo`: the whole picture on one machine in a minute. A collector of its
//! own, three workers built on the library (one finishes, one fails, one dies
//! without a goodbye), and a captured Claude Code session replayed through the real
//! `swarm-hook`, all shown live by the same follower as `swarm-obs tail -f`.

mod worker;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use swarm_obs::{CollectorAddress, Event, Kind, StateRoot};

use crate::tail::remote::Endpoint;
use crate::tail::render::{ColorChoice, Output, Printer};
use crate::tail::select::Selection;
use crate::tail::{Ended, Feed, Flow, Tail};
use worker::Role;

/// Arguments of `swarm-obs demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Starts a collector on a free loopback port, three example workers and a replayed
Claude Code session, prints the dashboard address and follows every event live,
exactly as `swarm-obs tail -f` would. Ctrl-C stops everything the demo started.

Examples:
  swarm-obs demo                       watch until Ctrl-C
  swarm-obs demo --once                run the scenario, show the outcomes, exit
  swarm-obs demo --duration 120        stop after two minutes
  swarm-obs demo --home /tmp/swarm-demo --once --color never")]
pub struct Args {
    /// State root for the demo's files (default: a fresh temporary directory).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Exit 0 once every outcome is in (each worker's ending and the whole session),
    /// instead of following until Ctrl-C.
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
/// Pause between replayed hook events, so the session reads as it happened.
const HOOK_PAUSE: Duration = Duration::from_millis(150);
/// Heartbeat grace for the demo's collector, so a silent worker is called out fast.
const GRACE_MS: &str = "2000";
macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                "../../../tests/fixtures/claude-code/",
                $name,
                ".json"
            ))
            .as_slice(),
        )
    };
}

/// One Claude Code session in the order the hooks fire: a prompt, a tool call, a
/// subagent with its own tool call, a permission prompt, a failing tool, the end.
const SESSION: &[(&str, &[u8])] = &[
    fixture!("SessionStart"),
    fixture!("UserPromptSubmit"),
    fixture!("PreToolUse"),
    fixture!("PostToolUse"),
    fixture!("PreToolUse.Agent_tool"),
    fixture!("SubagentStart"),
    fixture!("PreToolUse.inside_subagent"),
    fixture!("PostToolUse.inside_subagent"),
    fixture!("SubagentStop"),
    fixture!("PostToolUse.Agent_tool"),
    fixture!("PermissionRequest"),
    fixture!("Notification.permission_prompt"),
    fixture!("PostToolUseFailure"),
    fixture!("Stop"),
    fixture!("SessionEnd"),
];

/// Set by SIGINT or SIGTERM, and when the demo is done: stop everything and exit.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set by SIGINT or SIGTERM only: the person stopped the demo.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    SIGNALLED.store(true, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to [`INTERRUPTED`], so the demo stops what it started
/// rather than dying and leaving it running.
fn catch_signals() {
    #[cfg(unix)]
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The demo's workers, killed and reaped on drop if still running.
#[derive(Default)]
struct Workers {
    running: Vec<(Role, Child)>,
    exited: Vec<(Role, u32, ExitStatus)>,
}

impl Workers {
    /// Starts every demo worker: this binary in `--worker` mode, on the demo's state
    /// root and collector.
    fn start(exe: &Path, home: &Path, collector: &str) -> Result<Self> {
        let mut workers = Self::default();
        for role in Role::ALL {
            let child = Command::new(exe)
                .args(["demo", "--worker", role.arg()])
                .env(swarm_obs::HOME_ENV, home)
                .env(swarm_obs::COLLECTOR_ENV, collector)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start the demo worker {}", role.source()))?;
            workers.running.push((role, child));
        }
        Ok(workers)
    }

    /// Reaps the workers that have exited (so a dead one's pid is really gone).
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            match self.running[i].1.try_wait() {
                Ok(Some(status)) => {
                    let (role, child) = self.running.swap_remove(i);
                    self.exited.push((role, child.id(), status));
                }
                _ => i += 1,
            }
        }
    }

    /// Kills and reaps every worker still running.
    fn stop(&mut self) {
        for (role, mut child) in self.running.drain(..) {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.exited.push((role, child.id(), status));
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

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
    catch_signals();
    let home = match &args.home {
        Some(h) => h.clone(),
        None => std::env::temp_dir().join(format!("swarm-obs-demo-{}", std::process::id())),
    };
    let hook = crate::locate::find_program("swarm-hook")?;
    let exe = std::env::current_exe().context("cannot locate the swarm-obs binary")?;
    let root = StateRoot::new(&home);
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

    let workers = Arc::new(Mutex::new(Workers::start(&exe, &home, &collector.addr)?));
    println!(
        "{}",
        banner(&args, &collector, &home, &lock(&workers).running)
    );

    // The session replay and the reaping of workers run beside the follower.
    let scenario = {
        let (hook, home, addr) = (hook.clone(), home.clone(), collector.addr.clone());
        let workers = workers.clone();
        std::thread::Builder::new()
            .name("demo-scenario".into())
            .spawn(move || {
                let replayed = replay(&hook, &home, &addr, &workers);
                // Reap workers as they end: a dead worker's pid must really be gone.
                while !INTERRUPTED.load(Ordering::SeqCst) {
                    let mut w = lock(&workers);
                    w.reap();
                    if w.running.is_empty() {
                        break;
                    }
                    drop(w);
                    std::thread::sleep(Duration::from_millis(50));
                }
                replayed
            })
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
    let replayed = scenario
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

/// What the demo started and where to look.
fn banner(
    args: &Args,
    collector: &DemoCollector,
    home: &Path,
    workers: &[(Role, Child)],
) -> String {
    let mut banner = format!(
        "swarm-obs demo: a collector, three workers and a replayed Claude Code session\n\
         \x20 Dashboard:   http://{addr}/\n\
         \x20 Live stream: http://{addr}/v1/stream   (or: SWARM_OBS_HOME={home} swarm-obs tail -f)\n\
         \x20 State root:  {home}\n\
         \x20 Collector:   pid {pid}\n",
        addr = collector.addr,
        home = home.display(),
        pid = collector.pid(),
    );
    for (role, child) in workers {
        banner.push_str(&format!(
            "  Worker:      {} (pid {})\n",
            role.source(),
            child.id()
        ));
    }
    banner.push_str(match (args.once, args.duration) {
        (true, _) => "  Runs until every outcome is in, then stops everything.\n",
        (false, Some(_)) => {
            "  Runs for the given duration, then stops everything; Ctrl-C stops sooner.\n"
        }
        (false, None) => "  Press Ctrl-C to stop everything.\n",
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

fn lock(w: &Mutex<Workers>) -> std::sync::MutexGuard<'_, Workers> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// Replays the session through `swarm-hook`, one process per hook event as Claude
/// Code runs them, reaping workers between events; returns how many were sent.
fn replay(hook: &Path, home: &Path, addr: &str, workers: &Mutex<Workers>) -> Result<usize> {
    let mut sent = 0;
    let mut session = None;
    for (name, payload) in SESSION {
        let payload = &in_one_session(name, payload, &mut session)?;
        if INTERRUPTED.load(Ordering::SeqCst) {
            break;
        }
        lock(workers).reap();
        std::thread::sleep(HOOK_PAUSE);
        let mut child = Command::new(hook)
            .env(swarm_obs::HOME_ENV, home)
            .env(swarm_obs::COLLECTOR_ENV, addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", hook.display()))?;
        // Dropped at once, closing the hook's input.
        let sent_input = child.stdin.take().map(|mut stdin| stdin.write_all(payload));
        let status = child.wait().context("swarm-hook did not finish")?;
        if stopped_by_user(status) {
            break;
        }
        sent_input
            .transpose()
            .with_context(|| format!("cannot send {name} to swarm-hook"))?;
        if !status.success() {
            bail!("swarm-hook exited with {status} on {name}");
        }
        sent += 1;
    }
    Ok(sent)
}

/// The fixture as an event of the replayed session: the payloads were captured in
/// several sessions, and the demo shows one, with its subagent. The first
/// fixture's `session_id` is the session's.
fn in_one_session(name: &str, payload: &[u8], session: &mut Option<String>) -> Result<Vec<u8>> {
    let mut hook: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(payload)
        .with_context(|| format!("the {name} fixture is not a JSON object"))?;
    let id = match (session.as_ref(), hook.get("session_id")) {
        (Some(id), _) => id.clone(),
        (None, Some(serde_json::Value::String(id))) => id.clone(),
        (None, _) => bail!("the {name} fixture has no session_id"),
    };
    hook.insert("session_id".into(), id.clone().into());
    *session = Some(id);
    // One compact line, as Claude Code sends it.
    let mut line = serde_json::to_vec(&hook).context("a fixture serialises")?;
    line.push(b'\n');
    Ok(line)
}

/// Whether a hook ended by the user's stop: a Ctrl-C in a terminal signals the
/// whole foreground process group, so the hook running then dies of the same
/// SIGINT (or SIGTERM) that interrupts the demo. That is a stop, not a failure.
fn stopped_by_user(status: ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if !matches!(status.signal(), Some(libc::SIGINT | libc::SIGTERM)) {
            return false;
        }
        // The demo's own handler may run a moment after the hook's death is seen.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !INTERRUPTED.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        INTERRUPTED.load(Ordering::SeqCst)
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        INTERRUPTED.load(Ordering::SeqCst)
    }
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
        let child = Command::new(exe)
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
            .stderr(Stdio::null())
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
