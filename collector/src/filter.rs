//! Event filters shared by queries, SSE streams and backfill: the same query
//! parameters select the same events live and from the store.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use rusqlite::types::Value as SqlValue;
use swarm_obs::{Event, Kind, Level, Timestamp};

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

/// Longest `q` regex accepted, in bytes.
const MAX_PATTERN: usize = 1024;

/// Which events a viewer or query wants. Every field that is set must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Exact source.
    pub source: Option<String>,
    /// Exact Claude Code session id.
    pub session: Option<String>,
    /// Exact subagent id; `main` selects the main agent (events without one).
    pub agent: Option<String>,
    /// Any of these kinds (`kind=error,alert`); empty selects every kind.
    pub kinds: Vec<Kind>,
    /// Minimum level.
    pub level: Option<Level>,
    /// Regex searched in the message, the source and the tool name.
    pub q: Option<Regex>,
    /// Events at or after this time.
    pub since: Option<Timestamp>,
    /// Events before this time.
    pub until: Option<Timestamp>,
}

/// A query parameter could not be used; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn parse_enum<T: serde::de::DeserializeOwned>(name: &str, v: &str) -> Result<T, FilterError> {
    serde_json::from_value(serde_json::Value::String(v.to_owned()))
        .map_err(|_| FilterError(format!("invalid `{name}` {v:?}")))
}

/// Parses `kind`: one kind or a comma-separated list, as `swarm-obs tail --kind`
/// takes it (any case, spaces around names and empty items ignored, duplicates
/// kept once). An unknown name is refused, naming it and the known ones.
fn parse_kinds(v: &str) -> Result<Vec<Kind>, FilterError> {
    let mut kinds = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(k) = Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(item))
        else {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            let whole = if item == v {
                String::new()
            } else {
                format!(" in {v:?}")
            };
            return Err(FilterError(format!(
                "invalid `kind` {item:?}{whole}: use one of {}, or several separated by commas",
                known.join(", ")
            )));
        };
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    Ok(kinds)
}

