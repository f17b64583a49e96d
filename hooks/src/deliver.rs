//! Notification delivery in a detached process.
//!
//! The hook must return at once, but a D-Bus call or a user's command can take
//! seconds (or half a minute, with no notification server). So the hook starts
//! itself again as `swarm-hook --deliver` in a new session, hands it the job on
//! stdin, and exits without waiting; the detached process shows the notification.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

pub use swarm_obs::notify::Delivery;
use swarm_obs::notify::{self, NotifyGate, backend_for};
use swarm_obs::{Config, StateRoot};

/// The argument that turns `swarm-hook` into the delivery process.
pub const DELIVER_ARG: &str = "--deliver";

/// Starts `swarm-hook --deliver` detached from the hook (own session, no stdio
/// shared with Claude Code) and hands it `job`.
pub fn spawn_detached(job: &Delivery) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg(DELIVER_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // A process group of its own: when Claude Code ends the hook's group, delivery
    // goes on. No `pre_exec` (setsid): that would force fork+exec, where a new group
    // alone lets the standard library use posix_spawn instead of fork and exec.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn()?;
    let json = serde_json::to_vec(job).map_err(std::io::Error::other)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&json)?;
    }
    // Not waited for: it outlives the hook and is reaped by init.
    Ok(())
}

/// The body of `swarm-hook --deliver`: reads one job from stdin and carries it out.
/// Failures go to stderr, which is /dev/null when the hook started it.
pub fn run_delivery() {
    // This whole process is background work.
    notify::lower_priority();
    let mut input = Vec::new();
    if std::io::stdin()
        .take(1 << 20)
        .read_to_end(&mut input)
        .is_err()
    {
        return;
    }
    let Ok(job) = serde_json::from_slice::<Delivery>(&input) else {
        let _ = writeln!(
            std::io::stderr(),
            "swarm-hook --deliver: not a delivery job"
        );
        return;
    };
    let root = StateRoot::resolve();
    let config = Config::load(&root.config_file()).unwrap_or_default();
    let backend = backend_for(&config.notify);
    let gate = NotifyGate::new(notify::gate_file(&root), &config.notify);
    if let Err(e) = job.carry_out(&gate, backend.as_ref()) {
        let _ = writeln!(std::io::stderr(), "swarm-hook --deliver: {e}");
    }
}
