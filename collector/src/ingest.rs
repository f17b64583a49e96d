//! Parsing a `POST /v1/events` body: one event, a JSON array of events, or NDJSON.
//! A body is taken whole or not at all, and a refusal names the event and line.
//! Every event received, over HTTP, OTLP or from the event files, is then
//! [admitted](admit): redacted and cut to size before it is stored.

use serde_json::Value;
use swarm_obs::{Event, Redactor, Timestamp};

/// Longest source name kept, in bytes (the length file names made of it keep).
pub const MAX_SOURCE_BYTES: usize = 200;
/// Longest host name kept, in bytes (DNS allows 253).
pub const MAX_HOST_BYTES: usize = 253;
/// How far ahead of the collector's clock an event may claim to be: past this,
/// clock skew is no explanation, and the event would sort as the newest forever.
pub const MAX_AHEAD_MS: i64 = 24 * 3600 * 1000;
/// The field that keeps the time an event claimed when it was too far ahead.
pub const CLAIMED_TS_FIELD: &str = "claimed_ts";

/// Makes a received event fit to store and show: secrets redacted in every field
/// and texts capped (by `redactor`), the source and host cut to their caps, and a
/// time more than [`MAX_AHEAD_MS`] after `now` replaced by `now` (the claimed time
/// is kept in the `claimed_ts` field). Nothing is refused: the event is kept.
///
/// ```
/// use swarm_obs::{Event, Kind, Redactor, Timestamp};
/// use swarm_obs_collector::ingest::admit;
/// let mut ev = Event::new("w", Kind::Log, "token ghp_0123456789abcdefghijklmnopqrstuvwxyz");
/// ev.ts = "9999-01-01T00:00:00.000Z".parse().unwrap();
/// let now = Timestamp::now();
/// admit(&mut ev, &Redactor::default(), now);
/// assert_eq!(ev.msg, "token [REDACTED]");
/// assert_eq!(ev.ts, now);
/// assert_eq!(ev.fields["claimed_ts"], "9999-01-01T00:00:00.000Z");
/// ```
pub fn admit(ev: &mut Event, redactor: &Redactor, now: Timestamp) {
    redactor.redact_event(ev);
    cut(&mut ev.source, MAX_SOURCE_BYTES);
    if let Some(host) = &mut ev.host {
        cut(host, MAX_HOST_BYTES);
    }
    if ev.ts.unix_ms() > now.unix_ms().saturating_add(MAX_AHEAD_MS) {
        ev.fields
            .insert(CLAIMED_TS_FIELD.into(), Value::String(ev.ts.to_string()));
        ev.ts = now;
    }
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// Events accepted in one request at most.
pub const MAX_EVENTS_PER_REQUEST: usize = 100_000;

/// Content types accepted for event bodies.
pub const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/jsonlines",
];

/// Why a body was refused, with the HTTP status to answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 413 or 415.
    pub status: u16,
    /// What is wrong and where.
    pub message: String,
}

fn refuse(status: u16, message: String) -> Refusal {
    Refusal { status, message }
}

/// Checks the `Content-Type` header (parameters such as `charset` are ignored).
pub fn check_content_type(header: Option<&str>) -> Result<(), Refusal> {
    let expected = CONTENT_TYPES.join(", ");
    match header {
        None => Err(refuse(
            415,
            format!("missing Content-Type; send one of: {expected}"),
        )),
        Some(h) => {
            let mime = h
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if CONTENT_TYPES.contains(&mime.as_str()) {
                Ok(())
            } else {
                Err(refuse(
                    415,
                    format!(
                        "unsupported Content-Type {:?}; send one of: {expected}",
                        h.chars().take(100).collect::<String>()
                    ),
                ))
            }
        }
    }
}

/// 1-based line number of byte `at` in `body`.
fn line_of(body: &[u8], at: usize) -> usize {
    body[..at.min(body.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses a body: a JSON array of events, or one or more events separated by
/// whitespace (a single event and NDJSON are both that).
pub fn parse_events(body: &[u8]) -> Result<Vec<Event>, Refusal> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or_else(|| {
            refuse(
                400,
                "empty body: send one event, a JSON array of events, or NDJSON".into(),
            )
        })?;
    if body[start] == b'[' {
        return parse_array(body);
    }
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Event>();
    let mut begin = start;
    while let Some(item) = stream.next() {
        let n = out.len() + 1;
        let ev = item.map_err(|e| {
            refuse(
                400,
                format!(
                    "event {n} (line {}, column {}) is not a valid event: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        ev.validate().map_err(|e| {
            refuse(
                400,
                format!("event {n} (line {}): {e}", line_of(body, begin + 1)),
            )
        })?;
        if out.len() >= MAX_EVENTS_PER_REQUEST {
            return Err(too_many());
        }
        out.push(ev);
        begin = stream.byte_offset();
    }
    Ok(out)
}

fn too_many() -> Refusal {
    refuse(
        413,
        format!("more than {MAX_EVENTS_PER_REQUEST} events in one request; split the batch"),
    )
}

fn parse_array(body: &[u8]) -> Result<Vec<Event>, Refusal> {
    let items: Vec<Value> = serde_json::from_slice(body).map_err(|e| {
        refuse(
            400,
            format!(
                "body is not a JSON array of events (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    if items.len() > MAX_EVENTS_PER_REQUEST {
        return Err(too_many());
    }
    if items.is_empty() {
        return Err(refuse(400, "empty array: send at least one event".into()));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let ev: Event = serde_json::from_value(v)
                .map_err(|e| refuse(400, format!("array index {i} is not a valid event: {e}")))?;
            ev.validate()
                .map_err(|e| refuse(400, format!("array index {i}: {e}")))?;
            Ok(ev)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::Kind;

    fn line() -> String {
        Event::new("a", Kind::Log, "x").to_json_line()
    }

    #[test]
    fn one_array_or_ndjson() {
        assert_eq!(parse_events(line().as_bytes()).unwrap().len(), 1);
        let nd = format!("{}{}\n{}", line(), line(), line());
        assert_eq!(parse_events(nd.as_bytes()).unwrap().len(), 3);
        let arr = format!("[{},{}]", line().trim(), line().trim());
        assert_eq!(parse_events(arr.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn refusals_name_the_place() {
        let nd = format!("{}{}not json\n", line(), line());
        let r = parse_events(nd.as_bytes()).unwrap_err();
        assert_eq!(r.status, 400);
        assert!(r.message.contains("event 3 (line 3"), "{}", r.message);
        let bad = line().replace(r#""source":"a""#, r#""source":"""#);
        let nd = format!("{}{}", line(), bad);
        let r = parse_events(nd.as_bytes()).unwrap_err();
        assert!(
            r.message.contains("event 2 (line 2)") && r.message.contains("`source`"),
            "{}",
            r.message
        );
        let arr = format!("[{},{{}}]", line().trim());
        let r = parse_events(arr.as_bytes()).unwrap_err();
        assert!(r.message.contains("array index 1"), "{}", r.message);
        assert_eq!(parse_events(b"  \n").unwrap_err().status, 400);
        let trunc = line();
        assert_eq!(
            parse_events(&trunc.as_bytes()[..20]).unwrap_err().status,
            400
        );
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/x-ndjson")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=utf-8")).is_ok());
        assert_eq!(
            check_content_type(Some("text/html")).unwrap_err().status,
            415
        );
        assert_eq!(check_content_type(None).unwrap_err().status, 415);
    }
}
