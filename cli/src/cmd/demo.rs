//! `swarm-obs demo`: a captured Claude Code session replayed through the real
//! `swarm-hook`, then read back from the event log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use swarm_obs::{EventLog, EventReader, StateRoot};

/// Arguments of `swarm-obs demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  swarm-obs demo\n  swarm-obs demo --home /tmp/swarm-demo")]
pub struct Args {
    /// State root to write the demo's events to (default: a fresh temporary directory).
    #[arg(long)]
    home: Option<PathBuf>,
}

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                "../../../tests/fixtures/claude-code/",
                $name,
                ".json"
            ))
            .as_slice(),
        )
    };
}

/// One Claude Code session in the order the hooks fire: a prompt, a tool call, a
/// subagent with its own tool call, a permission prompt, a failing tool, the end.
const SESSION: &[(&str, &[u8])] = &[
    fixture!("SessionStart"),
    fixture!("UserPromptSubmit"),
    fixture!("PreToolUse"),
    fixture!("PostToolUse"),
    fixture!("PreToolUse.Agent_tool"),
    fixture!("SubagentStart"),
    fixture!("PreToolUse.inside_subagent"),
    fixture!("PostToolUse.inside_subagent"),
    fixture!("SubagentStop"),
    fixture!("PostToolUse.Agent_tool"),
    fixture!("PermissionRequest"),
    fixture!("Notification.permission_prompt"),
    fixture!("PostToolUseFailure"),
    fixture!("Stop"),
    fixture!("SessionEnd"),
];

/// Runs the demo.
pub fn run(args: Args) -> Result<ExitCode> {
    let temp;
    let home = match args.home {
        Some(h) => h,
        None => {
            temp = std::env::temp_dir().join(format!("swarm-obs-demo-{}", std::process::id()));
            temp.clone()
        }
    };
    let hook = find_sibling("swarm-hook")?;
    let root = StateRoot::new(&home);
    println!("Replaying a Claude Code session through {}", hook.display());
    println!("State root: {}\n", home.display());
    for (name, payload) in SESSION {
        let mut child = Command::new(&hook)
            .env(swarm_obs::HOME_ENV, &home)
            .env(swarm_obs::COLLECTOR_ENV, "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", hook.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(payload)
                .with_context(|| format!("cannot send {name} to swarm-hook"))?;
        }
        let status = child.wait().context("swarm-hook did not finish")?;
        if !status.success() {
            bail!("swarm-hook exited with {status} on {name}");
        }
    }
    let mut shown = 0;
    for file in EventLog::files(&root).context("cannot list the demo's event files")? {
        let reader = EventReader::open(&file, 0)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for ev in reader {
            println!("{}", ev.human_line(0));
            shown += 1;
        }
    }
    println!("\n{shown} events in {}", root.events_dir().display());
    Ok(ExitCode::SUCCESS)
}

/// A binary installed beside this one (cargo puts workspace binaries together),
/// else found on `PATH`.
pub fn find_sibling(name: &str) -> Result<PathBuf> {
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        let p = dir.join(&file);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(&file);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "cannot find {name} beside this binary or on PATH: build it with `cargo build --release` or install it with `cargo install --path hooks`"
    )
}
