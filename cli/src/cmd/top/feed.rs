//! The dashboard's data, fetched on a thread of its own so a slow collector never
//! stalls the screen: new events ten times a second, workers and sessions once a
//! second. Events are read incrementally — from the collector by time window with
//! ids remembered, from the files by byte offset — never everything again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Deserialize;
use swarm_obs::{Event, EventId, EventLog, EventReader, StateRoot, Timestamp};

use crate::sessions::{Session, SessionBook, SessionsAnswer};
use crate::source::{CollectorHttp, Source};
use crate::workers::WorkersView;

/// Time between polls for new events.
const EVENT_POLL: Duration = Duration::from_millis(100);
/// Time between refreshes of workers and sessions.
const SLOW_POLL: Duration = Duration::from_secs(1);
/// Events asked for when the dashboard opens.
pub const BACKFILL: usize = 500;
/// How far back each poll of the collector looks, so events stored a little out of
/// time order (a hook's slow post, a catch-up from the files) are still seen.
const WINDOW_MS: i64 = 1_500;
/// Events one request to the collector returns at most.
const PAGE: usize = 1000;
/// Requests one poll makes at most when every page is new (a burst).
const MAX_PAGES: usize = 5;

/// What the feed thread sends.
#[derive(Debug)]
pub enum Update {
    /// New events, oldest first.
    Events(Vec<Event>),
    /// Reading events failed.
    EventsFailed(String),
    /// The workers now.
    Workers(Result<WorkersView, String>),
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
    /// Starts reading `source`.
    pub fn start(source: Source) -> Result<Self> {
        let (tx, updates) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("swarm-obs-top-feed".into())
            .spawn(move || run(source, &tx, &thread_stop))
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
        // The thread checks the flag between requests, each bounded by a timeout;
        // do not make quitting wait for a hung collector.
        if let Some(t) = self.thread.take()
            && t.is_finished()
        {
            let _ = t.join();
        }
    }
}

