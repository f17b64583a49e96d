//! A Claude Code session's conversation, read from its transcript on request.
//!
//! Hook events name the transcript (`transcript_path` on every event,
//! `agent_transcript_path` on SubagentStop); the collector keeps only those paths
//! with the session, and `GET /v1/sessions/{id}/conversation` reads the file when
//! asked: one pass, at most one line and one page in memory, every string redacted.
//! Nothing of it is copied into events or the store.
//!
//! The paths come from events, which any process of the user can post, so a path
//! is only opened when it resolves under an allowed root (Claude Code's
//! configuration directory, `$CLAUDE_CONFIG_DIR` or `~/.claude`, plus roots given
//! with `serve --transcript-root` or `[transcripts] roots`), is a regular file
//! owned by the collector's user (or root) that no other user can write, and is
//! reached through directories of that user without following a symbolic link.

mod parse;

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use swarm_obs::{RedactConfig, Redactor};

pub use parse::{MAX_LINE_BYTES, PageRequest, Scan, TEXT_CAP, scan};

/// Largest transcript read, in bytes.
pub const MAX_TRANSCRIPT_BYTES: u64 = 1 << 30;
/// Transcripts read at once; more requests wait their turn.
const READERS: usize = 2;
/// How long a request waits for its turn before it is told the collector is busy.
const WAIT: Duration = Duration::from_secs(10);

/// Claude Code's configuration directory, as Claude Code picks it:
/// `$CLAUDE_CONFIG_DIR` when set, else `~/.claude` of this user.
///
/// ```
/// use std::path::{Path, PathBuf};
/// use swarm_obs_collector::transcript::claude_dir;
///
/// let home = Some(PathBuf::from("/home/me"));
/// assert_eq!(claude_dir(None, home.clone()), Some(PathBuf::from("/home/me/.claude")));
/// assert_eq!(claude_dir(Some("/etc/cc".into()), home), Some(PathBuf::from("/etc/cc")));
/// ```
pub fn claude_dir(
    config_dir: Option<std::ffi::OsString>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    match config_dir.filter(|d| !d.is_empty()) {
        Some(d) => std::path::absolute(PathBuf::from(d)).ok(),
        None => home.filter(|h| h.is_absolute()).map(|h| h.join(".claude")),
    }
}

/// The roots allowed by default: [`claude_dir`] of this process's environment.
pub fn default_roots() -> Vec<PathBuf> {
    claude_dir(std::env::var_os("CLAUDE_CONFIG_DIR"), std::env::home_dir())
        .into_iter()
        .collect()
}

/// Why a transcript was not read.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Nothing at the path.
    #[error("no transcript at {path}: {reason}")]
    NotFound {
        /// The path looked for.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// The path is not under an allowed root, or leaves one through a link or `..`.
    #[error(
        "refusing {path}: {reason}; the collector reads transcripts only under {roots} \
         (add one with `serve --transcript-root DIR` or `[transcripts] roots` in config.toml)"
    )]
    Outside {
        /// The path asked for.
        path: String,
        /// Why.
        reason: String,
        /// The allowed roots, listed.
        roots: String,
    },
    /// Another user could have written it, or it is not a regular file.
    #[error("refusing {path}: {reason}")]
    Untrusted {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The system refused to let the collector read it.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The path.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// Over [`MAX_TRANSCRIPT_BYTES`].
    #[error(
        "refusing {path}: {size} bytes, over the {MAX_TRANSCRIPT_BYTES} bytes a transcript may have"
    )]
    TooBig {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
    },
    /// Reading failed part way.
    #[error("reading {path} failed: {reason}")]
    Io {
        /// The path.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// Too many transcripts are being read.
    #[error("busy reading other transcripts; try again")]
    Busy,
}

impl Refusal {
    /// The HTTP status that says it.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::Outside { .. } | Self::Untrusted { .. } | Self::Unreadable { .. } => 403,
            Self::TooBig { .. } => 413,
            Self::Io { .. } => 500,
            Self::Busy => 503,
        }
    }
}

