//! `/v1/activity`: events per minute by kind, from the time index.

use rusqlite::{Connection, params_from_iter};
use swarm_obs::Timestamp;

use super::SCAN_CAP;
use super::events::stored_from_row;
use crate::api::{Activity, ActivityBucket};
use crate::filter::Filter;

/// Width of one activity bucket: a minute.
pub const ACTIVITY_BUCKET_MS: i64 = 60_000;

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
    use std::collections::HashMap;

    use super::*;
    use crate::store::testing::{at, db_with};
    use swarm_obs::Kind;

    #[test]
    fn activity_counts_minutes_by_kind_with_empty_minutes_and_filters() {
        let now = 1_000_000_040_000; // 20 s into a minute
        let minute = now - now % ACTIVITY_BUCKET_MS;
        let (c, _) = db_with(&[
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
}
