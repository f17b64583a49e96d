//! Support for the whole-program tests and benchmarks of swarm-obs: finding the
//! workspace's binaries, fixtures, and helpers that start and stop real processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub mod bench;
mod browser;
pub use browser::{Browser, HeldRequest, artifacts_dir};
pub mod claude_cli;
pub mod fake_anthropic;
pub use fake_anthropic::FakeAnthropic;
pub mod tls;
pub mod transcripts;

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
    built(built_dir(), name)
}

/// The path of an example of the root package (`noop_stdin`, `worker`), built like
/// [`bin`].
pub fn example(name: &str) -> PathBuf {
    built(&built_dir().join("examples"), name)
}

fn built_dir() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(build_bins)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn built(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary {} not found after building the workspace",
        path.display()
    );
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
    cmd.current_dir(workspace_root()).args([
        "build",
        "--quiet",
        "--workspace",
        "--bins",
        "--examples",
    ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo build --workspace --bins` failed ({status})"
        ));
    }
    Ok(profile_dir)
}

/// A private state root for one test, removed on drop.
pub struct TestHome {
    dir: tempfile::TempDir,
}

impl TestHome {
    /// A fresh, empty state root.
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("swarm-obs-test-")
                .tempdir()
                .expect("create a temporary state root"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every event in its event files, in file order.
    pub fn events(&self) -> Vec<swarm_obs::Event> {
        let root = swarm_obs::StateRoot::new(self.path());
        swarm_obs::EventLog::files(&root)
            .expect("list event files")
            .iter()
            .flat_map(|f| swarm_obs::EventReader::open(f, 0).expect("open event file"))
            .collect()
    }

    /// Every line of its event files, raw.
    pub fn event_lines(&self) -> Vec<String> {
        let root = swarm_obs::StateRoot::new(self.path());
        swarm_obs::EventLog::files(&root)
            .expect("list event files")
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .expect("read event file")
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Polls the event files (up to 60 s) for an event matching `want` and returns
    /// it; panics naming `what`, with the events seen, when none comes.
    pub fn wait_for_event(
        &self,
        what: &str,
        want: impl Fn(&swarm_obs::Event) -> bool,
    ) -> swarm_obs::Event {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let events = self.events();
            if let Some(ev) = events.iter().find(|e| want(e)) {
                return ev.clone();
            }
            if std::time::Instant::now() > deadline {
                let seen: Vec<String> = events.iter().map(|e| e.human_line(0)).collect();
                panic!("no event {what} within 60 s; seen:\n{}", seen.join("\n"));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A `swarm-obs` command bound to this state root, with no collector
    /// configured and no desktop bus (so notifications never wait on D-Bus).
    pub fn swarm_obs(&self) -> Command {
        let mut cmd = Command::new(bin("swarm-obs"));
        cmd.env("SWARM_OBS_HOME", self.path())
            .env_remove("SWARM_OBS_COLLECTOR")
            .env_remove("SWARM_OBS_TOKEN")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("RUST_LOG");
        cmd
    }

    /// A `swarm-hook` command bound to this state root, with no collector
    /// configured and the source left to the payload.
    pub fn hook(&self) -> Command {
        let mut cmd = Command::new(bin("swarm-hook"));
        cmd.env("SWARM_OBS_HOME", self.path())
            .env_remove("SWARM_OBS_COLLECTOR")
            .env_remove("SWARM_OBS_SOURCE")
            .env_remove("SWARM_OBS_TOKEN");
        cmd
    }
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

/// A private user home for commands that read or write `~/.claude`, with an
/// empty project directory inside; removed on drop.
pub struct UserHome {
    dir: tempfile::TempDir,
}

impl UserHome {
    /// A fresh home holding only `project/`.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("swarm-obs-user-")
            .tempdir()
            .expect("create a temporary home");
        std::fs::create_dir(dir.path().join("project")).expect("create the project dir");
        Self { dir }
    }

    /// Its path (`$HOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `~/.claude/settings.json`
    pub fn user_settings(&self) -> PathBuf {
        self.path().join(".claude/settings.json")
    }

    /// The project directory, the working directory of [`command`](Self::command).
    pub fn project(&self) -> PathBuf {
        self.path().join("project")
    }

    /// `program` run with this `HOME`, in the project directory, with none of
    /// the caller's Claude Code or swarm-obs settings in its environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.project()).env("HOME", self.path());
        for var in [
            "CLAUDE_CONFIG_DIR",
            "SWARM_OBS_HOME",
            "SWARM_OBS_COLLECTOR",
            "SWARM_OBS_TOKEN",
            "XDG_STATE_HOME",
            "DBUS_SESSION_BUS_ADDRESS",
            "XDG_RUNTIME_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }
}

/// `swarm-obs` copied alone into `dir`, with no `swarm-hook` beside it; run it
/// with [`output_retrying_busy`].
pub fn lone_swarm_obs(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the directory for the copy");
    let path = dir.join(format!("swarm-obs{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(bin("swarm-obs"), &path).expect("copy swarm-obs");
    path
}

/// `cmd.output()`, tried again while the program is busy: a binary copied a
/// moment ago stays open for writing in any child another test thread forked
/// during the copy, until that child execs, and Linux refuses to run it then
/// (ETXTBSY).
pub fn output_retrying_busy(cmd: &mut Command) -> std::process::Output {
    for _ in 0..500 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result.expect("run the command"),
        }
    }
    panic!("{cmd:?} stayed busy (ETXTBSY) for 5 s");
}

impl Default for UserHome {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs a command with `stdin` bytes written on a separate thread (so a child that
/// stops reading cannot deadlock the test) and collects its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: Vec<u8>) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut pipe = child.stdin.take().expect("child stdin");
    let writer = std::thread::spawn(move || {
        // A child may rightly stop reading early; a broken pipe is not a test failure.
        let _ = pipe.write_all(&stdin);
    });
    let out = child.wait_with_output().expect("wait for child");
    let _ = writer.join();
    out
}

/// One HTTP request a [`TestListener`] received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// `POST /v1/events HTTP/1.1`
    pub request_line: String,
    /// Header lines, lowercased names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    /// The value of a header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a [`TestListener`] answers.
#[derive(Debug, Clone, Copy)]
pub enum ListenerMode {
    /// Reads each request and answers with this status.
    Answer(u16),
    /// Accepts and reads, then never answers (a hung collector).
    Hang,
}

/// A real HTTP/1.1 listener on 127.0.0.1 that records what it receives; stopped
/// (thread joined, sockets closed) on drop.
pub struct TestListener {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    received: std::sync::mpsc::Receiver<ReceivedRequest>,
    mode: std::sync::Arc<std::sync::Mutex<ListenerMode>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestListener {
    /// Binds an ephemeral loopback port and starts serving.
    pub fn start(mode: ListenerMode) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, received) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let shared_mode = std::sync::Arc::new(std::sync::Mutex::new(mode));
        let thread_mode = shared_mode.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let Some(req) = read_request(&mut conn) else {
                    continue;
                };
                let _ = tx.send(req);
                let mode = *thread_mode.lock().unwrap_or_else(|p| p.into_inner());
                match mode {
                    ListenerMode::Answer(status) => {
                        use std::io::Write;
                        let resp = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                        );
                        let _ = conn.write_all(resp.as_bytes());
                    }
                    ListenerMode::Hang => held.push(conn),
                }
            }
        });
        Self {
            addr,
            stop,
            received,
            mode: shared_mode,
            thread: Some(thread),
        }
    }

    /// Answers later requests in `mode` instead (a server that starts failing, say).
    pub fn set_mode(&self, mode: ListenerMode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// `127.0.0.1:port`
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The next request received, waiting up to `timeout`.
    pub fn next_request(&self, timeout: std::time::Duration) -> Option<ReceivedRequest> {
        self.received.recv_timeout(timeout).ok()
    }
}