/// An opened transcript.
#[derive(Debug)]
pub struct Opened {
    /// Open for reading.
    pub file: File,
    /// Where it is, resolved.
    pub path: PathBuf,
}

/// Where transcripts may be read from, and how their text is redacted.
#[derive(Debug)]
pub struct Transcripts {
    roots: Vec<PathBuf>,
    redactor: Redactor,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Transcripts {
    /// Transcripts under `roots` (absolute; others are ignored), redacted with
    /// `redaction`'s patterns (its caps do not apply: turns have their own).
    pub fn new(roots: Vec<PathBuf>, redaction: &RedactConfig) -> Self {
        let mut kept: Vec<PathBuf> = Vec::new();
        for root in roots.into_iter().filter(|r| r.is_absolute()) {
            if !kept.contains(&root) {
                kept.push(root);
            }
        }
        Self {
            roots: kept,
            redactor: Redactor::new(RedactConfig {
                // Turns are cut by the reader, after redaction.
                max_string_bytes: usize::MAX / 2,
                ..redaction.clone()
            }),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(READERS)),
        }
    }

    /// The allowed roots, as given.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The redactor turns go through.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Waits for a turn to read (a few at a time, so many requests for big
    /// transcripts cannot take every thread and all memory). The reader holds
    /// the permit until it is done, even if its client went away.
    pub async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
        match tokio::time::timeout(WAIT, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Refusal::Busy),
        }
    }

    fn roots_text(&self) -> String {
        if self.roots.is_empty() {
            return "no directory (none is set: no $CLAUDE_CONFIG_DIR or home directory)"
                .to_owned();
        }
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Opens `path` for reading if it is a transcript the collector may read.
    ///
    /// A path outside every root (by its text) is refused before anything is
    /// looked up, so answers say nothing of files elsewhere. Inside, the path is
    /// resolved, must stay under the root once links are followed, and is then
    /// opened one directory at a time from the root without following links.
    pub fn open(&self, path: &str) -> Result<Opened, Refusal> {
        let outside = |reason: String| Refusal::Outside {
            path: path.to_owned(),
            reason,
            roots: self.roots_text(),
        };
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(outside("not an absolute path".into()));
        }
        if p.components().any(|c| c == Component::ParentDir) {
            return Err(outside("the path has a `..` component".into()));
        }
        let roots: Vec<(&PathBuf, Option<PathBuf>)> = self
            .roots
            .iter()
            .map(|r| (r, std::fs::canonicalize(r).ok()))
            .collect();
        let named = roots
            .iter()
            .any(|(r, c)| p.starts_with(r) || c.as_ref().is_some_and(|c| p.starts_with(c)));
        if !named {
            return Err(outside("not under an allowed directory".into()));
        }
        let real = std::fs::canonicalize(p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Refusal::NotFound {
                path: path.to_owned(),
                reason: e.to_string(),
            },
            io::ErrorKind::PermissionDenied => Refusal::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            },
            _ => outside(format!("it cannot be resolved ({e})")),
        })?;
        let Some(root) = roots
            .iter()
            .filter_map(|(_, c)| c.as_ref())
            .filter(|c| real.starts_with(c) && real != **c)
            .max_by_key(|c| c.components().count())
        else {
            return Err(outside(format!(
                "it resolves to {}, outside the allowed directories",
                real.display()
            )));
        };
        let file = open_beneath(root, &real, path)?;
        Ok(Opened { file, path: real })
    }
}

/// Why a directory or file of the way is not the user's own.
#[cfg(unix)]
fn not_own(meta: &std::fs::Metadata, dir: bool) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!(
            "it belongs to uid {}, not to the collector's user (uid {me}); another user could have written it",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    // A directory of a umask-002 user is group-writable; the file must not be.
    let forbidden = if dir { 0o002 } else { 0o022 };
    if mode & forbidden != 0 && !(dir && mode & 0o1000 != 0) {
        return Some(format!(
            "it is writable by other users (mode {mode:o}); another user could have written it"
        ));
    }
    None
}

