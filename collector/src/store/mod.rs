//! The SQLite store: one writer thread that batches inserts into transactions, and a
//! small pool of read connections (WAL lets readers run beside the writer).
//!
//! Every stored event gets a `seq`, its insertion order. Viewers resume and page by
//! `seq`, not by event id, because catch-up from the event log may insert an event
//! whose id is older than events already stored: ordering by insertion is what makes
//! "no gap, no duplicate" hold.

mod activity;
mod agent_state;
pub(crate) mod book;
mod events;
mod probes;
mod retention;
#[cfg(test)]
mod scratch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, params};
use serde::Serialize;
use swarm_obs::Event;
use tokio::sync::{mpsc, oneshot};

use crate::hub::{Hub, Live, SessionNews, Stored};
use book::Book;

pub use activity::{ACTIVITY_BUCKET_MS, activity};
pub(crate) use agent_state::ALERT_STATE_FIELD;
pub use book::{API_REQUEST, counts_as_error, sources};
pub(crate) use book::{SessionAgg, session_row, session_rows, watched_sessions};
pub use events::{Page, PageCursor, cursor, last_seq_of_page, max_seq, page, rows_after, seq_of};
pub use probes::{ProbeRecord, probe_rollup, probe_transitions};

/// Operations queued to the writer thread at most; senders wait beyond that.
const WRITE_QUEUE: usize = 1024;
/// Operations the writer folds into one transaction at most.
const MAX_BATCH_OPS: usize = 512;
/// Rows a regex-filtered scan looks at by default before it stops and says so.
pub const SCAN_CAP: usize = 200_000;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("store {path}: {reason}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said (in the message, so not also a `source`).
        reason: rusqlite::Error,
    },
    /// The writer thread has stopped (the collector is shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// A write was refused (disk full, say); the message says why.
    #[error("storing events failed: {0}")]
    Write(String),
}

/// How many events of one insert were new and how many were already stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Inserted {
    /// Events stored now.
    pub accepted: usize,
    /// Events whose id was already stored.
    pub duplicates: usize,
}

/// Retention limits applied in the background.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Events older than this many milliseconds are deleted.
    pub max_age_ms: i64,
    /// The oldest events are deleted while the database is larger than this.
    pub max_bytes: u64,
}

