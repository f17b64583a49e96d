//! The tail of a swarm: history then live events, from the collector when one runs,
//! else from the event files. `swarm-obs tail` and `swarm-obs demo` both show events
//! through [`Tail`].

pub mod files;
pub mod remote;
pub mod render;
pub mod select;

use std::collections::{HashSet, VecDeque};
use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use swarm_obs::{Config, Event, EventId, StateRoot};

use files::FileFeed;
use remote::{CollectorFeed, Endpoint};
use render::Printer;
use select::Selection;

/// How often the event files are polled, and how long a wait for the stream lasts
/// before the stop condition is checked again.
const TICK: Duration = Duration::from_millis(200);
/// How long news of the connection is held before it is printed (see [`Tail::run`]).
const NOTICE_HOLD: Duration = Duration::from_millis(500);

/// Event ids remembered to drop repeats: a stream resumed after the files were
/// followed in its absence sends again what they showed, and one reopened without a
/// resume point sends its backfill again.
const SEEN_IDS: usize = 100_000;

/// Orders events by time, then id: the merged order of many sources.
pub fn sort_events(events: &mut [Event]) {
    events.sort_by(|a, b| a.ts.cmp(&b.ts).then(a.id.cmp(&b.id)));
}

/// Where live events come from.
pub enum Feed {
    /// The event files of a state root.
    Files(FileFeed),
    /// The collector's stream.
    Collector(CollectorFeed),
    /// Nothing: only the history was asked for.
    HistoryOnly,
}

impl Feed {
    /// Reads the history (`lines` newest selected events, all when `None`) and,
    /// when `follow`, opens the feed of what comes next: from the collector at
    /// `endpoint` when it answers, else from the files of `root`. Returns a notice
    /// for the user when a collector was expected but did not answer.
    pub fn open(
        root: &StateRoot,
        endpoint: Option<Endpoint>,
        sel: &Selection,
        lines: Option<usize>,
        follow: bool,
    ) -> Result<(Self, Vec<Event>, Option<String>)> {
        let mut notice = None;
        if let Some(endpoint) = endpoint
            && let Some(address) = endpoint.address()
        {
            match remote::probe(&address) {
                Ok(()) => {
                    let (history, resume) = remote::history(&address, sel, lines)?;
                    if !follow {
                        return Ok((Feed::HistoryOnly, history, None));
                    }
                    let feed = CollectorFeed::start(endpoint, root.clone(), sel, resume)?;
                    return Ok((Feed::Collector(feed), history, None));
                }
                Err(e) => {
                    notice = Some(format!(
                        "{e:#}; reading the event files in {} instead",
                        root.events_dir().display()
                    ));
                }
            }
        }
        let (feed, history) = FileFeed::open(root.clone(), sel, lines)?;
        Ok((Feed::Files(feed), history, notice))
    }

    /// Which feed this is, for messages: `the collector` or `the event files`.
    pub fn describe(&self) -> &'static str {
        match self {
            Feed::Files(_) => "the event files",
            Feed::Collector(_) => "the collector",
            Feed::HistoryOnly => "nothing",
        }
    }

    /// Sessions' states the collector pushed since the last call (only when the
    /// selection asked for them; none from the files).
    pub fn take_session_news(&mut self) -> Vec<remote::SessionNews> {
        match self {
            Feed::Collector(c) => c.take_session_news(),
            Feed::Files(_) | Feed::HistoryOnly => Vec::new(),
        }
    }

    /// New events, waiting up to one tick for them, oldest first; repeats are
    /// left to the caller to drop.
    pub fn next_batch(&mut self, notices: &mut Vec<String>) -> Result<Vec<Event>> {
        let mut batch = match self {
            Feed::Files(f) => {
                let batch = f.poll()?;
                if batch.is_empty() {
                    std::thread::sleep(TICK);
                }
                batch
            }
            Feed::Collector(c) => c.next_batch(TICK, notices)?,
            Feed::HistoryOnly => {
                std::thread::sleep(TICK);
                Vec::new()
            }
        };
        // Files are read one after another, and a stream delivers in arrival order:
        // merge what arrived together by time.
        sort_events(&mut batch);
        Ok(batch)
    }
}

