//! OTLP ingest: `POST /v1/logs` and `POST /v1/metrics` (OTLP/HTTP, protobuf or
//! JSON), so Claude Code's own telemetry (`OTEL_EXPORTER_OTLP_ENDPOINT` pointed at
//! the collector) lands beside its hook events.
//!
//! Every log record and every gauge or sum data point becomes an event, stored and
//! streamed like any other: `source` from `service.name`, `host`/`pid` from
//! `host.name`/`process.pid`, and the OTLP attributes in `fields`. The Claude Code
//! attributes `session.id`, `prompt.id`, `tool_name`, `tool_use_id` and
//! `duration_ms` fill the event's own fields, which is what joins telemetry to hook
//! events of the same session, prompt and tool call. Claude Code's numbers arrive
//! as strings; `cost_usd`, token counts and `duration_ms` are stored as numbers.
//!
//! Records carry no id, so each event's id is derived from the record's content
//! ([`EventId::derived`]): a sender's retry of the same request is a duplicate,
//! not a second event. A record exported by swarm-obs keeps the id it names in
//! `swarm_obs.event.id`.

use serde_json::{Map, Value};
use swarm_obs::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, ExportMetricsServiceRequest, KeyValue, LogRecord,
    NumberDataPoint, Resource, TEMPORALITY_CUMULATIVE, TEMPORALITY_DELTA, any_value, metric,
    number_data_point,
};
use swarm_obs::otlp::{Message, any_to_json, level_of_severity};
use swarm_obs::{Event, EventId, Kind, Level, Redactor, Timestamp};

use crate::ingest::{MAX_EVENTS_PER_REQUEST, Refusal};
use crate::otlp_json;

/// Content types accepted on the OTLP endpoints.
pub const CONTENT_TYPES: [&str; 2] = ["application/x-protobuf", "application/json"];

/// The attribute holding the event name of a Claude Code record, as stored in
/// `fields` (always the full `claude_code.…` name).
pub const EVENT_NAME: &str = "event.name";

/// The `claude_code.api_request` event: one model call with cost and tokens.
pub use crate::store::API_REQUEST;

/// The two OTLP signals the collector accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// `/v1/logs`
    Logs,
    /// `/v1/metrics`
    Metrics,
}

/// The body encoding, from `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

/// How a request body is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not at all (`identity`, or no `Content-Encoding`).
    None,
    /// `gzip`, as OTLP senders send with `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`.
    Gzip,
}

/// Checks `Content-Type` (415 for anything but protobuf or JSON) and
/// `Content-Encoding` (415 for anything but identity and gzip).
pub fn encoding(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<(Encoding, Compression), Refusal> {
    let compression = match content_encoding.map(str::trim) {
        None | Some("") => Compression::None,
        Some(ce) if ce.eq_ignore_ascii_case("identity") => Compression::None,
        Some(ce) if ce.eq_ignore_ascii_case("gzip") || ce.eq_ignore_ascii_case("x-gzip") => {
            Compression::Gzip
        }
        Some(ce) => {
            return Err(Refusal {
                status: 415,
                message: format!(
                    "Content-Encoding {:?} is not supported; send gzip or uncompressed OTLP",
                    ce.chars().take(50).collect::<String>()
                ),
            });
        }
    };
    let mime = content_type
        .and_then(|h| h.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match mime.as_deref() {
        Some("application/x-protobuf") | Some("application/protobuf") => {
            Ok((Encoding::Protobuf, compression))
        }
        Some("application/json") => Ok((Encoding::Json, compression)),
        _ => Err(Refusal {
            status: 415,
            message: format!(
                "unsupported Content-Type {:?}; OTLP/HTTP takes {}",
                content_type
                    .unwrap_or("(none)")
                    .chars()
                    .take(100)
                    .collect::<String>(),
                CONTENT_TYPES.join(" or ")
            ),
        }),
    }
}

/// The body of a gzip request, refused with 413 as soon as it inflates past
/// `limit` (the body cap applies to what is decoded: a small bomb cannot expand
/// into memory) and with 400 when it is not gzip.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, Refusal> {
    use std::io::Read;
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let read = flate2::read::MultiGzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out);
    match read {
        Err(e) => Err(bad(format!("the gzip body cannot be decoded: {e}"))),
        Ok(_) if out.len() > limit => Err(Refusal {
            status: 413,
            message: format!(
                "the gzip body decodes to more than the {limit} byte cap; send smaller batches"
            ),
        }),
        Ok(_) => Ok(out),
    }
}