enum WriteOp {
    Insert {
        events: Vec<Event>,
        offset: Option<(String, u64)>,
        reply: Option<oneshot::Sender<Result<Inserted, String>>>,
    },
    Retain(Retention),
    Probe(ProbeRecord),
    Cursor {
        name: String,
        seq: i64,
        reply: oneshot::Sender<()>,
    },
    /// Time to push the sessions whose counts changed, even with nothing to write.
    PushSessions,
    /// A tests' way to make the writer's connection fail as a full disk does.
    #[cfg(test)]
    Pragma(String),
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Its metrics, to tell whether the last commit failed.
    hub: Hub,
    tx: Mutex<Option<mpsc::Sender<WriteOp>>>,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ts INTEGER NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    lvl INTEGER NOT NULL,
    session TEXT,
    agent TEXT,
    agent_type TEXT,
    hook TEXT,
    tool TEXT,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE INDEX IF NOT EXISTS events_source ON events(source, ts);
CREATE INDEX IF NOT EXISTS events_session ON events(session, ts);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, ts);
CREATE TABLE IF NOT EXISTS log_offsets (
    file TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS probe_transitions (
    probe TEXT NOT NULL,
    ts INTEGER NOT NULL,
    prev TEXT,
    state TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS probe_transitions_probe ON probe_transitions(probe, ts);
CREATE TABLE IF NOT EXISTS probe_rollup (
    probe TEXT NOT NULL,
    hour INTEGER NOT NULL,
    checks INTEGER NOT NULL,
    healthy INTEGER NOT NULL,
    PRIMARY KEY (probe, hour)
);
CREATE TABLE IF NOT EXISTS export_cursors (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agg_sources (
    source TEXT PRIMARY KEY,
    events INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS agg_sources_last ON agg_sources(last_ts);
CREATE TABLE IF NOT EXISTS agg_sessions (
    session TEXT PRIMARY KEY,
    last_ts INTEGER NOT NULL,
    watch INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agg_sessions_last ON agg_sessions(last_ts);
CREATE INDEX IF NOT EXISTS agg_sessions_watch ON agg_sessions(watch) WHERE watch = 1;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// Version of the aggregate tables' contents; a store with another (or none) has
/// them rebuilt from its events once, at start.
const AGGREGATES_VERSION: i64 = 1;

pub(crate) use crate::filter::level_rank;

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Incremental auto-vacuum only takes effect on a new database; it lets the size
    // cap give space back to the file system.
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         PRAGMA mmap_size = 1073741824;",
    )?;
    Ok(conn)
}

impl Store {
    /// Opens (creating) the database at `path` and starts the writer thread, which
    /// publishes every newly stored event to `hub` after its transaction commits.
    pub fn open(path: &Path, hub: Hub) -> Result<Self, StoreError> {
        let err = |reason| StoreError::Sqlite {
            path: path.to_owned(),
            reason,
        };
        // Private like the event log: payloads may hold secrets. SQLite gives its
        // -wal and -shm files the mode of the database, so create that 0600 first.
        let mut create = std::fs::OpenOptions::new();
        create.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut create, 0o600);
        create
            .open(path)
            .map_err(|e| StoreError::Write(format!("cannot create {}: {e}", path.display())))?;
        let mut conn = open(path).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        // The writer walks every index on each insert: a cache that holds their
        // upper levels keeps ingest flat as the store grows (pages are only taken
        // as used, so a small store stays small). The WAL is copied back by the
        // maintenance thread every second (`checkpoint`), not by the writer at each
        // 1,000 pages: a batch's commit does not wait on copying the last one.
        conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384;")
            .map_err(err)?;
        let book = load_book(&mut conn).map_err(err)?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn({
                let hub = hub.clone();
                move || writer_loop(conn, rx, hub, book)
            })
            .map_err(|e| StoreError::Write(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                hub,
                path: path.to_owned(),
                tx: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    fn sender(&self) -> Result<mpsc::Sender<WriteOp>, StoreError> {
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::Closed)
    }

    /// Stores events (ignoring ids already stored) and waits until they are committed.
    pub async fn insert(&self, events: Vec<Event>) -> Result<Inserted, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.sender()?
            .send(WriteOp::Insert {
                events,
                offset: None,
                reply: Some(reply),
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Write)
    }

    /// Queues events for the store and returns without waiting for the commit, for
    /// events that are already in the event log: if the collector dies before the
    /// commit, catch-up from the log stores them, and ids keep that exactly-once.
    pub async fn insert_queued(&self, events: Vec<Event>) -> Result<usize, StoreError> {
        // A store that cannot write would drop what it queues: say so instead.
        if let Some(why) = self.metrics().store_failing() {
            return Err(StoreError::Write(format!("the store cannot write ({why})")));
        }
        let n = events.len();
        self.sender()?
            .send(WriteOp::Insert {
                events,
                offset: None,
                reply: None,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(n)
    }

    /// From a plain thread: stores events and waits until they are committed. With
    /// `offset` (an event file's name and the byte offset the events were read up
    /// to), the offset is committed in the same transaction as the events.
    pub fn insert_blocking(
        &self,
        events: Vec<Event>,
        offset: Option<(String, u64)>,
    ) -> Result<Inserted, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.sender()?
            .blocking_send(WriteOp::Insert {
                events,
                offset,
                reply: Some(reply),
            })
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv()
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Write)
    }

    /// From a plain thread: queues a retention pass.
    pub fn retain(&self, retention: Retention) -> Result<(), StoreError> {
        self.sender()?
            .blocking_send(WriteOp::Retain(retention))
            .map_err(|_| StoreError::Closed)
    }

    /// From a plain thread: queues a probe check (and transition) for the rollup
    /// and the transition history; it is committed with the next batch.
    pub fn record_probe(&self, record: ProbeRecord) -> Result<(), StoreError> {
        self.sender()?
            .blocking_send(WriteOp::Probe(record))
            .map_err(|_| StoreError::Closed)
    }

    /// The counters this store reports to.
    pub(crate) fn metrics(&self) -> &crate::hub::Metrics {
        &self.inner.hub.metrics
    }

    /// From a plain thread: asks the writer to push the sessions whose counts
    /// changed since it last did; skipped when the writer is busy (it pushes them
    /// with its next batch then).
    pub fn push_sessions(&self) {
        if let Ok(tx) = self.sender() {
            let _ = tx.try_send(WriteOp::PushSessions);
        }
    }

    /// From a plain thread: persists an exporter's cursor (the highest `seq` its
    /// receiver accepted) and waits until it is committed.
    pub fn set_cursor_blocking(&self, name: &str, seq: i64) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.sender()?
            .blocking_send(WriteOp::Cursor {
                name: name.to_owned(),
                seq,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        // No reply: the transaction failed (the writer logged why) or the store closed.
        rx.blocking_recv()
            .map_err(|_| StoreError::Write(format!("the export cursor {name} was not saved")))
    }

    /// Stops the writer after it has committed everything queued.
    pub fn close(&self) {
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Copies the write-ahead log into the database without blocking the writer
    /// (blocking: call from a plain thread). Run often, it leaves the writer's own
    /// automatic checkpoints little to copy, which keeps ingest latency flat.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.read(|c| c.execute_batch("PRAGMA wal_checkpoint(PASSIVE);"))
    }

    /// Bytes the database occupies on disk, its write-ahead log included.
    pub fn size_bytes(&self) -> u64 {
        let mut wal = self.inner.path.clone().into_os_string();
        wal.push("-wal");
        [self.inner.path.clone(), PathBuf::from(wal)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Runs `f` on a read connection (blocking: call from a blocking thread).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let err = |reason| StoreError::Sqlite {
            path: self.inner.path.clone(),
            reason,
        };
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open(&self.inner.path).map_err(err)?,
        };
        let result = f(&conn).map_err(err);
        let mut pool = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        result
    }

    /// The persisted read offsets of the event files, by file name.
    pub fn log_offsets(&self) -> Result<HashMap<String, u64>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare("SELECT file, offset FROM log_offsets")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.map(|r| r.map(|(f, o)| (f, o.max(0) as u64))).collect()
        })
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteOp>, hub: Hub, mut book: Book) {
    // Retention asked for and not finished: one bounded step runs between batches.
    let mut retention: Option<Retention> = None;
    let mut last_counts = Instant::now();
    loop {
        let first = if let Some(r) = retention {
            match rx.try_recv() {
                Ok(op) => Some(op),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
            .or_else(|| {
                retention = retention_step(&mut conn, r, &mut book, &hub);
                None
            })
        } else {
            match rx.blocking_recv() {
                Some(op) => Some(op),
                None => break,
            }
        };
        let Some(first) = first else { continue };
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let mut done = Done::default();
        match write_batch(&mut conn, ops, &mut book, &mut done) {
            Ok(()) => {
                // A cursor reply only after the commit: the caller relies on it being durable.
                for r in done.cursor_replies {
                    let _ = r.send(());
                }
                hub.metrics.add_ingested(done.published.len() as u64);
                hub.metrics.store_recovered();
                for stored in done.published {
                    hub.publish(Live::Event(Arc::new(stored)));
                }
                publish_moved(&mut book, &hub);
                if done.tick || last_counts.elapsed() >= COUNTS_EVERY {
                    last_counts = Instant::now();
                    publish_touched(&mut book, &hub);
                }
                for (reply, inserted) in done.replies {
                    hub.metrics.add_duplicates(inserted.duplicates as u64);
                    if let Some(r) = reply {
                        let _ = r.send(Ok(inserted));
                    }
                }
            }
            Err(e) => {
                eprintln!("swarm-obs serve: storing events failed: {e}");
                hub.metrics.add_store_failure(&e.to_string());
                // The transaction rolled back: so must the aggregates it counted.
                if let Err(e) = book.reload(&conn) {
                    eprintln!("swarm-obs serve: reloading the aggregates failed: {e}");
                }
                book.forget_news();
                for (reply, _) in done.replies {
                    if let Some(r) = reply {
                        let _ = r.send(Err(e.to_string()));
                    }
                }
            }
        }
        if let Some(r) = done.retention {
            retention = Some(r);
        }
    }
    // Finish nothing more on shutdown: retention resumes at the next start.
}

/// One retention step in its own transaction; `Some` while more is left.
fn retention_step(
    conn: &mut Connection,
    r: Retention,
    book: &mut Book,
    hub: &Hub,
) -> Option<Retention> {
    let step = (|| -> rusqlite::Result<retention::Step> {
        let tx = conn.transaction()?;
        let step = retention::step(&tx, r, book)?;
        tx.commit()?;
        Ok(step)
    })();
    match step {
        Ok(retention::Step::More) => {
            publish_moved(book, hub);
            Some(r)
        }
        Ok(retention::Step::Done) => None,
        Err(e) => {
            eprintln!("swarm-obs serve: retention failed: {e}");
            let _ = book.reload(conn);
            None
        }
    }
}

/// A session whose counts alone changed is pushed at most this often; a state
/// move is pushed at once.
const COUNTS_EVERY: Duration = Duration::from_secs(1);

/// Pushes the sessions whose state moved to live viewers.
fn publish_moved(book: &mut Book, hub: &Hub) {
    let moved = book.take_moved();
    publish_sessions(book, hub, moved);
}

/// Pushes the sessions whose counts changed since they were last pushed.
fn publish_touched(book: &mut Book, hub: &Hub) {
    let touched = book.take_touched();
    publish_sessions(book, hub, touched);
}

fn publish_sessions(book: &Book, hub: &Hub, sessions: Vec<String>) {
    if sessions.is_empty() {
        return;
    }
    let now = swarm_obs::Timestamp::now();
    for session in sessions {
        if let Some(agg) = book.sessions.get(&session) {
            // Just written to, so not stale: the session watch pushes staleness.
            let summary = agg.summary(&session, now, swarm_obs::hostname(), i64::MAX);
            hub.publish(Live::Session(Arc::new(SessionNews::new(summary))));
        }
    }
}

type Reply = Option<oneshot::Sender<Result<Inserted, String>>>;

/// What a committed batch hands out.
#[derive(Default)]
struct Done {
    published: Vec<Stored>,
    replies: Vec<(Reply, Inserted)>,
    cursor_replies: Vec<oneshot::Sender<()>>,
    retention: Option<Retention>,
    /// Push the sessions whose counts changed now.
    tick: bool,
}

fn write_batch(
    conn: &mut Connection,
    ops: Vec<WriteOp>,
    book: &mut Book,
    done: &mut Done,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut ops = ops.into_iter();
    while let Some(op) = ops.next() {
        if let Err(e) = apply(&tx, op, book, done) {
            hold_replies(ops, done);
            return Err(e);
        }
    }
    book.flush(&tx)?;
    tx.commit()
}

/// Applies one op inside the batch's transaction.
fn apply(
    tx: &Transaction<'_>,
    op: WriteOp,
    book: &mut Book,
    done: &mut Done,
) -> rusqlite::Result<()> {
    match op {
        WriteOp::Insert {
            events,
            offset,
            reply,
        } => {
            // Held before any statement runs: if the batch fails, every caller is
            // told why (after the failure is on record), none just sees its
            // answer vanish.
            done.replies.push((reply, Inserted::default()));
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events
                 (id, ts, source, kind, lvl, session, agent, agent_type, hook, tool, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut inserted = Inserted::default();
            for event in events {
                let json = serde_json::to_string(&event).unwrap_or_default();
                let n = insert.execute(params![
                    event.id.to_string(),
                    event.ts.unix_ms(),
                    event.source,
                    event.kind.as_str(),
                    level_rank(event.level),
                    event.session,
                    event.agent,
                    event.agent_type,
                    event.hook,
                    event.tool,
                    json,
                ])?;
                if n == 1 {
                    inserted.accepted += 1;
                    book.add(&event);
                    done.published
                        .push(Stored::new(tx.last_insert_rowid(), event, json));
                } else {
                    inserted.duplicates += 1;
                }
            }
            if let Some((file, off)) = offset {
                tx.prepare_cached(
                    "INSERT INTO log_offsets (file, offset) VALUES (?1, ?2)
                     ON CONFLICT(file) DO UPDATE SET offset = excluded.offset",
                )?
                .execute(params![file, off as i64])?;
            }
            if let Some(last) = done.replies.last_mut() {
                last.1 = inserted;
            }
        }
        WriteOp::Retain(r) => done.retention = Some(r),
        WriteOp::PushSessions => done.tick = true,
        #[cfg(test)]
        WriteOp::Pragma(p) => tx.execute_batch(&p)?,
        WriteOp::Probe(p) => probes::record_probe(tx, &p)?,
        WriteOp::Cursor { name, seq, reply } => {
            tx.execute(
                "INSERT INTO export_cursors (name, seq) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
                params![name, seq],
            )?;
            done.cursor_replies.push(reply);
        }
    }
    Ok(())
}

/// Keeps the replies of ops a failed batch did not reach, for the failure answer.
fn hold_replies(rest: impl Iterator<Item = WriteOp>, done: &mut Done) {
    for op in rest {
        if let WriteOp::Insert { reply, .. } = op {
            done.replies.push((reply, Inserted::default()));
        }
    }
}

/// Loads the aggregates, rebuilding them from the events when the store has none
/// of this version (a store written by an older build): once, at start.
fn load_book(conn: &mut Connection) -> rusqlite::Result<Book> {
    use rusqlite::OptionalExtension;
    let version: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'aggregates'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if version == Some(AGGREGATES_VERSION)
        && let Ok(book) = Book::load(conn)
    {
        return Ok(book);
    }
    let tx = conn.transaction()?;
    tx.execute_batch("DELETE FROM agg_sources; DELETE FROM agg_sessions;")?;
    let mut book = Book::default();
    {
        let mut st = tx.prepare("SELECT seq, json FROM events ORDER BY seq")?;
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            if let Some(s) = events::stored_from_row(row)? {
                book.add(&s.event);
            }
        }
    }
    book.flush(&tx)?;
    book.forget_news();
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('aggregates', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [AGGREGATES_VERSION],
    )?;
    tx.commit()?;
    Ok(book)
}

/// What the unit tests of the store's modules share: a database in memory written
/// exactly as the writer thread writes it.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An empty store in memory with its aggregates.
    pub fn db() -> (Connection, Book) {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        let book = load_book(&mut c).unwrap();
        (c, book)
    }

    /// A store in memory holding `events`.
    pub fn db_with(events: &[Event]) -> (Connection, Book) {
        let (mut c, mut book) = db();
        insert(&mut c, &mut book, events);
        (c, book)
    }

    /// Stores `events` as the writer thread does.
    pub fn insert(c: &mut Connection, book: &mut Book, events: &[Event]) {
        let ops = vec![WriteOp::Insert {
            events: events.to_vec(),
            offset: None,
            reply: None,
        }];
        write_batch(c, ops, book, &mut Done::default()).unwrap();
    }

    /// Runs retention steps until it is done.
    pub fn retain(c: &mut Connection, book: &mut Book, r: Retention) {
        for _ in 0..10_000 {
            let tx = c.transaction().unwrap();
            let step = retention::step(&tx, r, book).unwrap();
            tx.commit().unwrap();
            if step == retention::Step::Done {
                return;
            }
        }
        panic!("retention did not finish");
    }

    /// Reloads the aggregates as a restart does.
    pub fn restart(c: &mut Connection) -> Book {
        load_book(c).unwrap()
    }

    /// An event of `kind` at `ms`.
    pub fn at(ms: i64, kind: swarm_obs::Kind, msg: &str) -> Event {
        let mut ev = Event::new("w", kind, msg);
        ev.ts = swarm_obs::Timestamp::from_unix_ms(ms);
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::Kind;

    fn big(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::new("w", Kind::Log, format!("{i} {}", "x".repeat(2000))))
            .collect()
    }

    #[tokio::test]
    async fn a_queued_post_is_refused_while_the_store_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.db"), Hub::new(16)).unwrap();
        store.insert(big(1)).await.unwrap();
        assert_eq!(store.insert_queued(big(1)).await.unwrap(), 1);
        // What a full disk does to SQLite: no page can be added.
        let pages: i64 = store
            .read(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0)))
            .unwrap();
        let send = |sql: String| {
            store
                .sender()
                .unwrap()
                .try_send(WriteOp::Pragma(sql))
                .unwrap()
        };
        send(format!("PRAGMA max_page_count = {pages}"));
        let failed = store.insert(big(200)).await;
        assert!(failed.is_err(), "{failed:?}");
        eprintln!(
            "failed: {failed:?} metrics {:?}",
            store.inner.hub.metrics.store_failing()
        );
        let refused = store.insert_queued(big(1)).await.unwrap_err();
        assert!(refused.to_string().contains("cannot write"), "{refused}");
        // Space again: the next commit clears it.
        send("PRAGMA max_page_count = 1073741823".into());
        store.insert(big(1)).await.unwrap();
        assert_eq!(store.insert_queued(big(1)).await.unwrap(), 1);
    }
}
