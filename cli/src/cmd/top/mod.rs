//! `swarm-obs top`: a live terminal dashboard of workers, Claude Code sessions and
//! events, like `pm2 monit`.
//!
//! Data comes from a [`feed`] thread; the screen is redrawn when something changed
//! or once a second (for ages), and ratatui writes only the cells that differ, so
//! it neither flickers nor burns CPU while idle.

mod app;
mod feed;
mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ratatui::crossterm::event::{self, Event as TermEvent};

use crate::source::{Source, SourceArgs};

/// How long to wait for a key before looking at the feed again.
const INPUT_WAIT: Duration = Duration::from_millis(100);
/// Redraw at least this often, so ages move.
const TICK: Duration = Duration::from_secs(1);

/// Arguments of `swarm-obs top`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Keys: q quit · / filter as you type (Enter keeps it, Esc clears it) · ↑↓ PgUp PgDn
select an event · Enter its full detail · End follow the newest · Ctrl-C quit.

Examples:
  swarm-obs top                       # from the running collector, else the files
  swarm-obs top --filter error        # start with the event filter set
  swarm-obs top --collector off       # read heartbeats/ and events/ directly
  swarm-obs top --home /tmp/swarm     # another state root")]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Start with this event filter (words that must all appear, any case).
    #[arg(long, default_value = "")]
    filter: String,
    /// Events kept in the event pane.
    #[arg(long, default_value_t = 5000, value_name = "N")]
    keep: usize,
}

/// Set by SIGTERM, SIGHUP or SIGINT: leave the loop and restore the terminal
/// instead of dying in raw mode on the alternate screen.
static TERMINATED: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_terminate(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    TERMINATED.store(true, Ordering::SeqCst);
}

fn catch_termination() {
    #[cfg(unix)]
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, on_terminate as *const () as libc::sighandler_t);
        }
    }
}

/// Puts the terminal back when dropped, also when unwinding from a panic.
struct RestoreTerminal;

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs `top` until a quit key.
pub fn run(args: Args) -> Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "swarm-obs top draws on a terminal, and this is not one; in scripts use `swarm-obs status --json` or `swarm-obs status --watch`"
        );
    }
    let opened = Source::open(&args.source)?;
    let feed = feed::Feed::start(opened.source.clone(), opened.root.clone(), args.keep)?;
    catch_termination();
    let mut app = app::App::new(
        opened.source.describe(),
        opened.note,
        args.keep,
        args.filter,
    );
    // `try_init` also installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let _restore = RestoreTerminal;
    let mut last_draw: Option<Instant> = None;
    while !app.quit && !TERMINATED.load(Ordering::SeqCst) {
        if app.dirty || last_draw.is_none_or(|t| t.elapsed() >= TICK) {
            terminal
                .draw(|frame| ui::draw(frame, &app))
                .context("cannot draw on the terminal")?;
            app.dirty = false;
            last_draw = Some(Instant::now());
        }
        // Wait for a key, then take every key already typed before drawing again.
        let mut wait = INPUT_WAIT;
        while event::poll(wait).context("cannot read the keyboard")? {
            match event::read().context("cannot read the keyboard")? {
                TermEvent::Key(key) => app.on_key(key),
                TermEvent::Resize(..) => app.dirty = true,
                _ => {}
            }
            wait = Duration::ZERO;
        }
        while let Some(update) = feed.try_next()? {
            app.apply(update);
        }
    }
    Ok(ExitCode::SUCCESS)
}
