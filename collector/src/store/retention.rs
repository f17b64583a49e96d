//! Retention in bounded steps: each step deletes at most [`STEP_ROWS`] events in a
//! transaction of its own, between ingest batches, so no POST waits for a whole
//! pass. The aggregates take back what each step deleted.
//!
//! The newest event always stays: `seq` is SQLite's rowid, which an emptied table
//! would hand out again from 1, and the exporter's cursor and every live viewer only
//! move forward by it, so a reused number would be silently skipped.

use rusqlite::Connection;
use swarm_obs::Timestamp;

use super::Retention;
use super::book::{Book, Gone};
use super::probes::HOUR_MS;

/// Events one retention step deletes at most.
pub const STEP_ROWS: i64 = 2_000;

/// What is left to do after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// More to delete: run another step soon.
    More,
    /// Within the limits.
    Done,
}

fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let used: i64 = conn.query_row(
        "SELECT (page_count - freelist_count) * page_size
         FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
        [],
        |row| row.get(0),
    )?;
    Ok(used.max(0) as u64)
}

/// One step (inside the caller's transaction): deletes up to [`STEP_ROWS`] events
/// older than the age limit, or else the oldest while the store is over its size
/// cap, and takes them back out of `book`.
pub(super) fn step(conn: &Connection, r: Retention, book: &mut Book) -> rusqlite::Result<Step> {
    let cutoff = Timestamp::now().unix_ms().saturating_sub(r.max_age_ms);
    let max: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |row| {
        row.get(0)
    })?;
    // By age first, through the time index; then by insertion order under the cap.
    let mut seqs = select(
        conn,
        "SELECT seq FROM events WHERE ts < ?1 AND seq < ?2 ORDER BY ts LIMIT ?3",
        cutoff,
        max,
    )?;
    if seqs.is_empty() {
        conn.execute("DELETE FROM probe_transitions WHERE ts < ?1", [cutoff])?;
        conn.execute(
            "DELETE FROM probe_rollup WHERE hour < ?1",
            [cutoff - HOUR_MS],
        )?;
        if used_bytes(conn)? > r.max_bytes {
            seqs = select(
                conn,
                "SELECT seq FROM events WHERE ?1 = ?1 AND seq < ?2 ORDER BY seq LIMIT ?3",
                0,
                max,
            )?;
        }
    }
    if seqs.is_empty() {
        conn.execute_batch("PRAGMA incremental_vacuum(1000);")?;
        return Ok(Step::Done);
    }
    let mut gone = Vec::with_capacity(seqs.len());
    {
        let mut read = conn.prepare_cached(
            "SELECT source, session, agent, kind, lvl, hook, tool,
                    CASE WHEN session IS NOT NULL AND hook IS NULL THEN json END
             FROM events WHERE seq = ?1",
        )?;
        let mut delete = conn.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
        for seq in &seqs {
            let row = read.query_row([seq], |r| {
                let json: Option<String> = r.get(7)?;
                Ok(Gone {
                    source: r.get(0)?,
                    session: r.get(1)?,
                    agent: r.get(2)?,
                    kind: r.get(3)?,
                    lvl: r.get(4)?,
                    hook: r.get(5)?,
                    tool: r.get(6)?,
                    telemetry: json
                        .and_then(|j| swarm_obs::Event::from_json(&j).ok())
                        .is_some_and(|ev| super::book::is_telemetry(&ev)),
                })
            })?;
            gone.push(row);
            delete.execute([seq])?;
        }
    }
    let touched = book.forget(&gone);
    book.settle(conn, touched)?;
    book.flush(conn)?;
    conn.execute_batch("PRAGMA incremental_vacuum(200);")?;
    Ok(Step::More)
}

fn select(conn: &Connection, sql: &str, a: i64, max: i64) -> rusqlite::Result<Vec<i64>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(rusqlite::params![a, max, STEP_ROWS], |r| r.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{at, db_with, insert, retain};
    use rusqlite::Connection;
    use swarm_obs::{Event, Kind};

    fn count(c: &Connection) -> i64 {
        c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn retention_deletes_by_age_and_never_reuses_an_event_number() {
        let now = Timestamp::now().unix_ms();
        let (mut c, mut book) = db_with(&[
            at(now - 10 * DAY_MS, Kind::Log, "old 1"),
            at(now - 9 * DAY_MS, Kind::Log, "old 2"),
            at(now - 1_000, Kind::Log, "recent"),
        ]);
        let week = Retention {
            max_age_ms: 7 * DAY_MS,
            max_bytes: u64::MAX,
        };
        retain(&mut c, &mut book, week);
        let left = crate::store::rows_after(&c, 0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].event.msg, "recent");

        // Everything has aged out: the newest row stays, so the next event's number
        // is still past every number a viewer or the exporter has seen.
        let before = crate::store::max_seq(&c).unwrap();
        c.execute("UPDATE events SET ts = ?1", [now - 30 * DAY_MS])
            .unwrap();
        retain(&mut c, &mut book, week);
        assert_eq!(count(&c), 1);
        insert(&mut c, &mut book, &[at(now, Kind::Log, "after the gap")]);
        let after = crate::store::rows_after(&c, before, 10).unwrap();
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
        let (mut c, mut book) = db_with(&events);
        let cap = Retention {
            max_age_ms: 7 * DAY_MS,
            max_bytes: 64 * 1024,
        };
        retain(&mut c, &mut book, cap);
        let n = count(&c);
        assert!(n < 2_000, "over the cap, something is deleted ({n} left)");
        assert!(n >= 1);
        let left = crate::store::rows_after(&c, 0, 2_000).unwrap();
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
            retain(&mut c, &mut book, tiny);
        }
        assert_eq!(count(&c), 1);
        assert!(
            crate::store::rows_after(&c, 0, 1).unwrap()[0]
                .event
                .msg
                .starts_with("event 1999")
        );
    }
}
