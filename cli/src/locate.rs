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
