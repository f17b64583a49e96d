//! Which events a tail shows: sources and messages by regex, level, kind, session
//! and age. The same selection applies to events from files and from the collector.

use regex::{Regex, RegexBuilder};
use swarm_obs::{Event, Kind, Level, Timestamp};

/// Longest regex accepted, in bytes, and the compiled size allowed: a typo must not
/// cost minutes or gigabytes.
const MAX_PATTERN: usize = 1024;
const MAX_COMPILED: usize = 1 << 20;

/// Which events to show. Every condition that is set must hold.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// The source matches one of these (all sources when empty).
    pub sources: Vec<Regex>,
    /// The source matches none of these.
    pub exclude_sources: Vec<Regex>,
    /// The message matches one of these (all messages when empty).
    pub grep: Vec<Regex>,
    /// The message matches none of these.
    pub exclude_grep: Vec<Regex>,
    /// At least this level.
    pub level: Option<Level>,
    /// One of these kinds (all kinds when empty).
    pub kinds: Vec<Kind>,
    /// The session id starts with this.
    pub session: Option<String>,
    /// At or after this time.
    pub since: Option<Timestamp>,
    /// Also follow sessions' states (the collector's `event: session` messages);
    /// for viewers that show sessions, not a filter.
    pub states: bool,
}

impl Selection {
    /// Whether every event is shown (no filter at all).
    pub fn is_everything(&self) -> bool {
        self.sources.is_empty()
            && self.exclude_sources.is_empty()
            && self.grep.is_empty()
            && self.exclude_grep.is_empty()
            && self.level.is_none()
            && self.kinds.is_empty()
            && self.session.is_none()
            && self.since.is_none()
    }

    /// Whether `ev` is shown.
    pub fn matches(&self, ev: &Event) -> bool {
        let any = |res: &[Regex], text: &str| res.iter().any(|re| re.is_match(text));
        (self.sources.is_empty() || any(&self.sources, &ev.source))
            && !any(&self.exclude_sources, &ev.source)
            && (self.grep.is_empty() || any(&self.grep, &ev.msg))
            && !any(&self.exclude_grep, &ev.msg)
            && self.level.is_none_or(|l| ev.level >= l)
            && (self.kinds.is_empty() || self.kinds.contains(&ev.kind))
            && self
                .session
                .as_deref()
                .is_none_or(|s| ev.session.as_deref().is_some_and(|x| x.starts_with(s)))
            && self.since.is_none_or(|t| ev.ts >= t)
    }

    /// The collector query parameters that select a superset of these events, so
    /// the collector sends less and [`matches`](Self::matches) decides the rest.
    pub fn server_params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(l) = self.level {
            p.push(("level", l.as_str().to_owned()));
        }
        if let [k] = self.kinds.as_slice() {
            p.push(("kind", k.as_str().to_owned()));
        }
        if let Some(t) = self.since {
            p.push(("since", t.to_string()));
        }
        p
    }
}

/// Compiles a regex given on the command line, naming the option at fault.
pub fn regex(option: &str, pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!(
            "{option}: the pattern is {} bytes; at most {MAX_PATTERN} are accepted",
            pattern.len()
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(MAX_COMPILED)
        .build()
        .map_err(|e| format!("{option}: invalid regex {pattern:?}: {e}"))
}

/// Parses a level name (`trace` … `error`, any case).
pub fn parse_level(s: &str) -> Result<Level, String> {
    [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ]
    .into_iter()
    .find(|l| {
        l.as_str().eq_ignore_ascii_case(s.trim())
            || (s.eq_ignore_ascii_case("warning") && *l == Level::Warn)
    })
    .ok_or_else(|| format!("unknown level {s:?}: use trace, debug, info, warn or error"))
}

/// Parses a kind name (`log`, `start`, `progress`, …, any case).
pub fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown kind {s:?}: use one of {}", names.join(", "))
        })
}

/// Parses `--since`: an age such as `90s`, `10m`, `2h`, `1d`, `1h30m`, or an RFC 3339
/// time, relative to `now`.
pub fn parse_since(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let bad = || {
        format!(
            "invalid --since {s:?}: use an age such as 30s, 10m, 2h, 1d or 1h30m, or an RFC 3339 time such as 2026-01-05T14:00:00Z"
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut total_ms: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms: i64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(bad)?;
    }
    Ok(Timestamp::from_unix_ms(
        now.unix_ms().saturating_sub(total_ms).max(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, kind: Kind, msg: &str) -> Event {
        Event::new(source, kind, msg)
    }

    #[test]
    fn every_condition_filters() {
        let mut sel = Selection {
            sources: vec![regex("s", "^back").unwrap()],
            ..Selection::default()
        };
        assert!(sel.matches(&event("backend", Kind::Log, "x")));
        assert!(!sel.matches(&event("frontend", Kind::Log, "x")));
        sel.exclude_sources = vec![regex("x", "end$").unwrap()];
        assert!(!sel.matches(&event("backend", Kind::Log, "x")));

        let sel = Selection {
            grep: vec![regex("g", "disk (full|gone)").unwrap()],
            exclude_grep: vec![regex("v", "sdb").unwrap()],
            ..Selection::default()
        };
        assert!(sel.matches(&event("a", Kind::Log, "disk full on sda")));
        assert!(!sel.matches(&event("a", Kind::Log, "disk full on sdb")));
        assert!(!sel.matches(&event("a", Kind::Log, "all fine")));

        let sel = Selection {
            level: Some(Level::Warn),
            kinds: vec![Kind::Error, Kind::Alert],
            ..Selection::default()
        };
        assert!(sel.matches(&event("a", Kind::Error, "boom")));
        assert!(!sel.matches(&event("a", Kind::Alert, "recovered")));
        assert!(!sel.matches(&event("a", Kind::Attention, "look")));

        let mut ev = event("a", Kind::Hook, "PreToolUse");
        ev.session = Some("98717c42-e11c".into());
        let sel = Selection {
            session: Some("98717c42".into()),
            ..Selection::default()
        };
        assert!(sel.matches(&ev));
        assert!(!sel.matches(&event("a", Kind::Hook, "no session")));
    }

    #[test]
    fn since_takes_ages_and_times() {
        let now: Timestamp = "2026-01-05T14:00:00.000Z".parse().unwrap();
        let ago = |s| parse_since(s, now).unwrap().to_string();
        assert_eq!(ago("10m"), "2026-01-05T13:50:00.000Z");
        assert_eq!(ago("1h30m"), "2026-01-05T12:30:00.000Z");
        assert_eq!(ago("1d"), "2026-01-04T14:00:00.000Z");
        assert_eq!(ago("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00.000Z");
        for bad in ["", "10", "m", "10x", "-5m", "99999999999999999999d"] {
            let e = parse_since(bad, now).unwrap_err();
            assert!(e.contains("--since"), "{bad}: {e}");
        }
    }

    #[test]
    fn names_and_patterns_are_checked() {
        assert_eq!(parse_level("WARN").unwrap(), Level::Warn);
        assert!(parse_level("loud").unwrap_err().contains("loud"));
        assert_eq!(parse_kind("done").unwrap(), Kind::Done);
        assert!(parse_kind("nope").unwrap_err().contains("alert"));
        assert!(regex("--grep", "(").unwrap_err().contains("--grep"));
        assert!(regex("--grep", &"a".repeat(2000)).is_err());
    }
}