/// The endpoint `swarm-obs tail` follows: the collector named by the environment,
/// `collector.json` or the configuration.
pub fn discover(root: &StateRoot, config: &Config) -> Endpoint {
    Endpoint::Discover {
        root: root.clone(),
        config: Box::new(config.clone()),
    }
}

/// What a caller watching the tail wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop after this event.
    Stop,
}

/// Why a tail ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The history was shown and no following was asked for.
    Done,
    /// The caller asked to stop.
    Stopped,
    /// The output was closed (`| head`).
    OutputClosed,
}

/// A selection printed through a printer, with repeats dropped.
pub struct Tail<W: Write> {
    sel: Selection,
    printer: Printer<W>,
    seen: HashSet<EventId>,
    order: VecDeque<EventId>,
}

impl<W: Write> Tail<W> {
    /// A tail printing the events `sel` selects.
    pub fn new(sel: Selection, printer: Printer<W>) -> Self {
        Self {
            sel,
            printer,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Prints `events` that are selected and new; `watch` sees each printed event.
    /// Returns why the tail must end, if it must.
    fn show(
        &mut self,
        events: &[Event],
        watch: &mut dyn FnMut(&Event) -> Flow,
    ) -> Result<Option<Ended>> {
        let mut stop = false;
        for ev in events {
            if !self.sel.matches(ev) || !self.seen.insert(ev.id) {
                continue;
            }
            self.order.push_back(ev.id);
            if self.order.len() > SEEN_IDS
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
            if let Some(end) = closed(self.printer.print(ev))? {
                return Ok(Some(end));
            }
            if watch(ev) == Flow::Stop {
                stop = true;
                break;
            }
        }
        if let Some(end) = closed(self.printer.flush())? {
            return Ok(Some(end));
        }
        Ok(stop.then_some(Ended::Stopped))
    }

    /// Prints the history, then, when `follow`, live events until `watch` or
    /// `should_stop` says stop or the output closes. Connection notices go to stderr.
    pub fn run(
        &mut self,
        feed: &mut Feed,
        history: &[Event],
        follow: bool,
        watch: &mut dyn FnMut(&Event) -> Flow,
        should_stop: &dyn Fn() -> bool,
    ) -> Result<Ended> {
        if let Some(end) = self.show(history, watch)? {
            return Ok(end);
        }
        if !follow {
            return Ok(Ended::Done);
        }
        let mut notices = Vec::new();
        let mut held: Vec<(Instant, String)> = Vec::new();
        loop {
            if should_stop() {
                return Ok(Ended::Stopped);
            }
            // News of the connection waits a moment and is dropped if a stop comes
            // meanwhile: a Ctrl-C reaches the collector too, which may end the
            // stream before this process has taken its own signal.
            held.retain(|(at, n)| {
                let due = at.elapsed() >= NOTICE_HOLD;
                if due {
                    eprintln!("swarm-obs tail: {n}");
                }
                !due
            });
            let batch = feed
                .next_batch(&mut notices)
                .with_context(|| format!("cannot follow {}", feed.describe()))?;
            held.extend(notices.drain(..).map(|n| (Instant::now(), n)));
            if let Some(end) = self.show(&batch, watch)? {
                return Ok(end);
            }
            if batch.is_empty() && stdout_closed() {
                return Ok(Ended::OutputClosed);
            }
        }
    }
}

/// Turns a write result into "the output was closed" or an error.
fn closed(r: io::Result<()>) -> Result<Option<Ended>> {
    match r {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Some(Ended::OutputClosed)),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Whether the reader of stdout has gone away, checked without writing: a follower
/// piped into `head` ends as soon as `head` does, not at the next event.
fn stdout_closed() -> bool {
    #[cfg(unix)]
    {
        let mut fd = libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a zero timeout.
        let n = unsafe { libc::poll(&mut fd, 1, 0) };
        // A pipe whose reader closed reports POLLERR; a hung-up terminal POLLHUP.
        n > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
    }
    #[cfg(not(unix))]
    {
        false
    }
}
