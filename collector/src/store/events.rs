//! Event queries: pages of history newest first, and followers' reads by `seq`.
//!
//! History is ordered by time, newest first (`ts DESC, seq DESC`): every filter
//! column has an index on `(column, ts)`, which SQLite extends with the rowid
//! (`seq`), so a page is an index range read whatever the size of the store. A page
//! cursor is the `(ts, seq)` of the last row returned.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use swarm_obs::Event;

use crate::filter::Filter;
use crate::hub::Stored;

pub(crate) fn stored_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Stored>> {
    let seq: i64 = row.get(0)?;
    let json: String = row.get(1)?;
    // Rows were written by this store from valid events; one that no longer parses
    // (a newer schema, a hand edit) is skipped rather than failing the query.
    Ok(Event::from_json(&json)
        .ok()
        .map(|event| Stored::new(seq, event, json)))
}

/// Where a page of history starts: strictly older than this `(ts, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCursor {
    /// Event time, Unix milliseconds.
    pub ts: i64,
    /// Insertion number, which breaks ties between events of one millisecond.
    pub seq: i64,
}

impl PageCursor {
    /// The text form handed to clients: `<ts>.<seq>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.ts, self.seq)
    }

    /// Reads the text form back; `None` for anything else.
    pub fn decode(s: &str) -> Option<Self> {
        let (ts, seq) = s.split_once('.')?;
        Some(Self {
            ts: ts.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// One page of history.
#[derive(Debug, Default)]
pub struct Page {
    /// Rows, newest first.
    pub rows: Vec<Stored>,
    /// Where the next page starts; `None` when the history is exhausted.
    pub next: Option<PageCursor>,
    /// True when the scan limit stopped a regex filter before the page was full.
    pub partial: bool,
    /// Rows looked at.
    pub scanned: u64,
}

/// Newest first: up to `limit` events matching `filter`, older than `before`,
/// stored at or below `max_seq` when given (a live viewer's starting point).
/// Filters SQL cannot check (the regex) look at `scan_limit` rows at most; the
/// page then says it is partial and where to go on.
pub fn page(
    c: &Connection,
    filter: &Filter,
    before: Option<PageCursor>,
    max_seq: Option<i64>,
    limit: usize,
    scan_limit: usize,
) -> rusqlite::Result<Page> {
    let (clause, args) = filter.sql();
    let chunk = if filter.q.is_some() {
        1000
    } else {
        limit.max(1)
    };
    let mut out = Page::default();
    let mut cursor = before;
    loop {
        let mut sql = format!("SELECT seq, json, ts FROM events WHERE {clause}");
        let mut page_args: Vec<SqlValue> = args.clone();
        if let Some(m) = max_seq {
            sql.push_str(" AND seq <= ?");
            page_args.push(m.into());
        }
        if let Some(c) = cursor {
            sql.push_str(" AND (ts, seq) < (?, ?)");
            page_args.push(c.ts.into());
            page_args.push(c.seq.into());
        }
        sql.push_str(&format!(" ORDER BY ts DESC, seq DESC LIMIT {chunk}"));
        let mut st = c.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(page_args))?;
        let mut got = 0;
        while let Some(row) = rows.next()? {
            got += 1;
            out.scanned += 1;
            let here = PageCursor {
                ts: row.get(2)?,
                seq: row.get(0)?,
            };
            cursor = Some(here);
            if let Some(s) = stored_from_row(row)?
                && filter.matches_post_sql(&s.event)
            {
                out.rows.push(s);
                if out.rows.len() >= limit {
                    out.next = Some(here);
                    return Ok(out);
                }
            }
            if out.scanned as usize >= scan_limit {
                out.partial = true;
                out.next = Some(here);
                return Ok(out);
            }
        }
        if got < chunk {
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
