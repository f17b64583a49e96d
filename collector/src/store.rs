//! The SQLite store: one writer thread that batches inserts into transactions, and a
//! small pool of read connections (WAL lets readers run beside the writer).
//!
//! Every stored event gets a `seq`, its insertion order. Viewers resume and page by
//! `seq`, not by event id, because catch-up from the event log may insert an event
//! whose id is older than events already stored: ordering by insertion is what makes
//! "no gap, no duplicate" hold.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;
use swarm_obs::{Event, Level, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::filter::Filter;
use crate::hub::Hub;

/// Operations queued to the writer thread at most; senders wait beyond that.
const WRITE_QUEUE: usize = 1024;
/// Operations the writer folds into one transaction at most.
const MAX_BATCH_OPS: usize = 512;
/// Rows a filtered scan looks at before giving up on finding more matches.
const SCAN_CAP: usize = 200_000;

/// An event as stored: its insertion sequence number, the event, and its JSON.
#[derive(Debug)]
pub struct Stored {
    /// Insertion order, unique and increasing.
    pub seq: i64,
    /// The event.
    pub event: Event,
    /// The event as compact JSON, serialised once for every viewer.
    pub json: String,
}

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
}

/// One probe check to count in the hourly rollup, and the state transition it
/// caused, if any.
#[derive(Clone, Debug)]
pub struct ProbeRecord {
    /// The probe's name.
    pub probe: String,
    /// When the check ran.
    pub ts: Timestamp,
    /// Whether it passed.
    pub healthy: bool,
    /// The transition: previous state (none on first sight), new state, detail.
    pub transition: Option<(Option<String>, String, String)>,
}

/// One hour of a probe's checks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RollupHour {
    /// The hour's start, RFC 3339.
    pub hour: Timestamp,
    /// Checks run.
    pub checks: i64,
    /// Checks passed.
    pub healthy: i64,
    /// `healthy / checks`.
    pub healthy_ratio: f64,
}

/// One stored state transition of a probe.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeTransition {
    /// When it happened.
    pub ts: Timestamp,
    /// The state before; absent on first sight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The state after.
    pub to: String,
    /// What the check saw.
    pub detail: String,
}

/// Milliseconds in an hour: rollup buckets.
const HOUR_MS: i64 = 3_600_000;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
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
";

/// The numeric rank of a level, stored so `level>=warn` is an index-friendly compare.
pub(crate) fn level_rank(l: Level) -> i64 {
    match l {
        Level::Trace => 0,
        Level::Debug => 1,
        Level::Info => 2,
        Level::Warn => 3,
        Level::Error => 4,
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Incremental auto-vacuum only takes effect on a new database; it lets the size
    // cap give space back to the file system.
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;",
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
        let conn = open(path).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, hub))
            .map_err(|e| StoreError::Write(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
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

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteOp>, hub: Hub) {
    while let Some(first) = rx.blocking_recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let mut published = Vec::new();
        let mut replies = Vec::new();
        let mut cursor_replies = Vec::new();
        let result = write_batch(
            &mut conn,
            ops,
            &mut published,
            &mut replies,
            &mut cursor_replies,
        );
        match result {
            Ok(()) => {
                // A cursor reply only after the commit: the caller relies on it being durable.
                for r in cursor_replies {
                    let _ = r.send(());
                }
                hub.metrics.add_ingested(published.len() as u64);
                for stored in published {
                    hub.publish(Arc::new(stored));
                }
                for (reply, inserted) in replies {
                    hub.metrics.add_duplicates(inserted.duplicates as u64);
                    if let Some(r) = reply {
                        let _ = r.send(Ok(inserted));
                    }
                }
            }
            Err(e) => {
                eprintln!("swarm-obs serve: storing events failed: {e}");
                for (reply, _) in replies {
                    if let Some(r) = reply {
                        let _ = r.send(Err(e.to_string()));
                    }
                }
            }
        }
    }
}

