//! The Claude Code CLI that will read the settings: its version decides how a
//! hook entry may be written.
//!
//! Claude Code 2.1.139 and later run a command hook whose entry has `args` in
//! exec form: `command` is spawned directly with those arguments, no shell.
//! Without `args` (and in every earlier release) the command runs as
//! `/bin/sh -c <command>`, with the shell staying the hook's parent: one more
//! process per event, which the agent waits for.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::locate;

/// A Claude Code release number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

/// The first release that runs a command hook in exec form (`"args": [...]`).
pub const EXEC_FORM_SINCE: Version = Version(2, 1, 139);

/// How long `claude --version` may take before it is given up on.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

impl Version {
    /// Whether this release runs hooks in exec form.
    pub fn runs_exec_form(self) -> bool {
        self >= EXEC_FORM_SINCE
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl FromStr for Version {
    type Err = String;

    /// `2.1.337`, or what `claude --version` prints: `2.1.337 (Claude Code)`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("not a Claude Code version: {s:?} (expected X.Y.Z)");
        let word = s.split_whitespace().next().ok_or_else(bad)?;
        let word = word.strip_prefix('v').unwrap_or(word);
        // A pre-release or build suffix (2.1.0-beta.1) counts as its release.
        let core = word.split(['-', '+']).next().unwrap_or(word);
        let mut parts = core.split('.').map(|p| p.parse::<u32>().map_err(|_| bad()));
        let v = Version(
            parts.next().ok_or_else(bad)??,
            parts.next().ok_or_else(bad)??,
            parts.next().ok_or_else(bad)??,
        );
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

/// The `claude` on `PATH`, and its version or why it could not be told.
#[derive(Clone, Debug)]
pub struct ClaudeCli {
    /// Where it is.
    pub path: PathBuf,
    /// What `claude --version` said.
    pub version: Result<Version, String>,
}

impl ClaudeCli {
    /// The `claude` on `PATH`, if there is one, asked for its version.
    pub fn on_path() -> Option<Self> {
        let path = locate::on_path(&format!("claude{}", std::env::consts::EXE_SUFFIX))?;
        let version = version_of(&path);
        Some(Self { path, version })
    }
}

/// Runs `claude --version` (bounded in time) and reads the version it prints.
pub fn version_of(claude: &Path) -> Result<Version, String> {
    let deadline = Instant::now() + VERSION_TIMEOUT;
    let mut child = loop {
        let spawned = Command::new(claude)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            // Being written (an update that is installing it): a moment later it runs.
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("cannot run {} --version: {e}", claude.display())),
            Ok(child) => break child,
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} --version did not answer within {} s",
                    claude.display(),
                    VERSION_TIMEOUT.as_secs()
                ));
            }
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.by_ref().take(4096).read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("{} --version failed ({status})", claude.display()));
    }
    out.trim().parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_what_the_cli_prints() {
        let v: Version = "2.1.337 (Claude Code)".parse().unwrap();
        assert_eq!(v, Version(2, 1, 337));
        assert_eq!(v.to_string(), "2.1.337");
        assert_eq!("v1.0.0".parse(), Ok(Version(1, 0, 0)));
        assert_eq!("2.1.139-beta.2".parse(), Ok(Version(2, 1, 139)));
        for bad in ["", "Claude Code", "2.1", "2.1.x", "2.1.3.4", "-1.0.0"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }

    #[test]
    fn exec_form_starts_at_2_1_139() {
        assert!(!Version(2, 1, 138).runs_exec_form());
        assert!(Version(2, 1, 139).runs_exec_form());
        assert!(Version(2, 2, 0).runs_exec_form());
        assert!(!Version(1, 9, 999).runs_exec_form());
    }
}
