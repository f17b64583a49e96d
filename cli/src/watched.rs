//! A watched worker that does not link the library (a child process, or lines on a
//! pipe): its output lines become events, and its heartbeat follows its output.
//!
//! Both `swarm-obs run` and `swarm-obs pipe` build on [`Watched`]: the library's
//! [`SwarmGuard`] does the writing, shipping, heartbeat and notifications; this adds
//! line-to-event conversion and output liveness (`--quiet-after`).

use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use swarm_obs::{Event, HeartbeatHandle, Kind, Level, Overflow, StateRoot, SwarmGuard};

use crate::output_line::{LineParser, LineReader, MAX_LINE_BYTES, RawLine, Stream};

/// How a worker is watched; the options `run` and `pipe` share.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The worker's name in events, logs and its heartbeat file.
    #[arg(long)]
    pub source: String,
    /// The task name for the start event and the heartbeat.
    #[arg(long)]
    pub task: Option<String>,
    /// Time between heartbeats (e.g. 500ms, 5s).
    #[arg(long, default_value = "5s", value_parser = swarm_obs::duration::parse_duration)]
    pub interval: Duration,
    /// Turns matching lines into progress: groups `done` and `total` (or two groups)
    /// read `3/5`; a group `percent` (or one group) reads `50%`. E.g. '(\d+)/(\d+)'.
    #[arg(long, value_name = "REGEX")]
    pub progress_regex: Option<String>,
    /// State root (default: $SWARM_OBS_HOME, else the platform state dir).
    #[arg(long)]
    pub home: Option<PathBuf>,
}

/// A worker being watched.
pub struct Watched {
    // `None` once finished: the final heartbeat is written and nothing more is taken.
    guard: RwLock<Option<SwarmGuard>>,
    source: String,
    task: Option<String>,
    pid: AtomicU32,
    parser: LineParser,
    epoch: Instant,
    // Milliseconds after `epoch` of the last line.
    last_line_ms: AtomicU64,
    stop: AtomicBool,
}

impl Watched {
    /// Starts the library for `args.source`: text and event logs, heartbeat,
    /// collector shipping (found as usual) and notifications.
    pub fn start(args: &WatchArgs) -> Result<Arc<Self>> {
        let parser = match &args.progress_regex {
            Some(p) => LineParser::with_progress(p)?,
            None => LineParser::default(),
        };
        if args.source.trim().is_empty() {
            anyhow::bail!("--source must not be empty: it names the worker");
        }
        let root = args
            .home
            .clone()
            .map_or_else(StateRoot::resolve, StateRoot::new);
        let (_layer, guard) = swarm_obs::init(args.source.clone())
            .state_root(root.clone())
            .interval(args.interval)
            // A chatty child is slowed rather than losing lines.
            .overflow(Overflow::Block)
            .panic_hook(false)
            .build()
            .with_context(|| {
                format!(
                    "cannot start watching {:?} (state root {})",
                    args.source,
                    root.dir().display()
                )
            })?;
        Ok(Arc::new(Self {
            guard: RwLock::new(Some(guard)),
            source: args.source.clone(),
            task: args.task.clone(),
            pid: AtomicU32::new(std::process::id()),
            parser,
            epoch: Instant::now(),
            last_line_ms: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }))
    }