type Reply = Option<oneshot::Sender<Result<Inserted, String>>>;

fn write_batch(
    conn: &mut Connection,
    ops: Vec<WriteOp>,
    published: &mut Vec<Stored>,
    replies: &mut Vec<(Reply, Inserted)>,
    cursor_replies: &mut Vec<oneshot::Sender<()>>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events
             (id, ts, source, kind, lvl, session, agent, agent_type, hook, tool, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut offset_st = tx.prepare_cached(
            "INSERT INTO log_offsets (file, offset) VALUES (?1, ?2)
             ON CONFLICT(file) DO UPDATE SET offset = excluded.offset",
        )?;
        for op in ops {
            match op {
                WriteOp::Insert {
                    events,
                    offset,
                    reply,
                } => {
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
                            published.push(Stored {
                                seq: tx.last_insert_rowid(),
                                event,
                                json,
                            });
                        } else {
                            inserted.duplicates += 1;
                        }
                    }
                    if let Some((file, off)) = offset {
                        offset_st.execute(params![file, off as i64])?;
                    }
                    replies.push((reply, inserted));
                }
                WriteOp::Retain(r) => retain(&tx, r)?,
                WriteOp::Probe(p) => record_probe(&tx, &p)?,
                WriteOp::Cursor { name, seq, reply } => {
                    tx.execute(
                        "INSERT INTO export_cursors (name, seq) VALUES (?1, ?2)
                         ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
                        params![name, seq],
                    )?;
                    cursor_replies.push(reply);
                }
            }
        }
    }
    tx.commit()
}

