//! `swarm-obs top`: a live terminal dashboard of workers, Claude Code sessions and
//! events, like `pm2 monit`.
//!
//! Data comes from a [`feed`] thread; the screen is redrawn when something changed
//! or once a second (for ages), and ratatui writes only the cells that differ, so
//! it neither flickers nor burns CPU while idle.

mod app;
mod feed;
mod session_view;
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
select an event · Enter its full detail · End follow the newest · Tab the sessions
pane: ↑↓ pick a session, Enter shows its agents and its conversation (read from its
transcript by the collector; a next agent, o older turns, r reload, Esc back) ·
Ctrl-C quit.

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

/// Routes SIGTERM, SIGHUP, SIGINT and SIGQUIT to [`TERMINATED`]
/// through the CLI's one signal mechanism. Call it before any thread starts.
fn catch_termination() -> Result<()> {
    crate::signals::block()
        .context("cannot block signals to stop cleanly")?
        .spawn_waiter(|r| {
            if crate::signals::STOPS.contains(&r.signal) {
                TERMINATED.store(true, Ordering::SeqCst);
            }
        })
        .context("cannot start the signal thread")
}

/// Waits up to `wait` for input on the terminal (stdin); true when the terminal is
/// gone (hung up: a closed window, a dropped SSH connection, a killed tmux pane).
///
/// The wait is ours, not crossterm's: on a terminal that is gone, crossterm's
/// reader retries reads that return nothing forever, its poll never times out,
/// and the loop could never see a signal.
#[cfg(unix)]
fn terminal_gone(wait: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, for the length given.
    let ready = unsafe { libc::poll(&mut fd, 1, ms) };
    // A stop signal is seen by the loop's check of TERMINATED within the wait.
    ready > 0 && fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

#[cfg(not(unix))]
fn terminal_gone(wait: Duration) -> bool {
    let _ = event::poll(wait);
    false
}

/// Ends the process if the loop has not ended within a moment of a SIGTERM, SIGHUP
/// or SIGINT: the last guard against a reader stuck on a terminal that went away
/// between [`terminal_gone`] and the read.
fn exit_if_stuck_after_termination() {
    let _ = std::thread::Builder::new()
        .name("top-watchdog".into())
        .spawn(|| {
            while !TERMINATED.load(Ordering::SeqCst) {
                std::thread::sleep(INPUT_WAIT);
            }
            std::thread::sleep(Duration::from_secs(2));
            ratatui::restore();
            std::process::exit(0);
        });
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
    // Before the feed's threads start, so none of them takes a stop signal.
    catch_termination()?;
    let opened = Source::open(&args.source)?;
    let feed = feed::Feed::start(opened.source.clone(), opened.root.clone(), args.keep)?;
    let conversations = session_view::Fetcher::new(&opened.source);
    exit_if_stuck_after_termination();
    let mut app = app::App::new(
        opened.source.describe(),
        opened.note,
        args.keep,
        args.filter,
    );
    app.reads_collector = matches!(opened.source, Source::Collector(_));
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
        if terminal_gone(INPUT_WAIT) {
            break;
        }
        while event::poll(Duration::ZERO).context("cannot read the keyboard")? {
            match event::read().context("cannot read the keyboard")? {
                TermEvent::Key(key) => app.on_key(key),
                TermEvent::Resize(..) => app.dirty = true,
                _ => {}
            }
        }
        while let Some(update) = feed.try_next()? {
            app.apply(update);
        }
        if let Some(req) = app.conversation_request.take() {
            conversations.ask(req);
        }
        while let Some(reply) = conversations.try_next() {
            app.apply_conversation(reply);
        }
    }
    Ok(ExitCode::SUCCESS)
}
