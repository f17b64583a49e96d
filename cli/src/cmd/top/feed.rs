//! The dashboard's data, fetched on a thread of its own so a slow collector never
//! stalls the screen: events as they come, through the same feed `tail -f` uses
//! (the collector's live stream, or the event files read on from where they
//! stopped); sessions' states pushed on that stream (counted from the events
//! when reading files); workers and probes once a second.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use swarm_obs::{Event, EventId, StateRoot};

use crate::probes::{self, ProbeRow};
use crate::sessions::{Session, SessionBook};
use crate::source::Source;
use crate::tail::remote::{Endpoint, SessionNews};
use crate::tail::select::Selection;
use crate::tail::{self, Feed as EventFeed};
use crate::workers::WorkersView;

/// Sessions shown, the most recently active.
const SESSIONS_SHOWN: usize = 50;

/// Time between refreshes of workers and probes (and of sessions counted from files).
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
    let sel = Selection {
        states: true,
        ..Selection::default()
    };
    let opened = EventFeed::open(root, endpoint, &sel, Some(backfill), true);
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
    // The collector's sessions, kept current by what its stream pushes.
    let mut pushed: Vec<Session> = Vec::new();
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
        let news = feed.as_mut().map(EventFeed::take_session_news);
        if let Some(news) = news.filter(|n| !n.is_empty()) {
            for n in news {
                apply(&mut pushed, n);
            }
            if last_sessions.as_ref() != Some(&pushed) {
                last_sessions = Some(pushed.clone());
                if tx.send(Update::Sessions(Ok(pushed.clone()))).is_err() {
                    return;
                }
            }
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
            // Sessions from the collector arrive pushed; only files are counted here.
            if matches!(feed, Some(EventFeed::Collector(_))) {
                continue;
            }
            let sessions = fresh.book.list();
            if last_sessions.as_ref() != Some(&sessions) {
                last_sessions = Some(sessions.clone());
                if tx.send(Update::Sessions(Ok(sessions))).is_err() {
                    return;
                }
            }
        }
    }
}

/// Applies one piece of pushed news to the sessions shown. A pushed state older
/// than the one held (it was in flight while the list was read) is dropped.
fn apply(list: &mut Vec<Session>, news: SessionNews) {
    match news {
        SessionNews::All(all) => *list = all,
        SessionNews::One(s) => {
            match list.iter_mut().find(|x| x.session == s.session) {
                Some(held) if (s.last_seen, s.events) >= (held.last_seen, held.events) => {
                    *held = *s
                }
                Some(_) => return,
                None => list.push(*s),
            }
            list.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
            list.truncate(SESSIONS_SHOWN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::{Event, Kind, Timestamp};
    use swarm_obs_collector::SessionBook as Book;

    fn session(id: &str, at_ms: i64, hook: &str) -> Session {
        let mut book = Book::default();
        let mut ev = Event::new("proj", Kind::Hook, hook);
        ev.ts = Timestamp::from_unix_ms(at_ms);
        ev.session = Some(id.into());
        ev.hook = Some(hook.into());
        book.add(&ev);
        book.list(Timestamp::from_unix_ms(at_ms), 1).remove(0)
    }

    #[test]
    fn pushed_states_update_the_list_and_stale_ones_are_dropped() {
        let mut list = Vec::new();
        apply(
            &mut list,
            SessionNews::All(vec![session("a", 1_000, "UserPromptSubmit")]),
        );
        apply(
            &mut list,
            SessionNews::One(Box::new(session("b", 2_000, "UserPromptSubmit"))),
        );
        assert_eq!(
            list.iter().map(|s| s.session.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );

        // `a` ended: its newer state replaces the held one and moves it up.
        apply(
            &mut list,
            SessionNews::One(Box::new(session("a", 3_000, "SessionEnd"))),
        );
        assert_eq!(list[0].session, "a");
        assert_eq!(list[0].state.as_str(), "ended");

        // A state from before the held one (in flight while the list was read) is dropped.
        apply(
            &mut list,
            SessionNews::One(Box::new(session("a", 500, "UserPromptSubmit"))),
        );
        assert_eq!(list[0].state.as_str(), "ended");
        assert_eq!(list.len(), 2);
    }
}