fn bad(message: String) -> Refusal {
    Refusal {
        status: 400,
        message,
    }
}

/// Decodes a body of `signal` in `encoding` into events, redacted and capped by
/// `redactor` (OTLP senders do not redact: a logged prompt may hold a secret).
pub fn parse(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
    redactor: &Redactor,
) -> Result<Vec<Event>, Refusal> {
    // Protobuf is dense: a few bytes of wire can decode into a few hundred bytes
    // of record. Count the records on the wire before decoding any of them.
    if encoding == Encoding::Protobuf {
        let path: &[&[u32]] = match signal {
            // resource_logs → scope_logs → log_records
            Signal::Logs => &[&[1], &[2], &[2]],
            // resource_metrics → scope_metrics → metrics → gauge | sum → data_points
            Signal::Metrics => &[&[1], &[2], &[2], &[5, 7], &[1]],
        };
        match count_on_wire(body, path) {
            Some(n) if n > MAX_EVENTS_PER_REQUEST => return Err(too_many_records()),
            Some(_) => {}
            None => {
                return Err(bad(
                    "body is not valid protobuf (truncated or malformed field)".into(),
                ));
            }
        }
    }
    let mut events = match (signal, encoding) {
        (Signal::Logs, Encoding::Protobuf) => log_events(
            &ExportLogsServiceRequest::decode(body)
                .map_err(|e| bad(format!("body is not an OTLP ExportLogsServiceRequest: {e}")))?,
        ),
        (Signal::Logs, Encoding::Json) => log_events(&otlp_json::logs(body).map_err(bad)?),
        (Signal::Metrics, Encoding::Protobuf) => {
            metric_events(&ExportMetricsServiceRequest::decode(body).map_err(|e| {
                bad(format!(
                    "body is not an OTLP ExportMetricsServiceRequest: {e}"
                ))
            })?)
        }
        (Signal::Metrics, Encoding::Json) => metric_events(&otlp_json::metrics(body).map_err(bad)?),
    };
    if events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(too_many_records());
    }
    let now = swarm_obs::Timestamp::now();
    for ev in &mut events {
        crate::ingest::admit(ev, redactor, now);
    }
    Ok(events)
}

fn too_many_records() -> Refusal {
    Refusal {
        status: 413,
        message: format!(
            "more than {MAX_EVENTS_PER_REQUEST} records in one request; export smaller batches"
        ),
    }
}

/// A protobuf varint at the start of `b`: its value and length.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// How many length-delimited fields sit at `path` (a field number choice per
/// level) in the protobuf message `b`, without decoding anything; `None` when the
/// wire format is broken.
fn count_on_wire(b: &[u8], path: &[&[u32]]) -> Option<usize> {
    let (here, rest) = path.split_first()?;
    let mut count = 0usize;
    let mut at = 0;
    while at < b.len() {
        let (key, n) = varint(&b[at..])?;
        at += n;
        let (field, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => at += varint(&b[at..])?.1,
            1 => at += 8,
            5 => at += 4,
            2 => {
                let (len, n) = varint(&b[at..])?;
                at += n;
                let end = at.checked_add(usize::try_from(len).ok()?)?;
                let sub = b.get(at..end)?;
                if here.contains(&field) {
                    count += if rest.is_empty() {
                        1
                    } else {
                        count_on_wire(sub, rest)?
                    };
                }
                at = end;
            }
            _ => return None,
        }
    }
    (at == b.len()).then_some(count)
}

/// FNV-1a: a stable content hash for derived ids (the same in every build).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn to_map(attrs: &[KeyValue], into: &mut Map<String, Value>) {
    for kv in attrs {
        if kv.key.is_empty() {
            continue;
        }
        let v = kv.value.as_ref().map_or(Value::Null, any_to_json);
        into.insert(kv.key.clone(), v);
    }
}

fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    match fields.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Rewrites a string number in `fields[key]` as a JSON number.
fn numeric(fields: &mut Map<String, Value>, key: &str, integer: bool) {
    let Some(v) = fields.get_mut(key) else { return };
    let n = match v {
        Value::String(s) if integer => s.trim().parse::<u64>().ok().map(Value::from),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        _ => None,
    };
    if let Some(n) = n {
        *v = n;
    }
}

struct Origin {
    source: String,
    host: Option<String>,
    pid: Option<u32>,
    attrs: Map<String, Value>,
    encoded: Vec<u8>,
}

fn origin(resource: Option<&Resource>) -> Origin {
    let mut attrs = Map::new();
    if let Some(r) = resource {
        to_map(&r.attributes, &mut attrs);
    }
    let source = text(&attrs, "service.name")
        .map(|s| s.chars().take(200).collect())
        .unwrap_or_else(|| "otlp".to_owned());
    Origin {
        source,
        host: text(&attrs, "host.name"),
        pid: attrs
            .get("process.pid")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .and_then(|p| u32::try_from(p).ok()),
        encoded: resource.map(Message::encode_to_vec).unwrap_or_default(),
        attrs,
    }
}

fn ts_of(nanos: &[u64]) -> Timestamp {
    nanos
        .iter()
        .find(|n| **n > 0)
        .map_or_else(Timestamp::now, |n| {
            Timestamp::from_unix_ms((n / 1_000_000).min(i64::MAX as u64) as i64)
        })
}

fn event(origin: &Origin, ts: Timestamp, hash: u64, kind: Kind, level: Level) -> Event {
    let mut ev = Event::from_process(origin.source.clone(), kind, "", "", 0);
    ev.id = EventId::derived(ts, hash);
    ev.ts = ts;
    ev.level = level;
    ev.host = origin.host.clone();
    ev.pid = origin.pid;
    ev
}

/// The record's event name, always with Claude Code's `claude_code.` prefix when
/// it is one of Claude Code's events.
fn event_name(rec: &LogRecord, fields: &Map<String, Value>, source: &str) -> Option<String> {
    let body = match rec.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    };
    let candidates = [
        Some(rec.event_name.clone()).filter(|s| !s.is_empty()),
        text(fields, EVENT_NAME),
        body,
    ];
    if let Some(full) = candidates
        .iter()
        .flatten()
        .find(|c| c.starts_with("claude_code."))
    {
        return Some(full.clone());
    }
    let short = candidates[..2].iter().flatten().next()?.clone();
    if source == "claude-code" && !short.contains('.') {
        return Some(format!("claude_code.{short}"));
    }
    Some(short)
}

fn summary(name: &str, f: &Map<String, Value>, body: Option<String>) -> String {
    let get = |k: &str| text(f, k).unwrap_or_else(|| "?".to_owned());
    match name {
        "claude_code.api_request" => format!(
            "API request {}: ${:.4}, {} in / {} out tokens, {} ms",
            get("model"),
            f.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
            get("input_tokens"),
            get("output_tokens"),
            get("duration_ms"),
        ),
        "claude_code.api_error" => format!(
            "API error {}: {} (status {})",
            get("model"),
            get("error"),
            get("status_code")
        ),
        "claude_code.tool_result" => format!(
            "Tool {} {} in {} ms",
            get("tool_name"),
            if text(f, "success").as_deref() == Some("false") {
                "failed"
            } else {
                "succeeded"
            },
            get("duration_ms")
        ),
        "claude_code.tool_decision" => format!(
            "Tool {} {} ({})",
            get("tool_name"),
            get("decision"),
            get("source")
        ),
        "claude_code.user_prompt" => {
            format!("Prompt submitted ({} chars)", get("prompt_length"))
        }
        _ => body
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| name.to_owned()),
    }
}

fn any_text(v: Option<&AnyValue>) -> Option<String> {
    let v = v?;
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        Some(_) => Some(any_to_json(v).to_string()),
        None => None,
    }
}

