//! `swarm-obs demo`: a captured Claude Code session replayed through the real
//! `swarm-hook`, then read back from the event log.

use std::io::Write;
use std::path::PathBuf;
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

/// A collector started for the demo, stopped when dropped.
struct DemoCollector {
    child: std::process::Child,
    addr: String,
}

impl DemoCollector {
    /// Starts `swarm-obs serve` on a free loopback port and waits for `collector.json`.
    fn start(root: &StateRoot) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot locate the swarm-obs binary")?;
        let child = Command::new(exe)
            .args(["serve", "--addr", "127.0.0.1:0", "--home"])
            .arg(root.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the demo collector")?;
        let mut collector = Self {
            child,
            addr: String::new(),
        };
        for _ in 0..200 {
            if let Some(info) = swarm_obs::CollectorInfo::read(&root.collector_file())
                && info.pid == collector.child.id()
            {
                collector.addr = info.addr;
                return Ok(collector);
            }
            if let Some(status) = collector.child.try_wait()? {
                bail!("the demo collector exited with {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        bail!(
            "the demo collector did not write {} within 5 s",
            root.collector_file().display()
        )
    }
}

impl Drop for DemoCollector {
    fn drop(&mut self) {
        // SIGTERM lets it remove collector.json; kill as a last resort.
        #[cfg(unix)]
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let hook = crate::locate::find_program("swarm-hook")?;
    let root = StateRoot::new(&home);
    let collector = DemoCollector::start(&root)?;
    println!(
        "Collector listening on http://{} (live stream: /v1/stream)",
        collector.addr
    );
    println!("Replaying a Claude Code session through {}", hook.display());
    println!("State root: {}\n", home.display());
    for (name, payload) in SESSION {
        let mut child = Command::new(&hook)
            .env(swarm_obs::HOME_ENV, &home)
            .env(swarm_obs::COLLECTOR_ENV, &collector.addr)
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
    let sessions =
        http_get(&collector.addr, "/v1/sessions").context("cannot query the demo collector")?;
    println!("The collector's view of the session (GET /v1/sessions):\n{sessions}");
    drop(collector);
    Ok(ExitCode::SUCCESS)
}

/// A plain HTTP/1.1 GET against the loopback collector; returns the body.
fn http_get(addr: &str, path: &str) -> Result<String> {
    use std::io::Read;
    let mut stream =
        std::net::TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path} answered {}", head.lines().next().unwrap_or(""));
    }
    let pretty = serde_json::from_str::<serde_json::Value>(body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| body.to_owned());
    Ok(pretty)
}
