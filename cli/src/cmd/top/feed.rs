//! The dashboard's data, fetched on a thread of its own so a slow collector never
//! stalls the screen: events as they come, through the same feed `tail -f` uses
//! (the collector's live stream, or the event files read on from where they
//! stopped), and workers and sessions once a second.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use swarm_obs::{Event, EventId, StateRoot};

use crate::probes::{self, ProbeRow};
use crate::sessions::{Session, SessionBook, SessionsAnswer};
use crate::source::Source;
use crate::tail::remote::Endpoint;
use crate::tail::select::Selection;
use crate::tail::{self, Feed as EventFeed};
use crate::workers::WorkersView;

/// Time between refreshes of workers and sessions.
const SLOW_POLL: Duration = Duration::from_secs(1);

/// What the feed thread sends.
#[derive(Debug)]
pub enum Update {
    /// New events, oldest first.
    Events(Vec<Event>),
    /// Something the user should know about the events' source (the collector
    /// went away, or came back), or why reading them failed.
    EventsFailed(String),
    /// The workers now.
    Workers(Result<WorkersView, String>),
    /// The collector's health probes now (none from the files).
    Probes(Result<Vec<ProbeRow>, String>),
    /// The sessions, when they changed.
    Sessions(Result<Vec<Session>, String>),
}

/// The running feed; stops its thread when dropped.
pub struct Feed {
    updates: Receiver<Update>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Feed {
    /// Starts reading `source` (and the files under `root` while a collector is
    /// away), beginning with the newest `backfill` events.
    pub fn start(source: Source, root: StateRoot, backfill: usize) -> Result<Self> {
        let (tx, updates) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("swarm-obs-top-feed".into())
            .spawn(move || run(&source, &root, backfill, &tx, &thread_stop))
            .context("cannot start the dashboard's reader thread")?;
        Ok(Self {
            updates,
            stop,
            thread: Some(thread),
        })
    }

    /// The next update, if one is waiting; an error once the thread has ended
    /// (it only ends when told to, so this is a panic inside it).
    pub fn try_next(&self) -> Result<Option<Update>> {
        match self.updates.try_recv() {
            Ok(u) => Ok(Some(u)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => {
                anyhow::bail!("the dashboard's reader thread stopped unexpectedly")
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The thread checks the flag between reads, each bounded by a timeout; do
        // not make quitting wait for a hung collector.
        if let Some(t) = self.thread.take()
            && t.is_finished()
        {
            let _ = t.join();
        }
    }
}

/// Event ids remembered to drop repeats (the stream resumed after the files were
/// followed sends again what they showed).
const SEEN_IDS: usize = 100_000;

/// Events not yet shown, and the sessions counted from them when no collector
/// counts them.
struct Fresh {
    seen: HashSet<EventId>,
    order: VecDeque<EventId>,
    book: SessionBook,
}

impl Fresh {
    fn keep(&mut self, events: Vec<Event>) -> Vec<Event> {
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            if !self.seen.insert(ev.id) {
                continue;
            }
            self.order.push_back(ev.id);
            if self.order.len() > SEEN_IDS
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
            self.book.add(&ev);
            out.push(ev);
        }
        out
    }
}

fn run(source: &Source, root: &StateRoot, backfill: usize, tx: &Sender<Update>, stop: &AtomicBool) {
    let endpoint = match source {
        Source::Collector(http) => Some(Endpoint::Fixed(http.address().clone())),
        Source::Files(_) => None,
    };
    let mut fresh = Fresh {
        seen: HashSet::new(),
        order: VecDeque::new(),
        book: SessionBook::default(),
    };
    let opened = EventFeed::open(root, endpoint, &Selection::default(), Some(backfill), true);
    let mut feed = match opened {
        Ok((feed, mut history, notice)) => {
            tail::sort_events(&mut history);
            let history = fresh.keep(history);
            if let Some(n) = notice
                && tx.send(Update::EventsFailed(n)).is_err()
            {
                return;
            }
            if tx.send(Update::Events(history)).is_err() {
                return;
            }
            Some(feed)
        }
        Err(e) => {
            let _ = tx.send(Update::EventsFailed(format!("{e:#}")));
            None
        }
    };
    let mut last_sessions: Option<Vec<Session>> = None;
    let mut next_slow = Instant::now();
    let mut notices = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        // Waits up to one tick for events, so this loop needs no sleep of its own.
        let update = match feed.as_mut().map(|f| f.next_batch(&mut notices)) {
            Some(Ok(batch)) => {
                let batch = fresh.keep(batch);
                (!batch.is_empty()).then_some(Update::Events(batch))
            }
            Some(Err(e)) => Some(Update::EventsFailed(format!("{e:#}"))),
            None => {
                std::thread::sleep(SLOW_POLL);
                None
            }
        };
        for n in notices.drain(..) {
            if tx.send(Update::EventsFailed(n)).is_err() {
                return;
            }
        }
        if let Some(u) = update
            && tx.send(u).is_err()
        {
            return;
        }
        if Instant::now() >= next_slow {
            next_slow = Instant::now() + SLOW_POLL;
            let workers = WorkersView::load(source).map_err(|e| format!("{e:#}"));
            if tx.send(Update::Workers(workers)).is_err() {
                return;
            }
            let probes = probes::load(source).map_err(|e| format!("{e:#}"));
            if tx.send(Update::Probes(probes)).is_err() {
                return;
            }
            let sessions = match source {
                Source::Collector(http) => http
                    .get_json::<SessionsAnswer>("/v1/sessions?limit=50")
                    .map(|a| a.sessions)
                    .map_err(|e| format!("{e:#}")),
                Source::Files(_) => Ok(fresh.book.list()),
            };
            let changed = match (&sessions, &last_sessions) {
                (Ok(now), Some(before)) => now != before,
                _ => true,
            };
            if changed {
                last_sessions = sessions.as_ref().ok().cloned();
                if tx.send(Update::Sessions(sessions)).is_err() {
                    return;
                }
            }
        }
    }
}