/// Every log record of a request as an event.
pub fn log_events(req: &ExportLogsServiceRequest) -> Vec<Event> {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        let origin = origin(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            for rec in &sl.log_records {
                out.push(log_event(&origin, rec));
            }
        }
    }
    out
}

fn log_event(origin: &Origin, rec: &LogRecord) -> Event {
    let mut fields = Map::new();
    to_map(&rec.attributes, &mut fields);
    let name = event_name(rec, &fields, &origin.source);
    numeric(&mut fields, "cost_usd", false);
    for k in [
        "duration_ms",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "prompt_length",
        "status_code",
    ] {
        numeric(&mut fields, k, true);
    }
    if let Some(n) = &name {
        fields.insert(EVENT_NAME.into(), Value::String(n.clone()));
    }
    for (k, v) in &origin.attrs {
        fields.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let ts = ts_of(&[rec.time_unix_nano, rec.observed_time_unix_nano]);
    let failed = name.as_deref() == Some("claude_code.api_error");
    let mut level = level_of_severity(rec.severity_number)
        .or_else(|| severity_text_level(&rec.severity_text))
        .unwrap_or(Level::Info);
    if failed {
        level = Level::Error;
    } else if name.as_deref() == Some("claude_code.tool_result")
        && text(&fields, "success").as_deref() == Some("false")
    {
        level = level.max(Level::Warn);
    }
    let kind = if level == Level::Error {
        Kind::Error
    } else {
        Kind::Log
    };
    let hash = fnv1a(&[&origin.encoded, &rec.encode_to_vec()]);
    let mut ev = event(origin, ts, hash, kind, level);
    // A record exported by a swarm-obs collector keeps its event's id, so relaying
    // between collectors (or a collector exporting to itself) deduplicates.
    if let Some(id) = text(&fields, "swarm_obs.event.id").and_then(|i| i.parse().ok()) {
        ev.id = id;
    }
    ev.msg = summary(
        name.as_deref().unwrap_or("log"),
        &fields,
        any_text(rec.body.as_ref()),
    );
    ev.session = text(&fields, "session.id");
    ev.prompt_id = text(&fields, "prompt.id");
    ev.tool = text(&fields, "tool_name");
    ev.tool_use_id = text(&fields, "tool_use_id");
    ev.duration_ms = fields.get("duration_ms").and_then(Value::as_u64);
    ev.fields = fields;
    ev
}

fn severity_text_level(t: &str) -> Option<Level> {
    Some(match t.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Level::Trace,
        "DEBUG" => Level::Debug,
        "INFO" => Level::Info,
        "WARN" | "WARNING" => Level::Warn,
        "ERROR" | "FATAL" => Level::Error,
        _ => return None,
    })
}

/// Every gauge and sum data point of a request as an event (`log`, level
/// `debug`), with `metric.name`, `metric.unit`, `metric.value` and, for sums,
/// `metric.temporality` in `fields`.
pub fn metric_events(req: &ExportMetricsServiceRequest) -> Vec<Event> {
    let mut out = Vec::new();
    for rm in &req.resource_metrics {
        let origin = origin(rm.resource.as_ref());
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let (points, temporality) = match &m.data {
                    Some(metric::Data::Gauge(g)) => (&g.data_points, None),
                    Some(metric::Data::Sum(s)) => (&s.data_points, Some(s.aggregation_temporality)),
                    None => continue,
                };
                for p in points {
                    out.push(metric_event(&origin, m, p, temporality));
                }
            }
        }
    }
    out
}

