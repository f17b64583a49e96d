//! Probe checks: the hourly healthy-ratio rollup and the transition history.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use swarm_obs::Timestamp;

use crate::api::{ProbeTransition, RollupHour};

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

/// Milliseconds in an hour: rollup buckets.
pub(super) const HOUR_MS: i64 = 3_600_000;

pub(super) fn record_probe(conn: &Connection, p: &ProbeRecord) -> rusqlite::Result<()> {
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
