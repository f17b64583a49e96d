//! Whether a file of the state root can be trusted: the state root holds every
//! prompt and command of every agent, and `config.toml` can name a command to
//! run, so a directory or file that another user could have written is refused
//! rather than read.
//!
//! Trusted means owned by the user running swarm-obs (or by root) and writable
//! by nobody else (no group or world write bit). Directories swarm-obs creates
//! are `0700` whatever the umask.

use std::io;
use std::path::{Path, PathBuf};

/// A file or directory another user could have written.
///
/// ```
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
/// let err = swarm_obs::check_trusted(dir.path(), "state root").unwrap_err();
/// assert!(err.to_string().contains("writable by other users"));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Owned by another user.
    #[error(
        "refusing the {what} {path}: it belongs to uid {owner}, not to you (uid {me}); \
         another user could have written it. Use a state root of your own (SWARM_OBS_HOME)"
    )]
    Owner {
        /// What it is (`state root`, `config file`, …).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The user running this.
        me: u32,
    },
    /// Group- or world-writable.
    #[error(
        "refusing the {what} {path}: it is writable by other users (mode {mode:o}); \
         run `chmod go-w {path}` if it is yours"
    )]
    Writable {
        /// What it is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A symbolic link where swarm-obs keeps a directory of its own.
    #[error(
        "refusing the {what} {path}: it is a symbolic link; swarm-obs does not follow links inside its state root"
    )]
    Link {
        /// What it is.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// Looking at it failed.
    #[error("cannot check the {what} {path}: {source}")]
    Stat {
        /// What it is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Checks that `path`, if it exists, is owned by this user (or root) and not
/// writable by group or others; a missing path is fine (nothing to trust yet).
/// Symbolic links are followed: what counts is the file read.
pub fn check_trusted(path: &Path, what: &'static str) -> Result<(), TrustError> {
    match std::fs::metadata(path) {
        Ok(meta) => judge(path, what, &meta),
        // Nothing there, or a file where a directory should be: nothing to trust,
        // and whatever uses the path reports why it cannot.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(())
        }
        Err(source) => Err(TrustError::Stat {
            what,
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(unix)]
fn judge(path: &Path, what: &'static str, meta: &std::fs::Metadata) -> Result<(), TrustError> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(TrustError::Owner {
            what,
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(TrustError::Writable {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn judge(_: &Path, _: &'static str, _: &std::fs::Metadata) -> Result<(), TrustError> {
    Ok(())
}

/// Makes sure `dir` is a private directory: creates it and any missing parents
/// with mode `0700` (the umask can only take bits away), and refuses one that is
/// a symbolic link or untrusted. One `lstat` when it exists already.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir)?;
            std::fs::symlink_metadata(dir)?
        }
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        return Err(io::Error::other(TrustError::Link {
            what: "directory",
            path: dir.to_owned(),
        }));
    }
    judge(dir, "directory", &meta).map_err(io::Error::other)
}

/// Open options that do not follow a symbolic link at the last component, so a
/// link planted where a log file should be is refused (`ELOOP`), not written through.
pub fn no_follow(opts: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(opts, libc::O_NOFOLLOW);
    opts
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_dirs_are_0700_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0) };
        let made = dir.path().join("a/b");
        let result = ensure_private_dir(&made);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        result.unwrap();
        for d in [dir.path().join("a"), made] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
    }

    #[test]
    fn links_and_writable_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let link = dir.path().join("events");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            check_trusted(&open, "state root"),
            Err(TrustError::Writable { .. })
        ));
        assert!(check_trusted(&dir.path().join("missing"), "config file").is_ok());
    }

    #[test]
    fn a_planted_link_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("x.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let opened = no_follow(std::fs::OpenOptions::new().append(true).create(true)).open(&link);
        assert!(opened.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
