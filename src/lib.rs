//! Support for the whole-program tests and benchmarks of swarm-obs: finding the
//! workspace's binaries, fixtures, and helpers that start and stop real processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (where the top-level `Cargo.toml` is).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Claude Code hook payload fixtures, captured from the real CLI.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/claude-code")
}

/// The path of a workspace binary (`swarm-hook`, `swarm-obs`) built with the same
/// profile as the running test, building the workspace's binaries once if needed.
///
/// Panics with the command to run when the build fails.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(build_bins).as_ref().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "binary {} not found after building the workspace", path.display());
    path
}

fn build_bins() -> Result<PathBuf, String> {
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?
        .to_owned();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "--workspace", "--bins", "--examples"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo build --workspace --bins` failed ({status})"));
    }
    Ok(profile_dir)
}
