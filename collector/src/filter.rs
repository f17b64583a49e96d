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
    /// Exact kind.
    pub kind: Option<Kind>,
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
            kind: text("kind").map(|v| parse_enum("kind", &v)).transpose()?,
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
            && self.kind.is_none_or(|k| k == ev.kind)
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
        eq(
            "kind",
            &self.kind.map(|k| k.as_str().to_owned()),
            &mut clause,
        );
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
}