fn record_probe(conn: &Connection, p: &ProbeRecord) -> rusqlite::Result<()> {
    let ts = p.ts.unix_ms();
    conn.prepare_cached(
        "INSERT INTO probe_rollup (probe, hour, checks, healthy) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT(probe, hour) DO UPDATE SET
           checks = checks + 1, healthy = healthy + excluded.healthy",
    )?
    .execute(params![
        p.probe,
        ts - ts.rem_euclid(HOUR_MS),
        i64::from(p.healthy)
    ])?;
    if let Some((prev, state, detail)) = &p.transition {
        conn.prepare_cached(
            "INSERT INTO probe_transitions (probe, ts, prev, state, detail)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![p.probe, ts, prev, state, detail])?;
    }
    Ok(())
}

/// The hourly rollup of every probe since `since_ms`, oldest hour first.
pub fn probe_rollup(
    c: &Connection,
    since_ms: i64,
) -> rusqlite::Result<HashMap<String, Vec<RollupHour>>> {
    let mut st = c.prepare_cached(
        "SELECT probe, hour, checks, healthy FROM probe_rollup WHERE hour >= ?1
         ORDER BY probe, hour",
    )?;
    let rows = st.query_map([since_ms - since_ms.rem_euclid(HOUR_MS)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out: HashMap<String, Vec<RollupHour>> = HashMap::new();
    for row in rows {
        let (probe, hour, checks, healthy) = row?;
        out.entry(probe).or_default().push(RollupHour {
            hour: Timestamp::from_unix_ms(hour),
            checks,
            healthy,
            healthy_ratio: if checks > 0 {
                healthy as f64 / checks as f64
            } else {
                0.0
            },
        });
    }
    Ok(out)
}

/// The last `limit` transitions of `probe`, newest first.
pub fn probe_transitions(
    c: &Connection,
    probe: &str,
    limit: usize,
) -> rusqlite::Result<Vec<ProbeTransition>> {
    let mut st = c.prepare_cached(
        "SELECT ts, prev, state, detail FROM probe_transitions WHERE probe = ?1
         ORDER BY ts DESC, rowid DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![probe, limit as i64], |r| {
        Ok(ProbeTransition {
            ts: Timestamp::from_unix_ms(r.get(0)?),
            from: r.get(1)?,
            to: r.get(2)?,
            detail: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Deletes events past the age limit, then the oldest while over the size cap.
///
/// The newest event always stays: `seq` is SQLite's rowid, which an emptied table
/// would hand out again from 1, and the exporter's cursor and every live viewer only
/// move forward by it, so a reused number would be silently skipped.
fn retain(conn: &Connection, r: Retention) -> rusqlite::Result<()> {
    let cutoff = Timestamp::now().unix_ms().saturating_sub(r.max_age_ms);
    conn.execute(
        "DELETE FROM events WHERE ts < ?1 AND seq < (SELECT MAX(seq) FROM events)",
        [cutoff],
    )?;
    conn.execute("DELETE FROM probe_transitions WHERE ts < ?1", [cutoff])?;
    conn.execute(
        "DELETE FROM probe_rollup WHERE hour < ?1",
        [cutoff - HOUR_MS],
    )?;
    // Over the size cap: drop the oldest tenth, a few times at most per pass.
    for _ in 0..5 {
        let used: i64 = conn.query_row(
            "SELECT (page_count - freelist_count) * page_size
             FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
            [],
            |row| row.get(0),
        )?;
        if used.max(0) as u64 <= r.max_bytes {
            break;
        }
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
        if n <= 1 {
            break;
        }
        conn.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?1)",
            [(n / 10).clamp(1, n - 1)],
        )?;
    }
    conn.execute_batch("PRAGMA incremental_vacuum(1000);")?;
    Ok(())
}

fn stored_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Stored>> {
    let seq: i64 = row.get(0)?;
    let json: String = row.get(1)?;
    // Rows were written by this store from valid events; one that no longer parses
    // (a newer schema, a hand edit) is skipped rather than failing the query.
    Ok(Event::from_json(&json)
        .ok()
        .map(|event| Stored { seq, event, json }))
}

/// Newest first: up to `limit` events matching `filter` with `seq < before`.
pub fn page_before(
    c: &Connection,
    filter: &Filter,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<Stored>> {
    let (mut clause, mut args) = filter.sql();
    if let Some(b) = before {
        clause.push_str(" AND seq < ?");
        args.push(b.into());
    }
    let mut out = Vec::new();
    let mut scanned = 0;
    let mut cursor: Option<i64> = None;
    // Filters SQL cannot express (the regex) are applied here, page by page.
    loop {
        let mut sql = format!("SELECT seq, json FROM events WHERE {clause}");
        let mut page_args = args.clone();
        if let Some(c) = cursor {
            sql.push_str(" AND seq < ?");
            page_args.push(c.into());
        }
        sql.push_str(" ORDER BY seq DESC LIMIT 1000");
        let mut st = c.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(page_args))?;
        let mut got = 0;
        while let Some(row) = rows.next()? {
            got += 1;
            scanned += 1;
            if let Some(s) = stored_from_row(row)? {
                cursor = Some(s.seq);
                if filter.matches_post_sql(&s.event) {
                    out.push(s);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        if got < 1000 || scanned >= SCAN_CAP {
            return Ok(out);
        }
    }
}

/// Oldest first: up to `limit` stored rows with `seq > after`, unfiltered, so a
/// follower's cursor advances over rows it does not want too.
pub fn rows_after(c: &Connection, after: i64, limit: usize) -> rusqlite::Result<Vec<Stored>> {
    let mut st =
        c.prepare_cached("SELECT seq, json FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let mut rows = st.query(params![after, limit as i64])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if let Some(s) = stored_from_row(row)? {
            out.push(s);
        }
    }
    Ok(out)
}

/// The highest `seq` among the `limit` rows after `after`, parsable or not: how far
/// a follower may skip when none of those rows parses.
pub fn last_seq_of_page(c: &Connection, after: i64, limit: usize) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT MAX(seq) FROM (SELECT seq FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2)",
        params![after, limit as i64],
        |r| r.get(0),
    )
}

/// The highest `seq` stored, 0 when empty.
pub fn max_seq(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
}

/// An exporter's persisted cursor, `None` before its first export.
pub fn cursor(c: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT seq FROM export_cursors WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()
}

/// The `seq` of a stored event id.
pub fn seq_of(c: &Connection, id: &str) -> rusqlite::Result<Option<i64>> {
    c.query_row("SELECT seq FROM events WHERE id = ?1", [id], |r| r.get(0))
        .optional()
}

/// One source, as `/v1/sources` reports it.
#[derive(Debug, Serialize)]
pub struct SourceSummary {
    /// The source name.
    pub source: String,
    /// Events stored.
    pub events: i64,
    /// Events of kind `error` or level `error`.
    pub errors: i64,
    /// First event time.
    pub first_seen: Timestamp,
    /// Last event time.
    pub last_seen: Timestamp,
}

/// Every source with counts and first/last times, most recently active first.
pub fn sources(c: &Connection) -> rusqlite::Result<Vec<SourceSummary>> {
    let mut st = c.prepare_cached(
        "SELECT source, COUNT(*), SUM(kind = 'error' OR lvl >= 4), MIN(ts), MAX(ts)
         FROM events GROUP BY source ORDER BY MAX(ts) DESC LIMIT 10000",
    )?;
    let rows = st.query_map([], |r| {
        Ok(SourceSummary {
            source: r.get(0)?,
            events: r.get(1)?,
            errors: r.get(2)?,
            first_seen: Timestamp::from_unix_ms(r.get(3)?),
            last_seen: Timestamp::from_unix_ms(r.get(4)?),
        })
    })?;
    rows.collect()
}

/// One agent (the main agent or a subagent) within a session.
#[derive(Debug, Serialize)]
pub struct AgentSummary {
    /// Subagent id; absent for the main agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Subagent type; absent for the main agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// Events.
    pub events: i64,
    /// Tool calls (PreToolUse events).
    pub tool_calls: i64,
    /// Errors.
    pub errors: i64,
    /// First event time.
    pub first_seen: Timestamp,
    /// Last event time.
    pub last_seen: Timestamp,
}

/// One Claude Code session, as `/v1/sessions` reports it.
#[derive(Debug, Serialize)]
pub struct SessionSummary {
    /// The session id.
    pub session: String,
    /// Sources that reported for it.
    pub sources: Vec<String>,
    /// Events.
    pub events: i64,
    /// Errors.
    pub errors: i64,
    /// Tool calls by tool name.
    pub tools: HashMap<String, i64>,
    /// The main agent and every subagent.
    pub agents: Vec<AgentSummary>,
    /// First event time.
    pub first_seen: Timestamp,
    /// Last event time.
    pub last_seen: Timestamp,
    /// `last_seen - first_seen` in milliseconds.
    pub duration_ms: i64,
    /// Cost, tokens and API latency from Claude Code's own telemetry (OTLP ingest);
    /// absent when the session has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<SessionTelemetry>,
}

/// A session's model usage, summed over its `claude_code.api_request` records.
/// Viewers (`swarm-obs top`) read it back with the same type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SessionTelemetry {
    /// Estimated cost in US dollars.
    pub cost_usd: f64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Tokens written to the prompt cache.
    pub cache_creation_tokens: u64,
    /// Model requests.
    pub api_requests: u64,
    /// Time spent in model requests, summed, in milliseconds.
    pub api_duration_ms: u64,
}

impl SessionTelemetry {
    /// Every token counted.
    pub fn tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_creation_tokens)
    }
}

/// The `limit` most recently active sessions with agents, tool counts and errors.
pub fn sessions(c: &Connection, limit: usize) -> rusqlite::Result<Vec<SessionSummary>> {
    let mut out: Vec<SessionSummary> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    {
        let mut st = c.prepare_cached(
            "SELECT session, COUNT(*), SUM(kind = 'error' OR lvl >= 4), MIN(ts), MAX(ts),
                    GROUP_CONCAT(DISTINCT source)
             FROM events WHERE session IS NOT NULL
             GROUP BY session ORDER BY MAX(ts) DESC LIMIT ?1",
        )?;
        let mut rows = st.query([limit as i64])?;
        while let Some(r) = rows.next()? {
            let session: String = r.get(0)?;
            let (first, last): (i64, i64) = (r.get(3)?, r.get(4)?);
            let sources: Option<String> = r.get(5)?;
            index.insert(session.clone(), out.len());
            out.push(SessionSummary {
                session,
                sources: sources
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                events: r.get(1)?,
                errors: r.get(2)?,
                tools: HashMap::new(),
                agents: Vec::new(),
                first_seen: Timestamp::from_unix_ms(first),
                last_seen: Timestamp::from_unix_ms(last),
                duration_ms: last - first,
                telemetry: None,
            });
        }
    }
    if out.is_empty() {
        return Ok(out);
    }
    let first_ts = out
        .iter()
        .map(|s| s.first_seen.unix_ms())
        .min()
        .unwrap_or(0);
    let mut st = c.prepare_cached(
        "SELECT session, agent, MAX(agent_type), COUNT(*), COALESCE(SUM(hook = 'PreToolUse'), 0),
                SUM(kind = 'error' OR lvl >= 4), MIN(ts), MAX(ts)
         FROM events WHERE session IS NOT NULL AND ts >= ?1
         GROUP BY session, agent ORDER BY MIN(ts)",
    )?;
    let mut rows = st.query([first_ts])?;
    while let Some(r) = rows.next()? {
        let session: String = r.get(0)?;
        if let Some(&i) = index.get(&session) {
            out[i].agents.push(AgentSummary {
                agent: r.get(1)?,
                agent_type: r.get(2)?,
                events: r.get(3)?,
                tool_calls: r.get(4)?,
                errors: r.get(5)?,
                first_seen: Timestamp::from_unix_ms(r.get(6)?),
                last_seen: Timestamp::from_unix_ms(r.get(7)?),
            });
        }
    }
    let mut st = c.prepare_cached(
        "SELECT session, tool, COUNT(*) FROM events
         WHERE session IS NOT NULL AND tool IS NOT NULL AND hook = 'PreToolUse' AND ts >= ?1
         GROUP BY session, tool",
    )?;
    let mut rows = st.query([first_ts])?;
    while let Some(r) = rows.next()? {
        let session: String = r.get(0)?;
        if let Some(&i) = index.get(&session) {
            out[i].tools.insert(r.get(1)?, r.get(2)?);
        }
    }
    // Model usage from Claude Code's telemetry. Only log records are counted: the
    // cost and token metrics say the same again, and would count it twice.
    let mut st = c.prepare_cached(
        "SELECT session,
                TOTAL(json_extract(json, '$.fields.cost_usd')),
                TOTAL(json_extract(json, '$.fields.input_tokens')),
                TOTAL(json_extract(json, '$.fields.output_tokens')),
                TOTAL(json_extract(json, '$.fields.cache_read_tokens')),
                TOTAL(json_extract(json, '$.fields.cache_creation_tokens')),
                COUNT(*),
                TOTAL(json_extract(json, '$.fields.duration_ms'))
         FROM events
         WHERE session IS NOT NULL AND ts >= ?1 AND hook IS NULL
           AND json_extract(json, '$.fields.\"event.name\"') = ?2
         GROUP BY session",
    )?;
    let mut rows = st.query(params![first_ts, crate::otlp_ingest::API_REQUEST])?;
    while let Some(r) = rows.next()? {
        let session: String = r.get(0)?;
        if let Some(&i) = index.get(&session) {
            // TOTAL is a float; counts are whole and far below 2^53.
            let count =
                |k: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, f64>(k)?.max(0.0) as u64) };
            out[i].telemetry = Some(SessionTelemetry {
                cost_usd: r.get(1)?,
                input_tokens: count(2)?,
                output_tokens: count(3)?,
                cache_read_tokens: count(4)?,
                cache_creation_tokens: count(5)?,
                api_requests: r.get::<_, i64>(6)?.max(0) as u64,
                api_duration_ms: count(7)?,
            });
        }
    }
    metric_telemetry(c, first_ts, &index, &mut out)?;
    Ok(out)
}

/// For sessions with no `claude_code.api_request` records (Claude Code exporting
/// metrics only): cost and tokens from `claude_code.cost.usage` and
/// `claude_code.token.usage`. Delta points add up; of cumulative points each
/// series (session, model, token type) counts with its latest, largest value.
/// Request counts and API time are not in the metrics and stay 0.
fn metric_telemetry(
    c: &Connection,
    first_ts: i64,
    index: &HashMap<String, usize>,
    out: &mut [SessionSummary],
) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(
        "SELECT session,
                json_extract(json, '$.fields.\"metric.name\"'),
                COALESCE(json_extract(json, '$.fields.type'), ''),
                COALESCE(json_extract(json, '$.fields.model'), ''),
                json_extract(json, '$.fields.\"metric.temporality\"'),
                json_extract(json, '$.fields.\"metric.value\"')
         FROM events
         WHERE session IS NOT NULL AND ts >= ?1 AND hook IS NULL AND kind = 'log'
           AND json_extract(json, '$.fields.\"metric.name\"')
               IN ('claude_code.cost.usage', 'claude_code.token.usage')",
    )?;
    let mut rows = st.query([first_ts])?;
    // (session index, metric, token type) → sum of deltas; series → cumulative max.
    let mut delta: HashMap<(usize, String, String), f64> = HashMap::new();
    let mut cumulative: HashMap<(usize, String, String, String), f64> = HashMap::new();
    while let Some(r) = rows.next()? {
        let session: String = r.get(0)?;
        let Some(&i) = index.get(&session) else {
            continue;
        };
        if out[i].telemetry.is_some() {
            continue;
        }
        let name: String = r.get(1)?;
        let kind: String = r.get::<_, Option<String>>(2)?.unwrap_or_default();
        let model: String = r.get::<_, Option<String>>(3)?.unwrap_or_default();
        let temporality: Option<String> = r.get(4)?;
        let value: f64 = r.get::<_, Option<f64>>(5)?.unwrap_or(0.0);
        if temporality.as_deref() == Some("cumulative") {
            let e = cumulative.entry((i, name, kind, model)).or_default();
            *e = e.max(value);
        } else {
            *delta.entry((i, name, kind)).or_default() += value;
        }
    }
    let totals = delta.into_iter().chain(
        cumulative
            .into_iter()
            .map(|((i, name, kind, _), v)| ((i, name, kind), v)),
    );
    let mut found: HashMap<usize, SessionTelemetry> = HashMap::new();
    for ((i, name, kind), v) in totals {
        let t = found.entry(i).or_default();
        let tokens = v.max(0.0) as u64;
        match (name.as_str(), kind.as_str()) {
            ("claude_code.cost.usage", _) => t.cost_usd += v,
            (_, "input") => t.input_tokens += tokens,
            (_, "output") => t.output_tokens += tokens,
            (_, "cacheRead") => t.cache_read_tokens += tokens,
            (_, "cacheCreation") => t.cache_creation_tokens += tokens,
            _ => {}
        }
    }
    for (i, t) in found {
        out[i].telemetry = Some(t);
    }
    Ok(())
}

