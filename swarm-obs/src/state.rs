//! Where swarm-obs keeps its files: the state root and the layout beneath it.
//!
//! ```text
//! events/YYYY-MM-DD.jsonl   every event, append-only
//! logs/<source>.log         human lines per source
//! heartbeats/<source>.json  latest heartbeat per worker
//! collector.db              the collector's store
//! collector.json            where the running collector listens
//! config.toml               optional configuration
//! ```

use std::path::{Path, PathBuf};

/// Environment variable that overrides the state root.
pub const HOME_ENV: &str = "SWARM_OBS_HOME";

/// The state root directory and the paths of every file beneath it.
///
/// ```
/// use swarm_obs::StateRoot;
/// let root = StateRoot::new("/tmp/swarm");
/// assert_eq!(root.event_file("2026-01-05"), std::path::Path::new("/tmp/swarm/events/2026-01-05.jsonl"));
/// assert_eq!(root.heartbeat_file("a/b"), std::path::Path::new("/tmp/swarm/heartbeats/a_b.json"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRoot {
    dir: PathBuf,
}

impl StateRoot {
    /// A state root at an explicit directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$SWARM_OBS_HOME`, else `$XDG_STATE_HOME/swarm-obs`, else
    /// `~/.local/state/swarm-obs` (on macOS `~/Library/Application Support/swarm-obs`),
    /// else `./.swarm-obs` when no home directory is known.
    pub fn resolve() -> Self {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) = env(HOME_ENV) {
            return Self::new(dir);
        }
        if let Some(xdg) = env("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
            return Self::new(xdg.join("swarm-obs"));
        }
        match env("HOME") {
            Some(home) if cfg!(target_os = "macos") => {
                Self::new(home.join("Library/Application Support/swarm-obs"))
            }
            Some(home) => Self::new(home.join(".local/state/swarm-obs")),
            None => Self::new(".swarm-obs"),
        }
    }

    /// Checks that the root, its `config.toml` and its `collector.json` (those that
    /// exist) belong to this user (or root) and are writable by nobody else: a
    /// configuration another user wrote could run a command as this user, and a
    /// `collector.json` they wrote could send this user's events and token to them.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// swarm_obs::StateRoot::new(dir.path()).check_trusted().unwrap();
    /// ```
    pub fn check_trusted(&self) -> Result<(), crate::TrustError> {
        crate::check_trusted(&self.dir, "state root")?;
        crate::check_trusted(&self.config_file(), "config file")?;
        crate::check_trusted(&self.collector_file(), "collector file")
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `events/`
    pub fn events_dir(&self) -> PathBuf {
        self.dir.join("events")
    }

    /// `events/<day>.jsonl`, where `day` is `YYYY-MM-DD` (UTC).
    pub fn event_file(&self, day: &str) -> PathBuf {
        self.events_dir().join(format!("{day}.jsonl"))
    }

    /// `logs/`
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// `logs/<source>.log`, the source made safe as a file name.
    pub fn log_file(&self, source: &str) -> PathBuf {
        self.logs_dir().join(format!("{}.log", file_stem(source)))
    }

    /// `heartbeats/`
    pub fn heartbeats_dir(&self) -> PathBuf {
        self.dir.join("heartbeats")
    }

    /// `heartbeats/<source>.json`, the source made safe as a file name.
    pub fn heartbeat_file(&self, source: &str) -> PathBuf {
        self.heartbeats_dir()
            .join(format!("{}.json", file_stem(source)))
    }

    /// `collector.db`
    pub fn collector_db(&self) -> PathBuf {
        self.dir.join("collector.db")
    }

    /// `collector.json`
    pub fn collector_file(&self) -> PathBuf {
        self.dir.join("collector.json")
    }

    /// `collector.sock`: the Unix socket the collector serves besides its TCP port.
    pub fn socket_file(&self) -> PathBuf {
        self.dir.join("collector.sock")
    }

    /// `config.toml`
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
}

/// A source name as a file stem: path separators, leading dots and control
/// characters become `_`, so no source can escape its directory.
pub fn file_stem(source: &str) -> String {
    let mut s: String = source
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '\0' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    if s.starts_with('.') || s.is_empty() {
        s.insert(0, '_');
    }
    // Well under any file system's name limit, with room for a suffix; cut on a
    // character boundary (a byte cut inside `é` would panic).
    const MAX_STEM_BYTES: usize = 200;
    if s.len() > MAX_STEM_BYTES {
        let cut = (0..=MAX_STEM_BYTES)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_cannot_escape() {
        assert_eq!(file_stem("backend"), "backend");
        assert_eq!(file_stem("proj/general-purpose"), "proj_general-purpose");
        assert_eq!(file_stem("../../etc/passwd"), "_.._.._etc_passwd");
        assert_eq!(file_stem(""), "_");
        assert_eq!(file_stem("a\nb"), "a_b");
        assert_eq!(file_stem(&"é".repeat(150)), "é".repeat(100));
        assert_eq!(file_stem(&format!("{}é", "a".repeat(199))), "a".repeat(199));
    }

    /// Generated names (ASCII, separators, controls, 2-, 3- and 4-byte characters,
    /// up to 1,000 characters): never a panic, never a separator, a leading dot or
    /// an empty stem, never over 200 bytes.
    #[test]
    fn any_name_makes_a_safe_stem() {
        const PIECES: &[&str] = &[
            "a", "Z", "0", "-", ".", "..", "/", "\\", ":", "\0", "\n", "\u{1b}", "é", "€", "𝄞",
            "\u{202e}", " ",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5_000 {
            let len = (next() % 1_000) as usize;
            let name: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let stem = file_stem(&name);
            assert!(
                !stem.is_empty() && stem.len() <= 200,
                "{name:?} -> {stem:?}"
            );
            assert!(!stem.starts_with('.'), "{name:?} -> {stem:?}");
            assert!(
                !stem.contains(['/', '\\', ':', '\0']) && !stem.chars().any(char::is_control),
                "{name:?} -> {stem:?}"
            );
        }
    }
}
