//! Driving the real Claude Code CLI offline, for tests: where it is, a run of it
//! in its own process group, and a `claude` command with nothing of the caller's
//! environment, talking to a [`FakeAnthropic`].

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{FakeAnthropic, LineChild, TestHome, UserHome, skip_or_fail, workspace_root};

/// The `claude` to drive, or `None` (after a loud skip, a failure under
/// `SWARM_OBS_REQUIRE_SYSTEM_TESTS=1`) when it is not installed. `test` names the
/// test in the message.
///
/// The CLI is the npm package `@anthropic-ai/claude-code` that `.ci/run` installs
/// under `target/claude-code`; `SWARM_OBS_CLAUDE` names another `claude`.
pub fn claude_cli(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("SWARM_OBS_CLAUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/claude-code/node_modules/.bin/claude"));
    if !path.is_file() {
        skip_or_fail(&format!(
            "{test}: SKIPPED — no Claude Code CLI at {} (.ci/run installs it with \
             `npm install --prefix target/claude-code @anthropic-ai/claude-code@<version>`; \
             SWARM_OBS_CLAUDE names another)",
            path.display()
        ));
        return None;
    }
    Some(path)
}

/// A `claude` process in its own process group; the whole group is killed on
/// drop, so nothing it started outlives the test.
pub struct ClaudeRun {
    /// The `claude` process, its stdout as lines.
    pub child: LineChild,
}

impl ClaudeRun {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> Self {
        cmd.process_group(0);
        Self {
            child: LineChild::spawn(cmd),
        }
    }

    /// Every stdout line until the CLI exits, and its exit status; panics with
    /// what it printed when it runs past `bound`.
    pub fn finish(&mut self, bound: Duration) -> (Vec<String>, std::process::ExitStatus) {
        let deadline = Instant::now() + bound;
        let mut lines = Vec::new();
        // The channel ends when stdout closes; a timeout also ends the loop.
        while let Some(line) = self
            .child
            .next_line(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        match self
            .child
            .wait_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Some(status) => (lines, status),
            None => panic!(
                "claude did not finish within {bound:?}; stdout:\n{}\nstderr:\n{}",
                lines.join("\n"),
                self.child.stderr()
            ),
        }
    }
}

impl Drop for ClaudeRun {
    fn drop(&mut self) {
        // SAFETY: signalling the process group our own child leads.
        unsafe { libc::kill(-(self.child.pid() as libc::pid_t), libc::SIGKILL) };
    }
}

/// `claude` run in the user's project with nothing of the caller's environment
/// (the test may itself run inside Claude Code), talking to `api`.
pub fn claude_command(
    cli: &Path,
    user: &UserHome,
    home: &TestHome,
    api: &FakeAnthropic,
) -> Command {
    let tmp = user.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("create the CLI's TMPDIR");
    let mut cmd = Command::new(cli);
    cmd.current_dir(user.project())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", user.path())
        .env("TMPDIR", &tmp)
        .env("SWARM_OBS_HOME", home.path())
        .env("ANTHROPIC_BASE_URL", api.base_url())
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
    cmd
}