/// Width of one activity bucket: a minute.
pub const ACTIVITY_BUCKET_MS: i64 = 60_000;

/// Events of one minute, counted by kind.
#[derive(Debug, Serialize)]
pub struct ActivityBucket {
    /// The minute's start.
    pub start: Timestamp,
    /// Events in it, by kind; kinds without events are left out.
    pub counts: std::collections::BTreeMap<String, i64>,
}

/// Events per minute by kind over the last minutes, as `/v1/activity` reports it.
#[derive(Debug, Serialize)]
pub struct Activity {
    /// Bucket width in milliseconds.
    pub bucket_ms: i64,
    /// Every minute from the oldest to the current (partial) one, empty ones included.
    pub buckets: Vec<ActivityBucket>,
}

/// Events matching `filter` per minute by kind, over the `minutes` whole minutes up
/// to and including the one holding `now`.
pub fn activity(
    c: &Connection,
    filter: &Filter,
    minutes: usize,
    now: Timestamp,
) -> rusqlite::Result<Activity> {
    let minutes = minutes.max(1) as i64;
    let current = now.unix_ms().div_euclid(ACTIVITY_BUCKET_MS);
    let first = current - (minutes - 1);
    let mut buckets: Vec<ActivityBucket> = (first..=current)
        .map(|m| ActivityBucket {
            start: Timestamp::from_unix_ms(m * ACTIVITY_BUCKET_MS),
            counts: Default::default(),
        })
        .collect();
    let mut add = |ts: i64, kind: String, n: i64| {
        let m = ts.div_euclid(ACTIVITY_BUCKET_MS);
        if (first..=current).contains(&m) {
            *buckets[(m - first) as usize]
                .counts
                .entry(kind)
                .or_insert(0) += n;
        }
    };
    let (mut clause, mut args) = filter.sql();
    clause.push_str(" AND ts >= ?");
    args.push((first * ACTIVITY_BUCKET_MS).into());
    if filter.q.is_none() {
        let sql = format!(
            "SELECT (ts / {ACTIVITY_BUCKET_MS}) * {ACTIVITY_BUCKET_MS}, kind, COUNT(*)
             FROM events WHERE {clause} GROUP BY 1, 2"
        );
        let mut st = c.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            add(r.get(0)?, r.get(1)?, r.get(2)?);
        }
    } else {
        // The regex needs each event; newest first, bounded like other scans.
        let sql = format!(
            "SELECT seq, json FROM events WHERE {clause} ORDER BY seq DESC LIMIT {SCAN_CAP}"
        );
        let mut st = c.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            if let Some(s) = stored_from_row(row)?
                && filter.matches_post_sql(&s.event)
            {
                add(s.event.ts.unix_ms(), s.event.kind.as_str().to_owned(), 1);
            }
        }
    }
    Ok(Activity {
        bucket_ms: ACTIVITY_BUCKET_MS,
        buckets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::Kind;

    fn db_with(events: &[Event]) -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        insert(&mut c, events);
        c
    }

    /// Stores `events` as the writer thread does.
    fn insert(c: &mut Connection, events: &[Event]) {
        let ops = vec![WriteOp::Insert {
            events: events.to_vec(),
            offset: None,
            reply: None,
        }];
        write_batch(c, ops, &mut Vec::new(), &mut Vec::new(), &mut Vec::new()).unwrap();
    }

    fn at(ms: i64, kind: Kind, msg: &str) -> Event {
        let mut ev = Event::new("w", kind, msg);
        ev.ts = Timestamp::from_unix_ms(ms);
        ev
    }

    #[test]
    fn activity_counts_minutes_by_kind_with_empty_minutes_and_filters() {
        let now = 1_000_000_040_000; // 20 s into a minute
        let minute = now - now % ACTIVITY_BUCKET_MS;
        let c = db_with(&[
            at(now - 1_000, Kind::Log, "disk ok"),
            at(now - 2_000, Kind::Error, "disk full"),
            at(now - 3_000, Kind::Error, "net down"),
            at(minute - 1, Kind::Hook, "previous minute"),
            at(
                minute - 3 * ACTIVITY_BUCKET_MS,
                Kind::Log,
                "too old for 3 minutes",
            ),
        ]);
        let all = activity(&c, &Filter::default(), 3, Timestamp::from_unix_ms(now)).unwrap();
        assert_eq!(all.buckets.len(), 3);
        assert_eq!(all.buckets[2].start.unix_ms(), minute);
        assert!(all.buckets[0].counts.is_empty());
        assert_eq!(all.buckets[1].counts["hook"], 1);
        assert_eq!(all.buckets[2].counts["error"], 2);
        assert_eq!(all.buckets[2].counts["log"], 1);

        let mut p = HashMap::new();
        p.insert("q".to_owned(), "disk".to_owned());
        let f = Filter::from_params(&p).unwrap();
        let disk = activity(&c, &f, 3, Timestamp::from_unix_ms(now)).unwrap();
        assert_eq!(disk.buckets[2].counts["error"], 1);
        assert_eq!(disk.buckets[2].counts["log"], 1);
        assert!(disk.buckets[1].counts.is_empty());
    }

    fn count(c: &Connection) -> i64 {
        c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn retention_deletes_by_age_and_never_reuses_an_event_number() {
        let now = Timestamp::now().unix_ms();
        let mut c = db_with(&[
            at(now - 10 * DAY_MS, Kind::Log, "old 1"),
            at(now - 9 * DAY_MS, Kind::Log, "old 2"),
            at(now - 1_000, Kind::Log, "recent"),
        ]);
        let week = Retention {
            max_age_ms: 7 * DAY_MS,
            max_bytes: u64::MAX,
        };
        retain(&c, week).unwrap();
        let left = rows_after(&c, 0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].event.msg, "recent");

        // Everything has aged out: the newest row stays, so the next event's number
        // is still past every number a viewer or the exporter has seen.
        let before = max_seq(&c).unwrap();
        c.execute("UPDATE events SET ts = ?1", [now - 30 * DAY_MS])
            .unwrap();
        retain(&c, week).unwrap();
        assert_eq!(count(&c), 1);
        insert(&mut c, &[at(now, Kind::Log, "after the gap")]);
        let after = rows_after(&c, before, 10).unwrap();
        assert_eq!(after.len(), 1, "the new event is seen past the old cursor");
        assert_eq!(after[0].event.msg, "after the gap");
    }

    #[test]
    fn the_size_cap_deletes_the_oldest_first_and_keeps_the_newest() {
        let now = Timestamp::now().unix_ms();
        let events: Vec<Event> = (0..2_000)
            .map(|i| {
                at(
                    now - 2_000 + i,
                    Kind::Log,
                    &format!("event {i:04} {}", "x".repeat(200)),
                )
            })
            .collect();
        let c = db_with(&events);
        let cap = Retention {
            max_age_ms: 7 * DAY_MS,
            max_bytes: 64 * 1024,
        };
        retain(&c, cap).unwrap();
        let n = count(&c);
        assert!(n < 2_000, "over the cap, something is deleted ({n} left)");
        assert!(n >= 1);
        let left = rows_after(&c, 0, 2_000).unwrap();
        // What is left is a contiguous run ending at the newest event.
        assert!(left.last().unwrap().event.msg.starts_with("event 1999"));
        let first: usize = left[0].event.msg[6..10].parse().unwrap();
        assert_eq!(left.len(), 2_000 - first);

        // A cap nothing fits under still keeps the newest event.
        let tiny = Retention {
            max_age_ms: 7 * DAY_MS,
            max_bytes: 1,
        };
        for _ in 0..20 {
            retain(&c, tiny).unwrap();
        }
        assert_eq!(count(&c), 1);
        assert!(
            rows_after(&c, 0, 1).unwrap()[0]
                .event
                .msg
                .starts_with("event 1999")
        );
    }
}