impl Drop for TestListener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(conn: &mut std::net::TcpStream) -> Option<ReceivedRequest> {
    use std::io::Read;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some(ReceivedRequest {
        request_line,
        headers,
        body,
    })
}

/// Whether system-dependent tests must run (CI sets `SWARM_OBS_REQUIRE_SYSTEM_TESTS=1`).
pub fn system_tests_required() -> bool {
    std::env::var("SWARM_OBS_REQUIRE_SYSTEM_TESTS").is_ok_and(|v| v == "1")
}

/// Returns `false` (after a loud message) when a program a test needs is missing,
/// or panics when system tests are required.
pub fn have_programs(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            !std::env::var_os("PATH")
                .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(p).is_file()))
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip_or_fail(&format!(
        "{test}: SKIPPED — missing {} (.ci/run installs the Debian packages tests need)",
        missing.join(", ")
    ));
    false
}

/// Reports a system test that cannot run: a loud message, or a panic when system
/// tests are required.
pub fn skip_or_fail(msg: &str) {
    if system_tests_required() {
        panic!("{msg}, and SWARM_OBS_REQUIRE_SYSTEM_TESTS=1 makes it mandatory");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!`
    // and shows it only for a failing test, which would print a skip as a quiet
    // `ok`.
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("\n!!!!!!!! {msg} !!!!!!!!\n\n").as_bytes());
}

/// Announces a 100 MB body to `addr`, sends only `start` of it, and returns the
/// start of the answer: a server must refuse it without waiting for the rest.
pub fn announce_huge_post(addr: &str, path: &str, content_type: &str, start: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {content_type}\r\ncontent-length: 104857600\r\n\r\n{start}"
    )
    .expect("send the head");
    let mut head = [0u8; 512];
    let n = s.read(&mut head).expect("an answer");
    String::from_utf8_lossy(&head[..n]).into_owned()
}

/// A free loopback TCP port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// One counter or gauge of a `/metrics` text, by its full name.
pub fn metric_value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

/// How many times each log record body starting with `prefix` (`evt-`, say)
/// appears in a rotel debug `log`: what it accepted, repeats included.
pub fn record_bodies(log: &str, prefix: &str) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for line in log.lines() {
        if let Some(b) = line.trim().strip_prefix("Body: Str(")
            && let Some(b) = b.strip_suffix(')')
            && b.starts_with(prefix)
        {
            *out.entry(b.to_owned()).or_default() += 1;
        }
    }
    out
}

/// `rotel-agent` (a real OpenTelemetry collector from `pip install rotel`): on
/// PATH, or inside the `rotel` Python package.
pub fn find_rotel_agent() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("rotel-agent"))
            .find(|p| p.is_file())
    }) {
        return Some(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import rotel, os; print(os.path.dirname(rotel.__file__))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let p = PathBuf::from(dir.trim()).join("rotel-agent");
    (out.status.success() && p.is_file()).then_some(p)
}

/// A real OTLP receiver: `rotel-agent` on free loopback ports, its data thrown
/// away (`--exporter blackhole`) after its debug log has printed every log record
/// and metric it accepted. Killed on drop.
pub struct Rotel {
    program: PathBuf,
    dir: tempfile::TempDir,
    http_port: u16,
    grpc_port: u16,
    child: Option<std::process::Child>,
    runs: usize,
}

impl Rotel {
    /// Starts rotel-agent, or returns `None` after a loud skip message when it is
    /// not installed (a panic when system tests are required).
    pub fn start(test: &str) -> Option<Self> {
        let Some(program) = find_rotel_agent() else {
            skip_or_fail(&format!(
                "{test}: SKIPPED — rotel-agent not found on PATH or in the rotel Python package (pip install rotel)"
            ));
            return None;
        };
        let mut me = Self {
            program,
            dir: tempfile::tempdir().expect("temp dir for rotel"),
            http_port: free_port(),
            grpc_port: free_port(),
            child: None,
            runs: 0,
        };
        me.restart();
        Some(me)
    }

    /// The OTLP/HTTP endpoint, `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The OTLP/gRPC endpoint, `http://127.0.0.1:port`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Starts rotel again on the same ports (after [`kill`](Self::kill)), logging to a
    /// new file, and waits until it accepts connections.
    pub fn restart(&mut self) {
        use std::time::{Duration, Instant};
        self.kill();
        self.runs += 1;
        let out = std::fs::File::create(self.dir.path().join(format!("run-{}.log", self.runs)))
            .expect("create rotel log file");
        let err = out.try_clone().expect("clone rotel log file");
        let child = Command::new(&self.program)
            .arg("start")
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("--otlp-grpc-endpoint")
            .arg(format!("127.0.0.1:{}", self.grpc_port))
            .args(["--exporter", "blackhole"])
            .args(["--debug-log", "logs", "--debug-log", "metrics"])
            .args(["--debug-log-verbosity", "detailed"])
            .arg("--pid-file")
            .arg(self.dir.path().join("rotel.pid"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn rotel-agent");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let listening = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        while !(listening(self.http_port) && listening(self.grpc_port)) {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("rotel-agent exited early with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "rotel-agent did not listen within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs rotel (if running) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// [`record_bodies`] of everything rotel printed.
    pub fn bodies(&self, prefix: &str) -> std::collections::HashMap<String, usize> {
        record_bodies(&self.log(), prefix)
    }

    /// Waits up to 120 s for rotel's log to satisfy `done`.
    pub fn wait_for(&self, what: &str, mut done: impl FnMut(&str) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let log = self.log();
            if done(&log) {
                return;
            }
            let mut tail = log.len().saturating_sub(4000);
            while !log.is_char_boundary(tail) {
                tail += 1;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} within 120 s; rotel log tail:\n{}",
                &log[tail..]
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Everything rotel printed, every run in order.
    pub fn log(&self) -> String {
        (1..=self.runs)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("run-{i}.log")))
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private desktop: a D-Bus session bus, an Xvfb display, the dunst notification
/// server, and dbus-monitor recording every `Notify` call. All stopped on drop.
pub struct DesktopSession {
    dir: tempfile::TempDir,
    bus: String,
    display: String,
    children: Vec<std::process::Child>,
}

impl DesktopSession {
    /// The programs it needs.
    pub const PROGRAMS: &[&str] = &["dbus-daemon", "dbus-monitor", "Xvfb", "dunst", "dunstctl"];

    /// Starts everything and waits until dunst answers.
    pub fn start() -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let dir = tempfile::tempdir().expect("temp dir");
        let bus = format!("unix:path={}", dir.path().join("bus").display());
        let mut s = Self {
            dir,
            bus: bus.clone(),
            display: String::new(),
            children: Vec::new(),
        };
        let dbus = Command::new("dbus-daemon")
            .args([
                "--session",
                "--nofork",
                "--nopidfile",
                &format!("--address={bus}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        s.children.push(dbus);
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "800x600x24",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut line = String::new();
        BufReader::new(xvfb.stdout.take().expect("Xvfb stdout"))
            .read_line(&mut line)
            .expect("Xvfb display number");
        s.display = format!(":{}", line.trim());
        s.children.push(xvfb);
        let dunst = s
            .command("dunst")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dunst");
        s.children.push(dunst);
        let monitor = s
            .command("dbus-monitor")
            .arg("interface='org.freedesktop.Notifications',member='Notify'")
            .stdout(std::fs::File::create(s.dir.path().join("monitor.txt")).expect("monitor file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-monitor");
        s.children.push(monitor);
        for _ in 0..100 {
            let ok = s
                .command("dunstctl")
                .arg("is-paused")
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("dunst did not come up on {}", s.bus);
    }

    /// A command with this desktop's `DISPLAY` and `DBUS_SESSION_BUS_ADDRESS`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        self.apply(&mut c);
        c
    }

    /// Points a command at this desktop.
    pub fn apply(&self, c: &mut Command) {
        c.env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus);
    }

    /// Notifications dunst has shown (closing them first so they enter its history),
    /// oldest first, as `(summary, body, category)`.
    pub fn shown(&self) -> Vec<(String, String, String)> {
        let _ = self.command("dunstctl").arg("close-all").status();
        let out = self
            .command("dunstctl")
            .arg("history")
            .output()
            .expect("dunstctl history");
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("dunstctl history is JSON");
        let field = |n: &serde_json::Value, k: &str| n[k]["data"].as_str().unwrap_or("").to_owned();
        let mut list: Vec<(i64, (String, String, String))> = v["data"][0]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| {
                        let id = n["id"]["data"].as_i64().unwrap_or(0);
                        (
                            id,
                            (field(n, "summary"), field(n, "body"), field(n, "category")),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by_key(|(id, _)| *id);
        list.into_iter().map(|(_, n)| n).collect()
    }

    /// Everything dbus-monitor recorded of `Notify` calls.
    pub fn monitor_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("monitor.txt")).unwrap_or_default()
    }
}

impl Drop for DesktopSession {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
/// An HTTP client for tests: no proxy, statuses returned rather than raised, and
/// a generous overall time limit so a hung server fails the test instead of
/// stalling it.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

/// A real `swarm-obs serve` process on an ephemeral loopback port, with its state
/// root in a [`TestHome`]; killed on drop.
///
/// ```no_run
/// use swarm_obs_suite::{Collector, TestHome};
/// let home = TestHome::new();
/// let collector = Collector::start(&home);
/// let resp = swarm_obs_suite::http().get(collector.url("/healthz")).call().unwrap();
/// assert_eq!(resp.status(), 200);
/// ```
pub struct Collector {
    child: std::process::Child,
    addr: String,
    token: Option<String>,
    /// What the collector wrote to stderr, kept for [`stderr`](Self::stderr).
    stderr_log: tempfile::NamedTempFile,
}

impl Collector {
    /// Starts a collector for `home` and waits until it answers `/healthz`.
    pub fn start(home: &TestHome) -> Self {
        Self::start_with(home, &[])
    }

    /// Like [`start`](Self::start), with extra `serve` arguments (`--token t`, …);
    /// an `--addr` among them replaces the ephemeral port.
    pub fn start_with(home: &TestHome, args: &[&str]) -> Self {
        Self::start_with_env(home, args, &[])
    }

    /// Like [`start_with`](Self::start_with), with environment variables set for
    /// the collector (`OTEL_EXPORTER_OTLP_*` are otherwise removed).
    pub fn start_with_env(home: &TestHome, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(home, args, env, None)
    }

    /// Starts a collector whose descriptor limit (soft and hard) is `nofile`.
    pub fn start_with_fd_limit(home: &TestHome, nofile: u64) -> Self {
        Self::spawn(home, &[], &[], Some(nofile))
    }

    fn spawn(home: &TestHome, args: &[&str], env: &[(&str, &str)], nofile: Option<u64>) -> Self {
        use std::time::{Duration, Instant};
        let root = swarm_obs::StateRoot::new(home.path());
        let info_path = root.collector_file();
        let _ = std::fs::remove_file(&info_path);
        let mut cmd = Command::new(bin("swarm-obs"));
        cmd.arg("serve");
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: setrlimit is async-signal-safe and only reads `lim`.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        if !args.contains(&"--addr") {
            cmd.args(["--addr", "127.0.0.1:0"]);
        }
        let stderr_log = tempfile::NamedTempFile::new().expect("temp file for serve's stderr");
        let stderr = stderr_log.reopen().expect("open serve's stderr file");
        let child = cmd
            .arg("--home")
            .arg(home.path())
            .args(args)
            .env_remove("SWARM_OBS_TOKEN")
            // Export only where a test says so.
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
            .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn swarm-obs serve");
        let mut me = Self {
            child,
            addr: String::new(),
            token: None,
            stderr_log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = me.child.try_wait().expect("poll the collector") {
                panic!(
                    "swarm-obs serve exited early with {status}:\n{}",
                    me.stderr()
                );
            }
            if let Some(info) = swarm_obs::CollectorInfo::read(&info_path)
                && info.pid == me.child.id()
            {
                me.addr = info.addr;
                me.token = info.token;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "swarm-obs serve did not write collector.json within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let resp = me
            .get("/healthz")
            .call()
            .expect("GET /healthz on the new collector");
        assert_eq!(resp.status(), 200, "collector not healthy");
        me
    }

    /// `127.0.0.1:port`
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The collector's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:port<path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A GET of `path`, carrying the token from `collector.json` if there is one.
    pub fn get(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let mut req = http().get(self.url(path));
        if let Some(t) = &self.token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        req
    }

    /// POSTs `body` with `content_type` to `path`; returns the status and body text.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let mut req = http()
            .post(self.url(path))
            .header("content-type", content_type);
        if let Some(t) = &self.token {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.send(body).expect("POST to the collector");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, text)
    }

    /// POSTs events as NDJSON to `/v1/events`, asserting they were accepted.
    pub fn post_events(&self, events: &[swarm_obs::Event]) -> String {
        let body: String = events.iter().map(swarm_obs::Event::to_json_line).collect();
        let (status, text) = self.post("/v1/events", "application/x-ndjson", body.as_bytes());
        assert_eq!(status, 202, "POST /v1/events: {text}");
        text
    }

    /// GETs `path` and parses the JSON answer, asserting status 200.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let mut resp = self.get(path).call().expect("GET from the collector");
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(resp.status(), 200, "GET {path}: {text}");
        serde_json::from_str(&text).expect("collector answered JSON")
    }

    /// The session `id` as `/v1/sessions` shows it, polled until `ok` holds for
    /// it; panics with the last answer after 30 s.
    pub fn session_when(
        &self,
        id: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t = std::time::Instant::now();
        loop {
            let all = self.get_json("/v1/sessions");
            if let Some(s) = all["sessions"]
                .as_array()
                .and_then(|list| list.iter().find(|s| s["session"] == id))
                && ok(s)
            {
                return s.clone();
            }
            assert!(
                t.elapsed() < std::time::Duration::from_secs(30),
                "session {id}: {all:#}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let mut resp = self.get("/metrics").call().expect("GET /metrics");
        assert_eq!(resp.status(), 200, "GET /metrics");
        resp.body_mut().read_to_string().expect("read /metrics")
    }

    /// One counter or gauge of `/metrics`, by its full name.
    pub fn metric(&self, name: &str) -> u64 {
        metric_value(&self.metrics(), name)
    }

    /// Everything the collector wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_log.path()).unwrap_or_default()
    }

    /// Waits up to 60 s for the collector's stderr to satisfy `done`, and returns it.
    pub fn wait_for_stderr(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let text = self.stderr();
            if done(&text) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} within 60 s; the collector's stderr:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Every stored event id, newest first, paging through `/v1/events`.
    pub fn stored_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor = String::new();
        // Bounded: a million events is far beyond any test.
        for _ in 0..1000 {
            let page = self.get_json(&format!("/v1/events?limit=1000&cursor={cursor}"));
            for e in page["events"].as_array().expect("events array") {
                ids.push(e["id"].as_str().expect("event id").to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => break,
            }
        }
        ids
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits (up to 30 s, then SIGKILL) for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        for _ in 0..3000 {
            if let Some(status) = self.child.try_wait().expect("poll the collector") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!("swarm-obs serve did not exit within 30 s of SIGTERM");
    }

    /// SIGKILLs the collector and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child process stopped by the test that started it: SIGKILLed and reaped on drop.
pub struct ChildGuard {
    child: std::process::Child,
}

impl ChildGuard {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> Self {
        Self {
            child: cmd.spawn().expect("spawn the child process"),
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs it now and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The child itself, for its pipes.
    pub fn child(&mut self) -> &mut std::process::Child {
        &mut self.child
    }

    /// Sends `signal` (a `libc::SIG*`).
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child, not yet reaped, by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to 60 s for it to exit; panics (and kills it) past that.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        for _ in 0..6000 {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!("pid {} did not exit within 60 s", self.child.id());
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private tmux server (its socket in a test's state root) with one detached
/// session `t`; the server is killed on drop.
pub struct Tmux {
    socket: PathBuf,
    /// Where [`start_program`](Self::start_program)'s wrapper writes the exit status.
    status_file: PathBuf,
}

impl Tmux {
    /// The programs it needs.
    pub const PROGRAMS: &[&str] = &["tmux"];

    /// Starts the server and session `t` (120×40) running `shell_command`, a
    /// shell, and waits for its prompt: keys sent before the shell reads its
    /// terminal can be lost or echoed out of order.
    pub fn start(home: &TestHome, shell_command: &str) -> Self {
        let tmux = Self::new(home);
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "120",
            "-y",
            "40",
            shell_command,
        ]);
        tmux.wait_for("the shell's prompt", |screen| !screen.trim().is_empty());
        tmux
    }

    /// Starts `program args…` in a `width`×`height` session `t`. The pane stays
    /// after the program exits, so a test can read the screen it left, and
    /// [`exit_status`](Self::exit_status) tells how it ended.
    pub fn start_program(
        home: &TestHome,
        program: &Path,
        args: &[&str],
        width: u16,
        height: u16,
    ) -> Self {
        let tmux = Self::new(home);
        // Set in the configuration, so it holds before the program can exit.
        let config = home.path().join("tmux.conf");
        std::fs::write(&config, "set-option -g remain-on-exit on\n").expect("write tmux.conf");
        // One shell command (tmux joins several arguments with spaces) that also
        // writes the exit status to a file: tmux may drop a dying pane's last
        // output, and does not always learn its status.
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut command = quote(&program.to_string_lossy());
        for a in args {
            command.push(' ');
            command.push_str(&quote(a));
        }
        command.push_str(&format!(
            "; echo $? > {}",
            quote(&tmux.status_file.to_string_lossy())
        ));
        tmux.run(&[
            "-f",
            &config.to_string_lossy(),
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &command,
        ]);
        tmux
    }

    fn new(home: &TestHome) -> Self {
        Self {
            socket: home.path().join("tmux.sock"),
            status_file: home.path().join("tmux.status"),
        }
    }

    /// A `tmux` command on this server, without the desktop bus.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S")
            .arg(&self.socket)
            .env_remove("TMUX")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        cmd
    }

    /// Runs `tmux ARGS` on this server; panics when it fails.
    pub fn run(&self, args: &[&str]) {
        let out = self.command().args(args).output().expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
    }

    /// Sends keys to session `t`, as `tmux send-keys` names them (`Enter`, `C-c`).
    pub fn send_keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Types text literally into session `t`.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
    }

    /// The visible screen of session `t`, one line per row.
    pub fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("run tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until `done` holds, for at most 60 s; returns that screen.
    /// Panics with `what` and the last screen otherwise.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited 60 s for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The exit status of a [`start_program`](Self::start_program) program once it
    /// has exited; `None` while it runs.
    pub fn exit_status(&self) -> Option<i32> {
        let text = std::fs::read_to_string(&self.status_file).ok()?;
        text.trim().parse().ok()
    }

    /// Waits (at most 60 s) for the program to exit; returns its exit status.
    pub fn wait_exit(&self) -> i32 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(s) = self.exit_status() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the program did not exit within 60 s; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The process id of a [`start_program`](Self::start_program) program (a child
    /// of the pane's shell); Linux only, as it reads `/proc`.
    pub fn program_pid(&self) -> Option<u32> {
        let out = self
            .command()
            .args(["display-message", "-p", "-t", "t", "#{pane_pid}"])
            .output()
            .ok()?;
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}

/// One Server-Sent Events message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseMessage {
    /// `id:`
    pub id: Option<String>,
    /// `event:`
    pub event: Option<String>,
    /// `data:` lines joined by newlines.
    pub data: String,
}

/// An SSE connection read on its own thread; messages arrive on a channel so tests
/// wait with a bound instead of blocking on the socket.
pub struct SseStream {
    messages: std::sync::mpsc::Receiver<SseMessage>,
    stream: std::net::TcpStream,
}

impl SseStream {
    /// Opens `GET path` on `addr` with extra request headers (`Last-Event-ID: …`)
    /// and waits for the response head, so the viewer is subscribed on return.
    /// Panics if the answer is not `200`.
    pub fn open(addr: &str, path: &str, headers: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to the collector");
        let mut req =
            format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .expect("send the SSE request");
        let reader = stream.try_clone().expect("clone the SSE socket");
        let (tx, messages) = std::sync::mpsc::channel();
        let (head_tx, head_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(reader);
            let mut line = String::new();
            // Response head: status line must be 200; skip headers.
            let mut head = true;
            let mut chunked = false;
            let mut msg = SseMessage::default();
            loop {
                line.clear();
                match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let l = line.trim_end_matches(['\r', '\n']);
                if head {
                    if l.starts_with("HTTP/1.1") && !l.contains(" 200") {
                        let _ = head_tx.send(Err(l.to_owned()));
                        return;
                    }
                    if l.eq_ignore_ascii_case("transfer-encoding: chunked") {
                        chunked = true;
                    }
                    if l.is_empty() {
                        head = false;
                        let _ = head_tx.send(Ok(()));
                    }
                    continue;
                }
                // Chunk-size lines of a chunked body are hex digits alone on a line.
                if chunked && !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()) {
                    continue;
                }
                if l.is_empty() {
                    if msg != SseMessage::default() && tx.send(std::mem::take(&mut msg)).is_err() {
                        return;
                    }
                } else if let Some(v) = l.strip_prefix("id:") {
                    msg.id = Some(v.trim_start().to_owned());
                } else if let Some(v) = l.strip_prefix("event:") {
                    msg.event = Some(v.trim_start().to_owned());
                } else if let Some(v) = l.strip_prefix("data:") {
                    if !msg.data.is_empty() {
                        msg.data.push('\n');
                    }
                    msg.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
        });
        match head_rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(Ok(())) => Self { messages, stream },
            Ok(Err(status)) => panic!("GET {path}: {status}"),
            Err(_) => panic!("GET {path}: no response head within 60 s"),
        }
    }

    /// The next message, waiting up to `timeout`.
    pub fn next(&self, timeout: std::time::Duration) -> Option<SseMessage> {
        self.messages.recv_timeout(timeout).ok()
    }

    /// The next message that carries an event (skipping keep-alive comments).
    pub fn next_event(&self, timeout: std::time::Duration) -> Option<SseMessage> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            let m = self.next(left)?;
            if m.id.is_some() || m.event.is_some() {
                return Some(m);
            }
        }
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// A running child whose stdout lines arrive on a channel, so a test waits for
/// output with a bound instead of blocking on the pipe; killed on drop.
pub struct LineChild {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl LineChild {
    /// Spawns `cmd` with stdout and stderr piped (stdin closed).
    pub fn spawn(cmd: &mut Command) -> Self {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let out = child.stdout.take().expect("child stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("child stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            // Kept as it comes, so a test can look at stderr while the child runs.
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    return;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line, waiting up to `timeout`.
    pub fn next_line(&self, timeout: std::time::Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Lines up to and including the first that contains `needle`; panics with
    /// what was read when it does not come within `timeout`.
    pub fn lines_until(&self, needle: &str, timeout: std::time::Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.next_line(left) {
                Some(l) => {
                    let done = l.contains(needle);
                    got.push(l);
                    if done {
                        return got;
                    }
                }
                None => panic!(
                    "no line containing {needle:?} within {timeout:?}; read:\n{}\nstderr:\n{}",
                    got.join("\n"),
                    self.stderr()
                ),
            }
        }
    }

    /// Whatever the child has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits up to `timeout` for the child to exit on its own; `None` if it did not.
    pub fn wait_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Sends a signal (`libc::SIGINT` for a Ctrl-C, `libc::SIGTERM`) to the child.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a process with this pid still exists (a zombie counts as gone: it has
/// exited and only waits to be reaped).
pub fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => {
            // No /proc (not Linux): ask the kernel.
            // SAFETY: signal 0 only checks the pid.
            let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
            rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
        }
    }
}