/// Opens `real` (resolved, under `root`) walking down from `root` with
/// `O_NOFOLLOW` at every step, so a link swapped in after resolving is refused,
/// and checks every directory on the way and the file itself.
#[cfg(unix)]
fn open_beneath(root: &Path, real: &Path, asked: &str) -> Result<File, Refusal> {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    let untrusted = |what: &Path, reason: String| Refusal::Untrusted {
        path: if what == real {
            asked.to_owned()
        } else {
            format!("{asked} (its directory {})", what.display())
        },
        reason,
    };
    let fail = |e: io::Error, at: &Path| match e.raw_os_error() {
        Some(libc::ENOENT) => Refusal::NotFound {
            path: asked.to_owned(),
            reason: e.to_string(),
        },
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => untrusted(
            at,
            "a symbolic link appeared on the way; links are not followed".into(),
        ),
        Some(libc::EACCES) | Some(libc::EPERM) => Refusal::Unreadable {
            path: asked.to_owned(),
            reason: e.to_string(),
        },
        _ => Refusal::Io {
            path: asked.to_owned(),
            reason: e.to_string(),
        },
    };
    let open_at = |dir: Option<&OwnedFd>, name: &Path, flags: libc::c_int| {
        let c = CString::new(name.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
        let flags = flags | libc::O_CLOEXEC | libc::O_NOCTTY;
        // SAFETY: `c` is a valid C string for the duration of the call, and `dir`,
        // when given, is an open directory descriptor we own.
        let fd = unsafe {
            match dir {
                Some(d) => libc::openat(d.as_raw_fd(), c.as_ptr(), flags),
                None => libc::open(c.as_ptr(), flags),
            }
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let mut here = root.to_path_buf();
    let mut dir = open_at(None, root, dir_flags).map_err(|e| fail(e, root))?;
    let rel = real
        .strip_prefix(root)
        .map_err(|_| untrusted(real, "it is not under the root it resolved to".into()))?;
    let parts: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let Some((name, dirs)) = parts.split_last() else {
        return Err(untrusted(real, "it is a directory".into()));
    };
    let check_dir = |fd: &OwnedFd, at: &Path| -> Result<(), Refusal> {
        let f = File::from(fd.try_clone().map_err(|e| fail(e, at))?);
        let meta = f.metadata().map_err(|e| fail(e, at))?;
        match not_own(&meta, true) {
            Some(reason) => Err(untrusted(at, reason)),
            None => Ok(()),
        }
    };
    check_dir(&dir, &here)?;
    for part in dirs {
        here.push(part);
        dir = open_at(Some(&dir), Path::new(part), dir_flags).map_err(|e| fail(e, &here))?;
        check_dir(&dir, &here)?;
    }
    // Non-blocking, so a FIFO planted as a transcript cannot hang the open; it
    // is refused below as not a regular file.
    let fd = open_at(
        Some(&dir),
        Path::new(name),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
    )
    .map_err(|e| fail(e, real))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| fail(e, real))?;
    if !meta.is_file() {
        return Err(untrusted(real, "it is not a regular file".into()));
    }
    if let Some(reason) = not_own(&meta, false) {
        return Err(untrusted(real, reason));
    }
    if meta.len() > MAX_TRANSCRIPT_BYTES {
        return Err(Refusal::TooBig {
            path: asked.to_owned(),
            size: meta.len(),
        });
    }
    Ok(file)
}

#[cfg(not(unix))]
fn open_beneath(_root: &Path, real: &Path, asked: &str) -> Result<File, Refusal> {
    let file = File::open(real).map_err(|e| Refusal::Unreadable {
        path: asked.to_owned(),
        reason: e.to_string(),
    })?;
    let meta = file.metadata().map_err(|e| Refusal::Io {
        path: asked.to_owned(),
        reason: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(Refusal::Untrusted {
            path: asked.to_owned(),
            reason: "it is not a regular file".into(),
        });
    }
    if meta.len() > MAX_TRANSCRIPT_BYTES {
        return Err(Refusal::TooBig {
            path: asked.to_owned(),
            size: meta.len(),
        });
    }
    Ok(file)
}

/// Where a subagent's transcript is when its SubagentStop has not named it yet:
/// `<project dir>/<session id>/subagents/agent-<id>.jsonl` beside the session's
/// `<project dir>/<session id>.jsonl`. `None` for ids that are not plain names.
///
/// ```
/// use swarm_obs_collector::transcript::subagent_path;
/// assert_eq!(
///     subagent_path("/h/.claude/projects/p/s1.jsonl", "s1", "a7").as_deref(),
///     Some("/h/.claude/projects/p/s1/subagents/agent-a7.jsonl"),
/// );
/// assert_eq!(subagent_path("/h/p/s1.jsonl", "s1", "../x"), None);
/// ```
pub fn subagent_path(main: &str, session: &str, agent: &str) -> Option<String> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !plain(session) || !plain(agent) {
        return None;
    }
    let dir = Path::new(main).parent()?;
    Some(
        dir.join(session)
            .join("subagents")
            .join(format!("agent-{agent}.jsonl"))
            .to_str()?
            .to_owned(),
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn setup() -> (tempfile::TempDir, Transcripts, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(".claude");
        let project = root.join("projects/p");
        std::fs::create_dir_all(&project).unwrap();
        let t = Transcripts::new(vec![root.clone()], &RedactConfig::default());
        (dir, t, project)
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn a_transcript_under_the_root_opens() {
        let (_d, t, project) = setup();
        let f = project.join("s.jsonl");
        write(&f, "{}\n");
        let opened = t.open(f.to_str().unwrap()).unwrap();
        assert_eq!(opened.path, std::fs::canonicalize(&f).unwrap());
    }

    #[test]
    fn paths_outside_the_roots_are_refused_before_any_lookup() {
        let (d, t, project) = setup();
        for path in [
            "/etc/passwd".to_owned(),
            "relative/s.jsonl".to_owned(),
            format!("{}/../../../etc/passwd", project.display()),
            format!("{}/elsewhere.jsonl", d.path().display()),
        ] {
            let err = t.open(&path).unwrap_err();
            assert!(matches!(err, Refusal::Outside { .. }), "{path}: {err}");
            assert_eq!(err.status(), 403);
        }
    }

    #[test]
    fn links_leading_out_and_odd_files_are_refused() {
        let (d, t, project) = setup();
        let outside = d.path().join("secret.jsonl");
        write(&outside, "{}\n");
        let link = project.join("link.jsonl");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let err = t.open(link.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("resolves to"), "{err}");
        let dir_link = project.join("sub");
        std::os::unix::fs::symlink(d.path(), &dir_link).unwrap();
        let err = t
            .open(&format!("{}/secret.jsonl", dir_link.display()))
            .unwrap_err();
        assert_eq!(err.status(), 403, "{err}");

        let fifo = project.join("fifo.jsonl");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = t.open(fifo.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");

        let open = project.join("open.jsonl");
        write(&open, "{}\n");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o622)).unwrap();
        let err = t.open(open.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("writable by other users"), "{err}");

        let missing = project.join("missing.jsonl");
        let err = t.open(missing.to_str().unwrap()).unwrap_err();
        assert_eq!(err.status(), 404, "{err}");
        assert!(err.to_string().contains("missing.jsonl"), "{err}");
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return; // only root can give a file away
        }
        let (_d, t, project) = setup();
        let f = project.join("planted.jsonl");
        write(&f, "{}\n");
        std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
        let err = t.open(f.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("uid 65534"), "{err}");
    }

    #[test]
    fn the_default_root_follows_claude_code() {
        assert_eq!(claude_dir(Some("".into()), None), None);
        assert_eq!(claude_dir(None, Some("rel".into())), None);
        assert_eq!(
            claude_dir(Some("".into()), Some("/h".into())),
            Some(PathBuf::from("/h/.claude"))
        );
    }
}
