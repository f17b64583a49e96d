//! Which Claude Code process runs this hook.
//!
//! Claude Code starts a hook command through a shell (`sh -c '<command>'`), and a
//! user's command may add more layers (`bash -c`, `env`, `nice`). The first
//! ancestor that is none of those is the Claude Code process; its pid and start
//! time go with the event so the collector can tell when it dies without a
//! `SessionEnd`. It costs one small `/proc` read (one `proc_pidinfo` call on
//! macOS) per level, at most [`MAX_DEPTH`].

use swarm_obs::{ProcessInfo, Timestamp, process_info};

/// Ancestors looked at before giving up.
pub const MAX_DEPTH: usize = 6;

/// Programs that only pass a hook command on; the walk goes past them.
const PASS_THROUGH: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "mksh",
    "ash",
    "busybox",
    "env",
    "nice",
    "nohup",
    "timeout",
    "stdbuf",
    "setsid",
    "time",
    "swarm-hook",
];

/// The pid and start time of the process that runs this hook, past the shells
/// in between; `None` where processes cannot be looked up or the walk reaches
/// init.
pub fn claude_process() -> Option<(u32, Option<Timestamp>)> {
    #[cfg(unix)]
    let parent = std::os::unix::process::parent_id();
    #[cfg(not(unix))]
    let parent = 0;
    launcher_of(parent, process_info).map(|p| (p.pid, p.started_at))
}

/// The walk itself from `parent` (the hook's parent), over any process table.
fn launcher_of(parent: u32, lookup: impl Fn(u32) -> Option<ProcessInfo>) -> Option<ProcessInfo> {
    let mut pid = parent;
    for _ in 0..MAX_DEPTH {
        if pid <= 1 {
            return None;
        }
        let info = lookup(pid)?;
        if !PASS_THROUGH.contains(&info.name.as_str()) {
            return Some(info);
        }
        pid = info.parent;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table<'a>(rows: &'a [(u32, u32, &'a str)]) -> impl Fn(u32) -> Option<ProcessInfo> + 'a {
        move |pid| {
            rows.iter().find(|r| r.0 == pid).map(|r| ProcessInfo {
                pid: r.0,
                parent: r.1,
                name: r.2.to_owned(),
                started_at: Some(Timestamp::from_unix_ms(i64::from(r.0))),
            })
        }
    }

    #[test]
    fn walks_past_shells_to_the_launcher() {
        let t = [
            (40, 30, "swarm-hook"),
            (30, 20, "sh"),
            (20, 10, "claude"),
            (10, 1, "bash"),
        ];
        assert_eq!(launcher_of(30, table(&t)).map(|p| p.pid), Some(20));
        let t = [(40, 30, "swarm-hook"), (30, 25, "node"), (25, 1, "bash")];
        assert_eq!(
            launcher_of(30, table(&t)).map(|p| p.name),
            Some("node".into())
        );
    }

    #[test]
    fn gives_up_at_init_a_gap_or_too_deep() {
        let t = [(40, 30, "swarm-hook"), (30, 1, "sh")];
        assert_eq!(launcher_of(30, table(&t)), None);
        let t = [(40, 30, "swarm-hook"), (30, 20, "sh")];
        assert_eq!(launcher_of(30, table(&t)), None, "parent 20 is gone");
        let deep: Vec<(u32, u32, &str)> = (2..20).map(|p| (p + 1, p, "sh")).collect();
        assert_eq!(launcher_of(19, table(&deep)), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_launcher_with_a_start_time() {
        // The test harness runs under cargo (or a shell under it): some non-shell
        // ancestor exists and has a start time.
        let found = claude_process();
        assert!(
            found.is_some_and(|(pid, at)| pid > 1 && at.is_some()),
            "{found:?}"
        );
    }
}
