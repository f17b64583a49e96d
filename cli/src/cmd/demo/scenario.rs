//! What happens in the demo: rounds of three workers and a replayed Claude Code
//! session. `--once` plays one round as fast as it reads; the live demo plays round
//! after round until it is stopped, with pauses where a person should see a state
//! (a permission prompt waiting, a turn over, a dead worker), so the dashboard and
//! `top` always have something alive, waiting, failing, dying and recovering.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use swarm_obs::{CollectorAddress, CollectorClient, Event, EventLog, Kind, Level, StateRoot};

use super::INTERRUPTED;
use super::worker::Role;
use crate::signals;

/// Pause between replayed hook events, so the session reads as it happened.
const HOOK_PAUSE: Duration = Duration::from_millis(150);
/// How long the live demo holds a state worth seeing: a permission prompt
/// unanswered, a turn over before the session ends.
const HOLD: Duration = Duration::from_secs(3);
/// Quiet time between live rounds: the endings stay on screen (the crawler turns
/// dead), then the next round brings every worker back.
const BETWEEN_ROUNDS: Duration = Duration::from_secs(6);

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                "../../../../tests/fixtures/claude-code/",
                $name,
                ".json"
            ))
            .as_slice(),
        )
    };
}

/// One Claude Code session in the order the hooks fire: a prompt, a tool call, a
/// subagent with its own tool call, a permission prompt, a failing tool, the end.
pub const SESSION: &[(&str, &[u8])] = &[
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

/// The demo's workers, killed and reaped on drop if still running.
#[derive(Default)]
pub struct Workers {
    /// Running now.
    pub running: Vec<(Role, Child)>,
    /// Ended, with their pid and status.
    pub exited: Vec<(Role, u32, ExitStatus)>,
}

impl Workers {
    /// Starts every demo worker: this binary in `--worker` mode, on the demo's state
    /// root, whose `collector.json` names the demo's collector.
    pub fn start(&mut self, exe: &Path, home: &Path) -> Result<()> {
        for role in Role::ALL {
            let child = signals::unblocked_in_child(
                Command::new(exe)
                    .args(["demo", "--worker", role.arg()])
                    .env(swarm_obs::HOME_ENV, home)
                    // Found through collector.json (its Unix socket), as a user's
                    // workers find theirs; not a collector the user's shell names.
                    .env_remove(swarm_obs::COLLECTOR_ENV)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null()),
            )
            .spawn()
            .with_context(|| format!("cannot start the demo worker {}", role.source()))?;
            self.running.push((role, child));
        }
        Ok(())
    }

    /// Reaps the workers that have exited (so a dead one's pid is really gone).
    pub fn reap(&mut self) {
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
    pub fn stop(&mut self) {
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

/// Locks the workers, whatever a panicking holder left.
pub fn lock(w: &Mutex<Workers>) -> MutexGuard<'_, Workers> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything a round needs.
pub struct Scenario {
    /// This binary, started again as each worker.
    pub exe: PathBuf,
    /// The `swarm-hook` the session is replayed through.
    pub hook: PathBuf,
    /// The demo's state root.
    pub home: PathBuf,
    /// The demo collector's address.
    pub addr: String,
    /// Round after round with pauses (the live demo), or one quick round.
    pub live: bool,
}

impl Scenario {
    /// Plays rounds until the demo is stopped (one round without `live`); the first
    /// round's workers are already running. Returns the hook events replayed.
    pub fn play(&self, workers: &Mutex<Workers>) -> Result<usize> {
        let narrator = Narrator::new(&self.home, &self.addr);
        let mut replayed = 0;
        for round in 1.. {
            if round > 1 {
                let mut w = lock(workers);
                w.start(&self.exe, &self.home)?;
                let pids: Vec<String> = w
                    .running
                    .iter()
                    .map(|(role, child)| format!("{} pid {}", role.source(), child.id()))
                    .collect();
                drop(w);
                narrator.say(
                    Level::Info,
                    format!(
                        "round {round}: the workers start again ({}), and a new Claude Code session",
                        pids.join(", ")
                    ),
                );
            }
            replayed += self.replay(round, workers)?;
            // Reap workers as they end: a dead worker's pid must really be gone.
            while !INTERRUPTED.load(Ordering::SeqCst) {
                let mut w = lock(workers);
                w.reap();
                if w.running.is_empty() {
                    break;
                }
                drop(w);
                std::thread::sleep(Duration::from_millis(50));
            }
            if !self.live || !pause(BETWEEN_ROUNDS, workers) {
                break;
            }
        }
        Ok(replayed)
    }

    /// Replays the session through `swarm-hook`, one process per hook event as
    /// Claude Code runs them, reaping workers between events; returns how many were
    /// sent. Each round is a session of its own.
    fn replay(&self, round: u32, workers: &Mutex<Workers>) -> Result<usize> {
        let mut sent = 0;
        let mut session = None;
        for (name, payload) in SESSION {
            let payload = &in_one_session(name, payload, round, &mut session)?;
            if INTERRUPTED.load(Ordering::SeqCst) {
                break;
            }
            lock(workers).reap();
            if !pause(HOOK_PAUSE, workers) {
                break;
            }
            let mut child = signals::unblocked_in_child(
                Command::new(&self.hook)
                    .env(swarm_obs::HOME_ENV, &self.home)
                    // As the workers: collector.json, as a user's hooks have it.
                    .env_remove(swarm_obs::COLLECTOR_ENV)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null()),
            )
            .spawn()
            .with_context(|| format!("cannot start {}", self.hook.display()))?;
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
            // The live demo lets a person see the prompt wait and the turn end.
            if self.live
                && matches!(*name, "Notification.permission_prompt" | "Stop")
                && !pause(HOLD, workers)
            {
                break;
            }
        }
        Ok(sent)
    }
}

/// Sleeps `total`, reaping workers, unless the demo is stopped first; false then.
fn pause(total: Duration, workers: &Mutex<Workers>) -> bool {
    let until = Instant::now() + total;
    while Instant::now() < until {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return false;
        }
        lock(workers).reap();
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    !INTERRUPTED.load(Ordering::SeqCst)
}

/// The fixture as an event of the round's session: the payloads were captured in
/// several sessions, and each round shows one, with its subagent. The first
/// fixture's `session_id` is round 1's; later rounds change its first digits.
fn in_one_session(
    name: &str,
    payload: &[u8],
    round: u32,
    session: &mut Option<String>,
) -> Result<Vec<u8>> {
    let mut hook: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(payload)
        .with_context(|| format!("the {name} fixture is not a JSON object"))?;
    let id = match (session.as_ref(), hook.get("session_id")) {
        (Some(id), _) => id.clone(),
        (None, Some(serde_json::Value::String(id))) if round == 1 => id.clone(),
        // Its first digits change, which views that shorten an id still show.
        (None, Some(serde_json::Value::String(id))) => {
            format!("{round:04x}{}", id.get(4..).unwrap_or_default())
        }
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
    use std::os::unix::process::ExitStatusExt;
    if !matches!(status.signal(), Some(libc::SIGINT | libc::SIGTERM)) {
        return false;
    }
    // The demo's signal thread may see it a moment after the hook's death is seen.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !INTERRUPTED.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The demo's own voice in the stream: events of source `demo`, appended to the
/// event log and posted to the collector like any worker's, so they show in the
/// tail, `top` and the dashboard alike.
pub struct Narrator {
    log: EventLog,
    client: Option<CollectorClient>,
}

/// Source of the demo's own events.
pub const DEMO_SOURCE: &str = "demo";

impl Narrator {
    /// A narrator for the demo's state root and collector.
    pub fn new(home: &Path, addr: &str) -> Self {
        Self {
            log: EventLog::new(StateRoot::new(home)),
            client: CollectorAddress::parse(addr)
                .ok()
                .map(|a| CollectorClient::new(a, Duration::from_secs(2))),
        }
    }

    /// Records one line of the demo's story.
    pub fn say(&self, level: Level, msg: String) {
        let mut ev = Event::new(DEMO_SOURCE, Kind::Log, msg);
        ev.level = level;
        // On disk first: the collector catches up from the log if the post fails.
        if self.log.append(&ev).is_ok()
            && let Some(c) = &self.client
        {
            let _ = c.post_logged(std::slice::from_ref(&ev));
        }
    }
}