    /// The task given with `--task`.
    pub fn task(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// Makes events and the heartbeat speak for `pid` (a child being run).
    pub fn set_pid(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
        if let Some(hb) = self.heartbeat() {
            hb.set_pid(pid);
        }
    }

    /// Records how the child exited (its code, or 128 + the signal that ended
    /// it): the final heartbeat carries it, and says `failed` unless it is 0.
    pub fn set_exit_code(&self, code: i32) {
        if let Some(hb) = self.heartbeat() {
            hb.set_exit_code(code);
        }
    }

    /// A new event of this worker, with its pid and task.
    pub fn event(&self, kind: Kind, level: Level, msg: impl Into<String>) -> Event {
        let mut ev = Event::from_process(
            self.source.clone(),
            kind,
            msg,
            swarm_obs::hostname(),
            self.pid.load(Ordering::Relaxed),
        )
        .with_level(level);
        ev.task = self.task.clone();
        ev
    }

    /// Records an event (dropped once [`finish`](Self::finish) has run).
    pub fn record(&self, ev: Event) {
        if let Some(guard) = self.read_guard().as_ref() {
            guard.record(ev);
        }
    }

    fn heartbeat(&self) -> Option<HeartbeatHandle> {
        self.read_guard()
            .as_ref()
            .and_then(|g| g.heartbeat().cloned())
    }

    fn read_guard(&self) -> std::sync::RwLockReadGuard<'_, Option<SwarmGuard>> {
        self.guard.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads `input` to its end, recording each line; `echo` gets each line as read.
    /// Returns the number of lines.
    pub fn follow(
        &self,
        input: impl Read,
        stream: Stream,
        mut echo: Option<Echo<'_>>,
    ) -> io::Result<u64> {
        let mut reader = LineReader::new(BufReader::new(input), MAX_LINE_BYTES);
        let mut line = RawLine::default();
        let mut shown = String::new();
        let mut lines = 0;
        while reader.read_line(&mut line)? {
            lines += 1;
            self.saw_output();
            if let Some(echo) = echo.as_mut() {
                echo.line(&line.bytes, &mut shown);
            }
            let Some(parsed) = self.parser.parse(&line, stream) else {
                continue;
            };
            let kind = if parsed.level == Level::Error {
                Kind::Error
            } else if parsed.progress.is_some() {
                Kind::Progress
            } else {
                Kind::Log
            };
            let mut ev = self.event(kind, parsed.level, parsed.msg);
            ev.progress = parsed.progress;
            ev.fields = parsed.fields;
            self.record(ev);
        }
        Ok(lines)
    }

    fn saw_output(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_line_ms.store(ms, Ordering::Relaxed);
        if let Some(hb) = self.heartbeat()
            && hb.is_held()
        {
            hb.resume();
            self.record(self.event(Kind::Log, Level::Info, "output resumed"));
        }
    }

    /// Holds the heartbeat whenever no line has come for `quiet_after`, so readers
    /// judge the worker late, then down; the next line lets it beat again. Runs on a
    /// thread of its own until [`finish`](Self::finish).
    pub fn watch_quiet(self: &Arc<Self>, quiet_after: Duration) -> Result<()> {
        let me = self.clone();
        let step = (quiet_after / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        std::thread::Builder::new()
            .name("swarm-obs-quiet".into())
            .spawn(move || {
                while !me.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    let last = Duration::from_millis(me.last_line_ms.load(Ordering::Relaxed));
                    let quiet = me.epoch.elapsed().saturating_sub(last);
                    if quiet < quiet_after {
                        continue;
                    }
                    if let Some(hb) = me.heartbeat()
                        && !hb.is_held()
                    {
                        hb.hold();
                        let msg = format!(
                            "no output for {} ms: heartbeat held until output resumes",
                            quiet.as_millis()
                        );
                        me.record(me.event(Kind::Log, Level::Warn, msg));
                    }
                }
            })
            .context("cannot start the output watch thread")?;
        Ok(())
    }

    /// Writes everything recorded, posts what is queued, and writes the final
    /// `stopped` heartbeat. Later events are dropped.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let guard = self.guard.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(guard);
    }
}

/// `1.2 s`, `350 ms`: a duration for messages.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
/// Where the lines of a watched stream are echoed as they pass.
pub struct Echo<'a> {
    out: &'a mut dyn Write,
    terminal: bool,
}

impl<'a> Echo<'a> {
    /// Echo to `out`. On a terminal each line is shown safely (colours pass,
    /// anything that could set the title, write the clipboard or move the cursor
    /// is shown as an escape); a file or a pipe gets the bytes as they came.
    pub fn to<W: Write + std::io::IsTerminal>(out: &'a mut W) -> Self {
        let terminal = out.is_terminal();
        Self { out, terminal }
    }

    fn line(&mut self, bytes: &[u8], shown: &mut String) {
        // A closed terminal or pipe must not stop the recording.
        let _ = if self.terminal {
            shown.clear();
            swarm_obs::visible::push_echo(shown, &String::from_utf8_lossy(bytes));
            shown.push('\n');
            self.out.write_all(shown.as_bytes())
        } else {
            self.out
                .write_all(bytes)
                .and_then(|()| self.out.write_all(b"\n"))
        }
        .and_then(|()| self.out.flush());
    }
}
