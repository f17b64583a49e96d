//! The aggregates computed from scratch over every stored event: the oracle the
//! maintained ones are tested against.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;

use super::book::{Book, is_telemetry};
use super::events::stored_from_row;

/// Comparable figures of a source: events, errors, first and last time.
pub(crate) type SourceFigures = (i64, i64, i64, i64);

/// Comparable figures of a session.
#[derive(Debug, PartialEq)]
pub(crate) struct SessionFigures {
    pub events: i64,
    pub errors: i64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub sources: BTreeSet<String>,
    pub tools: BTreeMap<String, i64>,
    /// Agent → (events, tool calls, errors, first, last).
    pub agents: BTreeMap<Option<String>, (i64, i64, i64, i64, i64)>,
    pub telemetry: Option<String>,
}

/// Every source's and every session's figures.
pub(crate) type AllFigures = (
    BTreeMap<String, SourceFigures>,
    BTreeMap<String, SessionFigures>,
);

/// Every figure, by walking every stored event in order.
pub(crate) fn from_scratch(c: &Connection) -> rusqlite::Result<AllFigures> {
    let mut book = Book::default();
    let mut st = c.prepare("SELECT seq, json FROM events ORDER BY seq")?;
    let mut rows = st.query([])?;
    while let Some(row) = rows.next()? {
        if let Some(s) = stored_from_row(row)? {
            book.add(&s.event);
        }
    }
    // The counts of a from-scratch book are plain sums over the events; only the
    // first and last times need the SQL below to be independent of the book.
    let mut sources = BTreeMap::new();
    let mut st = c.prepare(
        "SELECT source, COUNT(*), SUM(kind = 'error' OR lvl >= 4), MIN(ts), MAX(ts)
         FROM events GROUP BY source",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        sources.insert(r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?));
    }
    let mut sessions = BTreeMap::new();
    for (id, s) in &book.sessions {
        sessions.insert(id.clone(), figures(s));
    }
    let _ = is_telemetry;
    Ok((sources, sessions))
}

/// The comparable figures of a maintained session.
pub(crate) fn figures(s: &super::SessionAgg) -> SessionFigures {
    SessionFigures {
        events: s.events,
        errors: s.errors,
        first_ts: s.first_ts,
        last_ts: s.last_ts,
        sources: s.sources.clone(),
        tools: s.tools.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        agents: s
            .agents
            .iter()
            .map(|a| {
                (
                    a.agent.clone(),
                    (a.events, a.tool_calls, a.errors, a.first_ts, a.last_ts),
                )
            })
            .collect(),
        telemetry: {
            // The session's sums, each lane's and the part no lane can be given.
            let summary = s.summary("x", swarm_obs::Timestamp::now(), "", i64::MAX);
            let lanes: BTreeMap<_, _> = summary
                .agents
                .iter()
                .map(|a| (a.agent.clone(), a.telemetry))
                .collect();
            summary
                .telemetry
                .map(|t| format!("{t:?} {lanes:?} {:?}", summary.unattributed))
        },
    }
}