fn run(source: Source, tx: &Sender<Update>, stop: &AtomicBool) {
    let mut events = EventSource::new(&source);
    let mut last_sessions: Option<Vec<Session>> = None;
    let mut next_slow = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let update = match events.poll() {
            Ok(batch) if batch.is_empty() => None,
            Ok(batch) => Some(Update::Events(batch)),
            Err(e) => Some(Update::EventsFailed(format!("{e:#}"))),
        };
        if let Some(u) = update
            && tx.send(u).is_err()
        {
            return;
        }
        if started >= next_slow {
            next_slow = started + SLOW_POLL;
            let workers = WorkersView::load(&source).map_err(|e| format!("{e:#}"));
            if tx.send(Update::Workers(workers)).is_err() {
                return;
            }
            let sessions = events.sessions();
            let changed = match (&sessions, &last_sessions) {
                (Ok(now), Some(before)) => now != before,
                _ => true,
            };
            if changed {
                last_sessions = sessions.as_ref().ok().cloned();
                let update = Update::Sessions(sessions.map_err(|e| format!("{e:#}")));
                if tx.send(update).is_err() {
                    return;
                }
            }
        }
        if let Some(rest) = EVENT_POLL.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// Reads new events from the collector or the files.
enum EventSource {
    Collector(CollectorEvents),
    Files(FileEvents),
}

impl EventSource {
    fn new(source: &Source) -> Self {
        match source {
            Source::Collector(http) => Self::Collector(CollectorEvents {
                http: http.clone(),
                newest: None,
                seen: HashMap::new(),
            }),
            Source::Files(root) => Self::Files(FileEvents {
                root: root.clone(),
                offsets: HashMap::new(),
                book: SessionBook::default(),
                started: false,
            }),
        }
    }

    fn poll(&mut self) -> Result<Vec<Event>> {
        match self {
            Self::Collector(c) => c.poll(),
            Self::Files(f) => f.poll(),
        }
    }

    fn sessions(&mut self) -> Result<Vec<Session>> {
        match self {
            Self::Collector(c) => {
                let answer: SessionsAnswer = c.http.get_json("/v1/sessions?limit=50")?;
                Ok(answer.sessions)
            }
            Self::Files(f) => Ok(f.book.list()),
        }
    }
}

#[derive(Deserialize)]
struct EventsAnswer {
    events: Vec<Event>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// New events from `GET /v1/events`: a window back from the newest event seen,
/// minus the ids already seen in that window.
struct CollectorEvents {
    http: CollectorHttp,
    newest: Option<Timestamp>,
    seen: HashMap<EventId, Timestamp>,
}

impl CollectorEvents {
    fn poll(&mut self) -> Result<Vec<Event>> {
        let (base, pages) = match self.newest {
            None => (format!("/v1/events?limit={BACKFILL}"), 1),
            Some(t) => (
                format!(
                    "/v1/events?limit={PAGE}&since={}",
                    Timestamp::from_unix_ms(t.unix_ms() - WINDOW_MS)
                ),
                MAX_PAGES,
            ),
        };
        let mut events = Vec::new();
        let mut path = base.clone();
        for _ in 0..pages {
            let answer: EventsAnswer = self.http.get_json(&path)?;
            let all_new = answer.events.iter().all(|e| !self.seen.contains_key(&e.id));
            events.extend(answer.events);
            // A full page of unseen events: a burst; page back for the rest of it.
            match answer.next_cursor {
                Some(c) if all_new && c.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    path = format!("{base}&cursor={c}");
                }
                _ => break,
            }
        }
        // The collector answers newest first.
        let mut fresh: Vec<Event> = events
            .into_iter()
            .rev()
            .filter(|e| self.seen.insert(e.id, e.ts).is_none())
            .collect();
        fresh.sort_by_key(|e| e.ts);
        if let Some(last) = fresh.last() {
            self.newest = Some(self.newest.map_or(last.ts, |n| n.max(last.ts)));
        }
        if let Some(n) = self.newest {
            let horizon = n.unix_ms() - WINDOW_MS;
            self.seen.retain(|_, ts| ts.unix_ms() >= horizon);
        }
        if self.newest.is_none() {
            // An empty collector: look from now on.
            self.newest = Some(Timestamp::now());
        }
        Ok(fresh)
    }
}

/// New events from `events/*.jsonl`, each file read on from where the last poll
/// stopped; sessions are counted from every event read.
struct FileEvents {
    root: StateRoot,
    offsets: HashMap<PathBuf, u64>,
    book: SessionBook,
    started: bool,
}

impl FileEvents {
    fn poll(&mut self) -> Result<Vec<Event>> {
        let files = EventLog::files(&self.root).with_context(|| {
            format!(
                "cannot list the event files in {}",
                self.root.events_dir().display()
            )
        })?;
        let mut fresh = Vec::new();
        for path in files {
            let offset = self.offsets.get(&path).copied().unwrap_or(0);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len == offset {
                continue;
            }
            // A file that shrank was replaced: read it again from the start.
            let offset = if len < offset { 0 } else { offset };
            let mut reader = EventReader::open(&path, offset)
                .with_context(|| format!("cannot read {}", path.display()))?;
            for ev in reader.by_ref() {
                self.book.add(&ev);
                fresh.push(ev);
                if !self.started && fresh.len() > BACKFILL * 4 {
                    // Opening on a long history: keep only its end.
                    fresh.drain(..fresh.len() - BACKFILL);
                }
            }
            self.offsets.insert(path, reader.offset());
        }
        if !self.started {
            self.started = true;
            fresh.sort_by_key(|e| e.ts);
            let skip = fresh.len().saturating_sub(BACKFILL);
            fresh.drain(..skip);
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::Kind;

    #[test]
    fn files_are_read_incrementally() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let log = EventLog::new(root.clone());
        let mut src = EventSource::new(&Source::Files(root.clone()));
        assert!(src.poll().unwrap().is_empty());
        let mut first = Event::new("w", Kind::Start, "one");
        first.session = Some("s".into());
        log.append(&first).unwrap();
        log.append(&Event::new("w", Kind::Log, "two")).unwrap();
        let got = src.poll().unwrap();
        assert_eq!(got.len(), 2);
        assert!(src.poll().unwrap().is_empty(), "nothing is read twice");
        // A torn last line waits for its newline.
        let file = EventLog::files(&root).unwrap().pop().unwrap();
        let line = Event::new("w", Kind::Log, "three").to_json_line();
        let (a, b) = line.split_at(20);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(a.as_bytes()).unwrap();
        assert!(src.poll().unwrap().is_empty());
        f.write_all(b.as_bytes()).unwrap();
        assert_eq!(src.poll().unwrap()[0].msg, "three");
        assert_eq!(src.sessions().unwrap()[0].events, 1);
    }
}