fn metric_event(
    origin: &Origin,
    m: &swarm_obs::otlp::proto::Metric,
    p: &NumberDataPoint,
    temporality: Option<i32>,
) -> Event {
    let mut fields = Map::new();
    to_map(&p.attributes, &mut fields);
    let value = match p.value {
        Some(number_data_point::Value::AsDouble(d)) => {
            serde_json::Number::from_f64(d).map_or(Value::Null, Value::Number)
        }
        Some(number_data_point::Value::AsInt(i)) => Value::from(i),
        None => Value::Null,
    };
    let labels: Vec<String> = fields
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "session.id"
                    | "user.id"
                    | "user.account_uuid"
                    | "organization.id"
                    | "terminal.type"
                    | "user.email"
            )
        })
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    let mut msg = format!("{} = {value}", m.name);
    if !m.unit.is_empty() {
        msg.push(' ');
        msg.push_str(&m.unit);
    }
    if !labels.is_empty() {
        msg.push_str(&format!(" ({})", labels.join(", ")));
    }
    let session = text(&fields, "session.id");
    let prompt_id = text(&fields, "prompt.id");
    fields.insert("metric.name".into(), Value::String(m.name.clone()));
    if !m.unit.is_empty() {
        fields.insert("metric.unit".into(), Value::String(m.unit.clone()));
    }
    fields.insert("metric.value".into(), value);
    if let Some(t) = temporality {
        let t = match t {
            TEMPORALITY_DELTA => "delta",
            TEMPORALITY_CUMULATIVE => "cumulative",
            _ => "unspecified",
        };
        fields.insert("metric.temporality".into(), Value::String(t.into()));
    }
    for (k, v) in &origin.attrs {
        fields.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let ts = ts_of(&[p.time_unix_nano]);
    let hash = fnv1a(&[&origin.encoded, m.name.as_bytes(), &p.encode_to_vec()]);
    let mut ev = event(origin, ts, hash, Kind::Log, Level::Debug);
    ev.msg = msg;
    ev.session = session;
    ev.prompt_id = prompt_id;
    ev.fields = fields;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::otlp::proto::{ResourceLogs, ScopeLogs};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue::new(k, AnyValue::string(v))
    }

    fn claude_request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "claude-code"), kv("host.name", "h")],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![LogRecord {
                        time_unix_nano: 1_700_000_000_123_000_000,
                        body: Some(AnyValue::string("claude_code.api_request")),
                        attributes: vec![
                            kv("event.name", "api_request"),
                            kv("session.id", "s-1"),
                            kv("prompt.id", "p-1"),
                            kv("model", "claude-sonnet"),
                            kv("cost_usd", "0.0125"),
                            kv("input_tokens", "1200"),
                            kv("output_tokens", "300"),
                            kv("duration_ms", "2100"),
                        ],
                        ..LogRecord::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn an_api_request_becomes_a_joined_event() {
        let req = claude_request();
        let evs = log_events(&req);
        assert_eq!(evs.len(), 1);
        let ev = &evs[0];
        assert_eq!(ev.source, "claude-code");
        assert_eq!(ev.host.as_deref(), Some("h"));
        assert_eq!(ev.session.as_deref(), Some("s-1"));
        assert_eq!(ev.prompt_id.as_deref(), Some("p-1"));
        assert_eq!(ev.duration_ms, Some(2100));
        assert_eq!(ev.ts.unix_ms(), 1_700_000_000_123);
        assert_eq!(ev.fields[EVENT_NAME], API_REQUEST);
        assert_eq!(ev.fields["cost_usd"], 0.0125);
        assert_eq!(ev.fields["input_tokens"], 1200);
        assert!(ev.msg.contains("$0.0125"), "{}", ev.msg);
        ev.validate().unwrap();
        // The same record delivered twice has the same id; protobuf and JSON agree.
        assert_eq!(log_events(&req)[0].id, ev.id);
        let body = req.encode_to_vec();
        let again = parse(Signal::Logs, Encoding::Protobuf, &body, &redactor()).unwrap();
        assert_eq!(again[0].id, ev.id);
        assert_eq!(again[0].fields, ev.fields, "nothing here is secret");
    }

    #[test]
    fn an_exported_event_keeps_its_id_when_ingested() {
        let ev = Event::new("w", Kind::Log, "relayed");
        let req = swarm_obs::otlp::logs_request([&ev]);
        let back = log_events(&req);
        assert_eq!(back[0].id, ev.id);
        assert_eq!(back[0].msg, "relayed");
        assert_eq!(back[0].source, "w");
    }

    #[test]
    fn gzip_bodies_are_decoded_within_the_cap() {
        use std::io::Write;
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(gunzip(&gz(b"hello"), 5).unwrap(), b"hello");
        assert_eq!(gunzip(&gz(b""), 5).unwrap(), b"");
        // One byte over the cap once decoded: 413, however small the body.
        let bomb = gz(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 1 << 14, "{}", bomb.len());
        assert_eq!(gunzip(&bomb, (1 << 20) - 1).unwrap_err().status, 413);
        for garbage in [&b"\x1f\x8b"[..], b"not gzip", b"\x1f\x8b\x08\x00garbage"] {
            assert_eq!(
                gunzip(garbage, 1 << 20).unwrap_err().status,
                400,
                "{garbage:?}"
            );
        }
        let cut = gz(b"a longer body that is cut short");
        assert_eq!(
            gunzip(&cut[..cut.len() - 6], 1 << 20).unwrap_err().status,
            400
        );
    }

    #[test]
    fn bad_bodies_and_types_are_refused() {
        assert_eq!(encoding(Some("text/plain"), None).unwrap_err().status, 415);
        assert_eq!(encoding(None, None).unwrap_err().status, 415);
        assert_eq!(
            encoding(Some("application/x-protobuf"), Some("br"))
                .unwrap_err()
                .status,
            415
        );
        assert_eq!(
            encoding(Some("application/x-protobuf"), Some("GZIP")).unwrap(),
            (Encoding::Protobuf, Compression::Gzip)
        );
        assert_eq!(
            encoding(Some("application/json; charset=utf-8"), None).unwrap(),
            (Encoding::Json, Compression::None)
        );
        let r = redactor();
        let e = parse(
            Signal::Logs,
            Encoding::Protobuf,
            b"\xff\xff\xff garbage",
            &r,
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
        let e = parse(Signal::Metrics, Encoding::Json, b"{", &r).unwrap_err();
        assert_eq!(e.status, 400);
        // Truncated protobuf: refused, never a panic.
        let body = claude_request().encode_to_vec();
        assert!(
            parse(
                Signal::Logs,
                Encoding::Protobuf,
                &body[..body.len() / 2],
                &r
            )
            .is_err()
        );
        // An empty request is valid OTLP and holds nothing.
        assert!(
            parse(Signal::Logs, Encoding::Protobuf, b"", &r)
                .unwrap()
                .is_empty()
        );
    }

    fn redactor() -> Redactor {
        Redactor::new(swarm_obs::RedactConfig::default())
    }

    #[test]
    fn records_are_counted_on_the_wire_before_decoding() {
        let req = claude_request();
        let body = req.encode_to_vec();
        assert_eq!(count_on_wire(&body, &[&[1], &[2], &[2]]), Some(1));
        assert_eq!(
            count_on_wire(&body[..body.len() - 1], &[&[1], &[2], &[2]]),
            None
        );
        // Many empty records: two bytes of wire each, refused before decoding.
        let scope = {
            let mut s = Vec::new();
            for _ in 0..=MAX_EVENTS_PER_REQUEST {
                s.extend_from_slice(&[0x12, 0x00]);
            }
            s
        };
        let field = |tag: u8, inner: &[u8]| {
            let mut out = vec![tag];
            let mut len = inner.len() as u64;
            while len >= 0x80 {
                out.push((len as u8) | 0x80);
                len >>= 7;
            }
            out.push(len as u8);
            out.extend_from_slice(inner);
            out
        };
        let body = field(0x0a, &field(0x12, &scope));
        let e = parse(Signal::Logs, Encoding::Protobuf, &body, &redactor()).unwrap_err();
        assert_eq!(e.status, 413, "{}", e.message);
    }

    #[test]
    fn secrets_in_records_are_redacted() {
        let mut req = claude_request();
        let rec = &mut req.resource_logs[0].scope_logs[0].log_records[0];
        rec.attributes.push(kv(
            "prompt",
            "use ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnop please",
        ));
        let body = req.encode_to_vec();
        let evs = parse(Signal::Logs, Encoding::Protobuf, &body, &redactor()).unwrap();
        let prompt = evs[0].fields["prompt"].as_str().unwrap();
        assert!(!prompt.contains("sk-ant-api03"), "{prompt}");
        assert!(prompt.contains(swarm_obs::REDACTED), "{prompt}");
        assert_eq!(
            evs[0].fields["input_tokens"], 1200,
            "token counts are not secrets"
        );
    }
}
