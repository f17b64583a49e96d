//! `swarm-obs pipe`: lines on stdin or a named pipe become a watched worker's events.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use swarm_obs::{Kind, Level};

use crate::output_line::Stream;
use crate::signals;
use crate::watched::{Echo, WatchArgs, Watched};

/// Arguments of `swarm-obs pipe`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  docker logs -f api | swarm-obs pipe --source api
  tmux pipe-pane -o 'swarm-obs pipe --source pane-1'
  swarm-obs pipe --source nightly --fifo /tmp/nightly.fifo &   then   ./job > /tmp/nightly.fifo

Each line becomes an event, its level read from the line (`ERROR`, `[warn]`,
`level=debug`, a JSON object with a `level` field), else info.

Heartbeat:
  heartbeats/<source>.json advances while lines arrive. After --quiet-after (default:
  one --interval) without a line it is held, so `status` and the collector judge the
  source late, then down (after interval + grace); the next line revives it.

End:
  Without --fifo, the end of stdin ends the command (final heartbeat `stopped`). With
  --fifo, the pipe is created if missing and reopened whenever its last writer closes
  it, until SIGINT or SIGTERM.")]
pub struct Args {
    #[command(flatten)]
    watch: WatchArgs,
    /// Read from this named pipe instead of stdin, reopening it after each writer.
    #[arg(long, value_name = "PATH")]
    fifo: Option<PathBuf>,
    /// Hold the heartbeat after this long without a line (default: the interval).
    #[arg(long, value_name = "DURATION", value_parser = swarm_obs::duration::parse_duration)]
    quiet_after: Option<Duration>,
    /// Copy each line to stdout as well, like `tee`.
    #[arg(long)]
    echo: bool,
}

/// Reads lines until the end of stdin, or for ever from a FIFO.
pub fn run(args: Args) -> Result<ExitCode> {
    let signal_set = signals::block().context("cannot block signals to stop cleanly")?;
    if let Some(path) = &args.fifo {
        ensure_fifo(path)?;
    }
    let watched = Watched::start(&args.watch)?;
    let on_signal = Arc::clone(&watched);
    signal_set
        .spawn_waiter(move |received| {
            let msg = format!("stopped by {}", signals::name(received.signal));
            on_signal.record(on_signal.event(Kind::Log, Level::Info, msg));
            on_signal.finish();
            std::process::exit(0);
        })
        .context("cannot start the signal thread")?;
    watched.watch_quiet(args.quiet_after.unwrap_or(args.watch.interval))?;
    let mut stdout = std::io::stdout();
    let result = match &args.fifo {
        None => {
            let out = args.echo.then(|| Echo::to(&mut stdout));
            watched
                .follow(std::io::stdin().lock(), Stream::Input, out)
                .map(drop)
                .context("cannot read stdin")
        }
        Some(path) => follow_fifo(&watched, path, args.echo.then_some(&mut stdout)),
    };
    watched.finish();
    result.map(|()| ExitCode::SUCCESS)
}

/// Opens `path` for reading again and again: each open waits for a writer, and
/// the end of input comes when the last writer closes.
fn follow_fifo(
    watched: &Watched,
    path: &Path,
    mut echo: Option<&mut std::io::Stdout>,
) -> Result<()> {
    loop {
        let file = File::open(path)
            .with_context(|| format!("cannot open the named pipe {}", path.display()))?;
        let out = echo.as_deref_mut().map(Echo::to);
        watched
            .follow(file, Stream::Input, out)
            .with_context(|| format!("cannot read the named pipe {}", path.display()))?;
    }
}

/// Creates the FIFO at `path` (mode 0600) unless one is there; anything else at
/// `path` is an error, never replaced.
fn ensure_fifo(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_fifo() => return Ok(()),
        Ok(_) => bail!(
            "{} exists and is not a named pipe: remove it or choose another --fifo path",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot inspect {}", path.display()));
        }
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} holds a NUL byte", path.display()))?;
    // SAFETY: c_path is a valid NUL-terminated string for the call's duration.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        let e = std::io::Error::last_os_error();
        // Another process may have made it in the meantime.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e).with_context(|| {
                format!(
                    "cannot create the named pipe {} (does its directory exist and is it writable?)",
                    path.display()
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_is_created_once_and_other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.fifo");
        ensure_fifo(&path).unwrap();
        assert!(std::fs::metadata(&path).unwrap().file_type().is_fifo());
        ensure_fifo(&path).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let e = format!("{:#}", ensure_fifo(&plain).unwrap_err());
        assert!(e.contains("not a named pipe"), "{e}");
        let e = format!(
            "{:#}",
            ensure_fifo(&dir.path().join("no/dir/f")).unwrap_err()
        );
        assert!(e.contains("cannot create the named pipe"), "{e}");
    }
}