impl Filter {
    /// Reads `source`, `session`, `agent`, `kind`, `level`, `q`, `since`, `until`
    /// from query parameters; other parameters are left to the caller.
    pub fn from_params(p: &HashMap<String, String>) -> Result<Self, FilterError> {
        let text = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
        let time = |k: &str| -> Result<Option<Timestamp>, FilterError> {
            text(k)
                .map(|v| {
                    v.parse::<Timestamp>()
                        .map_err(|e| FilterError(format!("invalid `{k}`: {e}")))
                })
                .transpose()
        };
        let q = match text("q") {
            Some(pat) if pat.len() > MAX_PATTERN => {
                return Err(FilterError(format!(
                    "`q` is {} bytes; at most {MAX_PATTERN} are accepted",
                    pat.len()
                )));
            }
            Some(pat) => Some(
                RegexBuilder::new(&pat)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| FilterError(format!("invalid `q` regex: {e}")))?,
            ),
            None => None,
        };
        Ok(Self {
            source: text("source"),
            session: text("session"),
            agent: text("agent"),
            kinds: text("kind")
                .map(|v| parse_kinds(&v))
                .transpose()?
                .unwrap_or_default(),
            level: text("level").map(|v| parse_enum("level", &v)).transpose()?,
            q,
            since: time("since")?,
            until: time("until")?,
        })
    }

    /// Whether a live event passes every condition.
    pub fn matches(&self, ev: &Event) -> bool {
        self.source.as_ref().is_none_or(|s| *s == ev.source)
            && self
                .session
                .as_ref()
                .is_none_or(|s| ev.session.as_ref() == Some(s))
            && self.agent.as_ref().is_none_or(|a| match &ev.agent {
                None => a == "main",
                Some(x) => x == a,
            })
            && (self.kinds.is_empty() || self.kinds.contains(&ev.kind))
            && self.level.is_none_or(|l| ev.level >= l)
            && self.since.is_none_or(|t| ev.ts >= t)
            && self.until.is_none_or(|t| ev.ts < t)
            && self.matches_post_sql(ev)
    }

    /// The conditions SQL does not check (the regex).
    pub fn matches_post_sql(&self, ev: &Event) -> bool {
        self.q.as_ref().is_none_or(|re| {
            re.is_match(&ev.msg)
                || re.is_match(&ev.source)
                || ev.tool.as_deref().is_some_and(|t| re.is_match(t))
        })
    }

    /// A `WHERE` clause (never empty) and its arguments for the SQL-checkable fields.
    pub fn sql(&self) -> (String, Vec<SqlValue>) {
        let mut clause = String::from("1");
        let mut args: Vec<SqlValue> = Vec::new();
        let mut eq = |col: &str, v: &Option<String>, clause: &mut String| {
            if let Some(v) = v {
                clause.push_str(&format!(" AND {col} = ?"));
                args.push(SqlValue::Text(v.clone()));
            }
        };
        eq("source", &self.source, &mut clause);
        eq("session", &self.session, &mut clause);
        match self.agent.as_deref() {
            Some("main") => clause.push_str(" AND agent IS NULL"),
            _ => eq("agent", &self.agent, &mut clause),
        }
        if !self.kinds.is_empty() {
            let marks = vec!["?"; self.kinds.len()].join(", ");
            clause.push_str(&format!(" AND kind IN ({marks})"));
            args.extend(
                self.kinds
                    .iter()
                    .map(|k| SqlValue::Text(k.as_str().to_owned())),
            );
        }
        if let Some(l) = self.level {
            clause.push_str(" AND lvl >= ?");
            args.push(SqlValue::Integer(level_rank(l)));
        }
        if let Some(t) = self.since {
            clause.push_str(" AND ts >= ?");
            args.push(SqlValue::Integer(t.unix_ms()));
        }
        if let Some(t) = self.until {
            clause.push_str(" AND ts < ?");
            args.push(SqlValue::Integer(t.unix_ms()));
        }
        (clause, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_match_live_events() {
        let mut ev = Event::new("backend", Kind::Error, "disk full on /dev/sda");
        ev.session = Some("s1".into());
        let f = Filter::from_params(&params(&[
            ("source", "backend"),
            ("level", "warn"),
            ("q", "disk\\s+full"),
        ]))
        .unwrap();
        assert!(f.matches(&ev));
        let f = Filter::from_params(&params(&[("agent", "main"), ("session", "s1")])).unwrap();
        assert!(f.matches(&ev));
        let f = Filter::from_params(&params(&[("kind", "done")])).unwrap();
        assert!(!f.matches(&ev));
    }

    #[test]
    fn bad_parameters_are_named() {
        for (k, v, want) in [
            ("kind", "nope", "`kind`"),
            ("level", "loud", "`level`"),
            ("q", "(", "`q`"),
            ("since", "yesterday", "`since`"),
        ] {
            let e = Filter::from_params(&params(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn a_kind_list_selects_any_of_its_kinds_live_and_in_the_store() {
        let f = Filter::from_params(&params(&[("kind", "error,alert")])).unwrap();
        assert_eq!(f.kinds, [Kind::Error, Kind::Alert]);
        let evs: Vec<Event> = [Kind::Error, Kind::Log, Kind::Alert, Kind::Done]
            .into_iter()
            .map(|k| Event::new("backend", k, k.as_str()))
            .collect();
        let live: Vec<Kind> = evs
            .iter()
            .filter(|e| f.matches(e))
            .map(|e| e.kind)
            .collect();
        assert_eq!(live, [Kind::Error, Kind::Alert]);
        let (clause, args) = f.sql();
        assert!(clause.contains("kind IN (?, ?)"), "{clause}");
        assert_eq!(args.len(), 2);
        // The store answers the same question with the same events.
        let (c, _) = crate::store::testing::db_with(&evs);
        let page = crate::store::page(&c, &f, None, None, 10, 1000).unwrap();
        let mut stored: Vec<Kind> = page.rows.iter().map(|s| s.event.kind).collect();
        stored.reverse();
        assert_eq!(stored, [Kind::Error, Kind::Alert]);
        // One kind is still one kind.
        let f = Filter::from_params(&params(&[("kind", "done")])).unwrap();
        assert_eq!(f.kinds, [Kind::Done]);
        let page = crate::store::page(&c, &f, None, None, 10, 1000).unwrap();
        assert_eq!(page.rows.len(), 1);
    }

    #[test]
    fn empty_items_spaces_case_and_repeats_in_a_kind_list_are_forgiven() {
        for (v, want) in [
            ("error,,alert,", &[Kind::Error, Kind::Alert][..]),
            (" Error , ALERT ", &[Kind::Error, Kind::Alert]),
            (",done", &[Kind::Done]),
            ("error,error,alert,error", &[Kind::Error, Kind::Alert]),
            // Nothing but separators selects every kind, like an empty `kind=`.
            (",", &[]),
            (" , ,", &[]),
        ] {
            let f = Filter::from_params(&params(&[("kind", v)])).unwrap();
            assert_eq!(f.kinds, want, "kind={v:?}");
        }
        let every = Filter::from_params(&params(&[("kind", ",")])).unwrap();
        assert!(every.matches(&Event::new("x", Kind::Heartbeat, "beat")));
        assert_eq!(every.sql().0, "1");
    }

    #[test]
    fn an_unknown_kind_in_a_list_is_named() {
        let e = Filter::from_params(&params(&[("kind", "error,nope,alert")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid `kind` \"nope\" in \"error,nope,alert\""),
            "{e}"
        );
        assert!(
            e.contains("log, start, progress, done, error, attention, heartbeat, hook, alert"),
            "the known kinds are listed: {e}"
        );
        // Alone, the bad name is the whole value and said once.
        let e = Filter::from_params(&params(&[("kind", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("invalid `kind` \"nope\": use one of"), "{e}");
        // A list never slips a bad item through because a good one came first.
        assert!(Filter::from_params(&params(&[("kind", "error, errors")])).is_err());
    }
}
