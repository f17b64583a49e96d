//! `swarm-obs run`: runs a command as a watched worker.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use swarm_obs::{Kind, Level};

use crate::output_line::Stream;
use crate::signals;
use crate::watched::{Echo, WatchArgs, Watched, human_duration};

/// How long output still arriving after the child exits is read (a grandchild may
/// hold the pipes open for ever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Arguments of `swarm-obs run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  swarm-obs run --source backup -- ./backup.sh /data
  swarm-obs run --source train --task epoch-7 --progress-regex '(\\d+)/(\\d+)' -- python train.py
  swarm-obs run --source crawler --quiet-after 2m -- ./crawl

What it does:
  A `start` event on launch; each line of the command's stdout and stderr becomes an
  event (level info for stdout, warn for stderr, unless the line names one: `ERROR`,
  `[warn]`, `level=debug`, or a JSON object with a `level` field); `done` (exit 0) or
  `error` (any other exit, or a signal) at the end, with the duration and exit code.
  Start, done and error are notified through the sound rules of config.toml.

Heartbeat:
  heartbeats/<source>.json is written every --interval with the command's pid, so
  `status` and the collector see it alive while it runs and dead if it vanishes.
  A command can hang while its process lives on: with --quiet-after, no output for
  that long holds the heartbeat, so readers judge the worker late (after one interval)
  and then down (after interval + grace), exactly as for a stuck library worker.
  The next line of output lets it beat again.

Signals:
  SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to the command
  (those the terminal sends, like Ctrl-C, reach it directly, as it shares the group).
  swarm-obs run exits with the command's exit code (128 + N when killed by signal N).")]
pub struct Args {
    #[command(flatten)]
    watch: WatchArgs,
    /// Hold the heartbeat after this long without output (e.g. 30s, 5m); see below.
    #[arg(long, value_name = "DURATION", value_parser = swarm_obs::duration::parse_duration)]
    quiet_after: Option<Duration>,
    /// Do not copy the command's output to this terminal.
    #[arg(long)]
    no_echo: bool,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// Runs the command to its end and returns its exit code.
pub fn run(args: Args) -> Result<ExitCode> {
    // Before any thread exists, so that every thread leaves them to the waiter.
    let signal_set = signals::block().context("cannot block signals to forward them")?;
    let watched = Watched::start(&args.watch)?;
    let shown = args
        .command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let started = Instant::now();
    let mut child = match signals::unblocked_in_child(&mut Command::new(&args.command[0]))
        .args(&args.command[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let mut ev = watched.event(
                Kind::Error,
                Level::Error,
                format!("cannot start {shown}: {e}"),
            );
            ev.fields
                .insert("command".into(), Value::from(shown.clone()));
            watched.record(ev);
            watched.set_exit_code(127);
            watched.finish();
            eprintln!("swarm-obs run: cannot start {shown}: {e} (is it on PATH and executable?)");
            // What a shell answers for a command it cannot run.
            return Ok(ExitCode::from(127));
        }
    };
    let pid = child.id();
    watched.set_pid(pid);
    let forward_to = Arc::clone(&watched);
    signal_set
        .spawn_waiter(move |received| {
            let name = signals::name(received.signal);
            // The child shares our process group, so the terminal's signals reach
            // it directly: passing them on would deliver them twice.
            let msg = if received.from_terminal {
                format!("{name} from the terminal reached pid {pid} directly")
            } else {
                // SAFETY: kill has no memory preconditions; the pid is our own
                // child's, not yet reaped while this process waits for it.
                unsafe { libc::kill(pid as libc::pid_t, received.signal) };
                format!("passed {name} on to pid {pid}")
            };
            forward_to.record(forward_to.event(Kind::Log, Level::Info, msg));
        })
        .context("cannot start the signal thread")?;

    let what = watched
        .task()
        .map_or_else(|| shown.clone(), |t| format!("{t} ({shown})"));
    let mut start = watched.event(Kind::Start, Level::Info, format!("Started {what}"));
    // The heartbeat's task: the one given, else the command line.
    start.task = Some(watched.task().unwrap_or(&shown).to_owned());
    start
        .fields
        .insert("command".into(), Value::from(shown.clone()));
    start.fields.insert("child_pid".into(), Value::from(pid));
    watched.record(start);
    if let Some(quiet) = args.quiet_after {
        watched.watch_quiet(quiet)?;
    }

    let (done_tx, done_rx) = mpsc::channel();
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        readers += 1;
        spawn_reader(
            &watched,
            out,
            Stream::Stdout,
            !args.no_echo,
            done_tx.clone(),
        )?;
    }
    if let Some(err) = child.stderr.take() {
        readers += 1;
        spawn_reader(
            &watched,
            err,
            Stream::Stderr,
            !args.no_echo,
            done_tx.clone(),
        )?;
    }
    drop(done_tx);
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for pid {pid} ({shown})"))?;
    let elapsed = started.elapsed();
    let deadline = Instant::now() + DRAIN_AFTER_EXIT;
    for _ in 0..readers {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let code = shell_code(status);
    watched.set_exit_code(code);
    watched.record(end_event(&watched, status, elapsed, &what));
    watched.finish();
    Ok(ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)))
}

fn spawn_reader(
    watched: &Arc<Watched>,
    input: impl std::io::Read + Send + 'static,
    stream: Stream,
    echo: bool,
    done: mpsc::Sender<()>,
) -> Result<()> {
    let watched = Arc::clone(watched);
    std::thread::Builder::new()
        .name(format!("swarm-obs-{}", stream.as_str()))
        .spawn(move || {
            let result = if !echo {
                watched.follow(input, stream, None)
            } else if stream == Stream::Stderr {
                watched.follow(input, stream, Some(Echo::to(&mut std::io::stderr())))
            } else {
                watched.follow(input, stream, Some(Echo::to(&mut std::io::stdout())))
            };
            if let Err(e) = result {
                let msg = format!("reading the command's {}: {e}", stream.as_str());
                watched.record(watched.event(Kind::Log, Level::Warn, msg));
            }
            let _ = done.send(());
        })
        .with_context(|| format!("cannot start the {} reader thread", stream.as_str()))?;
    Ok(())
}

/// `done` for exit 0, else `error`, with the duration and the code or signal.
fn end_event(
    watched: &Watched,
    status: ExitStatus,
    elapsed: Duration,
    what: &str,
) -> swarm_obs::Event {
    let took = human_duration(elapsed);
    let mut ev = match (status.code(), status.signal()) {
        (Some(0), _) => watched.event(
            Kind::Done,
            Level::Info,
            format!("Finished {what} in {took}"),
        ),
        (Some(code), _) => watched.event(
            Kind::Error,
            Level::Error,
            format!("{what} failed with exit code {code} after {took}"),
        ),
        (None, Some(sig)) => watched.event(
            Kind::Error,
            Level::Error,
            format!("{what} was killed by {} after {took}", signals::name(sig)),
        ),
        (None, None) => watched.event(
            Kind::Error,
            Level::Error,
            format!("{what} ended with {status} after {took}"),
        ),
    };
    ev.duration_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    if let Some(code) = status.code() {
        ev.fields.insert("exit_code".into(), Value::from(code));
    }
    if let Some(sig) = status.signal() {
        ev.fields.insert("signal".into(), Value::from(sig));
    }
    ev
}

/// The child's exit code, or 128 + N after signal N, as a shell reports it.
fn shell_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}
