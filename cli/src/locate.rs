//! Finding the programs swarm-obs runs or points others at.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// A program installed beside this binary (cargo puts a workspace's binaries
/// together), else found on `PATH`; always an absolute path.
pub fn find_program(name: &str) -> Result<PathBuf> {
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&file)));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Ok(p);
    }
    if let Some(p) = on_path(&file) {
        return Ok(p);
    }
    bail!(
        "cannot find {name} beside this binary or on PATH: build it with `cargo build --release` (it lands beside swarm-obs) or install it with `cargo install --path hooks`"
    )
}

/// The first file named `file` in a directory of `PATH`, made absolute.
pub fn on_path(file: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(file))
        .find(|p| p.is_file())
        .map(|p| std::path::absolute(&p).unwrap_or(p))
}

/// Whether `path` is a file this user may execute.
pub fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: access(2) reads a NUL-terminated path and has no other effects.
        path.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Whether `path` lies in a cargo build directory (`target/`, or wherever
/// `CARGO_TARGET_DIR` points), which a `cargo clean` empties. Cargo leaves a
/// `.cargo-lock` in each profile directory (`target/release/`), and a
/// `CACHEDIR.TAG` in the build directory when it created it (not when another
/// tool made `target/` first).
pub fn in_build_dir(path: &Path) -> bool {
    path.ancestors().skip(1).any(|dir| {
        dir.join(".cargo-lock").is_file()
            || std::fs::read(dir.join("CACHEDIR.TAG"))
                .is_ok_and(|tag| tag.starts_with(b"Signature: 8a477f597d28d172789f06886806bc55"))
    })
}

/// What to say about a hook found in a build directory.
pub fn build_dir_advice(hook: &Path) -> String {
    format!(
        "{} is inside a cargo build directory: `cargo clean` (or a rebuild elsewhere) removes it and every Claude Code hook then fails. \
         Install both programs with `cargo install --locked --path cli && cargo install --locked --path hooks`, then run `swarm-obs hooks install` again",
        hook.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cargo_target_dir_is_a_build_dir() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("release").join("swarm-hook");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, b"").unwrap();
        assert!(!in_build_dir(&bin));
        std::fs::write(
            dir.path().join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by cargo.\n",
        )
        .unwrap();
        assert!(in_build_dir(&bin));
        // A profile directory with cargo's lock file, in a build directory that
        // another tool created first (no tag).
        let other = tempfile::tempdir().unwrap();
        let bin = other.path().join("debug").join("swarm-hook");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, b"").unwrap();
        assert!(!in_build_dir(&bin));
        std::fs::write(other.path().join("debug").join(".cargo-lock"), b"").unwrap();
        assert!(in_build_dir(&bin));
        // This test's own binary is in one.
        assert!(in_build_dir(&std::env::current_exe().unwrap()));
    }
}
