//! Events as OTLP log records: severity from the level, body = `msg`, and attributes
//! named after the OpenTelemetry semantic conventions where one exists.
//!
//! | event | OTLP |
//! |---|---|
//! | `source`, `host`, `pid` | resource `service.name`, `host.name`, `process.pid` |
//! | `ts` | `time_unix_nano` |
//! | `level` | `severity_number` / `severity_text` |
//! | `msg` | `body` |
//! | `kind` | `event_name` `swarm_obs.<kind>` and attribute `swarm_obs.kind` |
//! | `id` | `swarm_obs.event.id` (lets a backend drop re-deliveries) |
//! | `session`, `prompt_id` | `session.id`, `prompt.id` (as Claude Code's own telemetry names them) |
//! | `agent`, `agent_type` | `gen_ai.agent.id`, `gen_ai.agent.name` |
//! | `tool`, `tool_use_id` | `gen_ai.tool.name`, `gen_ai.tool.call.id` |
//! | `hook`, `task`, `progress`, `duration_ms` | `swarm_obs.hook`, `swarm_obs.task`, `swarm_obs.progress.done`/`.total`, `swarm_obs.duration_ms` |
//! | `fields` | one attribute each, under the field's own name |
//!
//! The raw hook `payload` is not exported: it can be large, and the fields above
//! already carry what it says.

use std::collections::HashMap;

use serde_json::Value;

use super::proto::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, KeyValueList,
    LogRecord, Resource, ResourceLogs, ScopeLogs, any_value,
};
use crate::{Event, Level};

/// The instrumentation scope name on everything swarm-obs exports.
pub const SCOPE_NAME: &str = "swarm-obs";

/// The OTLP `SeverityNumber` of a level.
pub fn severity_number(level: Level) -> i32 {
    match level {
        Level::Trace => 1,
        Level::Debug => 5,
        Level::Info => 9,
        Level::Warn => 13,
        Level::Error => 17,
    }
}

/// The level of an OTLP `SeverityNumber`; 0 (unspecified) is `None`.
pub fn level_of_severity(number: i32) -> Option<Level> {
    Some(match number {
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17.. => Level::Error,
        _ => return None,
    })
}

/// A JSON value as an OTLP value (`null` becomes an empty value).
pub fn json_to_any(v: &Value) -> AnyValue {
    let value = match v {
        Value::Null => None,
        Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::String(s) => Some(any_value::Value::StringValue(s.clone())),
        Value::Array(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(json_to_any).collect(),
        })),
        Value::Object(map) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: map
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), json_to_any(v)))
                .collect(),
        })),
    };
    AnyValue { value }
}

/// An OTLP value as JSON: bytes become lowercase hex, a non-finite float `null`.
pub fn any_to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map_or(Value::Null, any_to_json);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
        Some(any_value::Value::BytesValue(b)) => {
            Value::String(b.iter().map(|x| format!("{x:02x}")).collect())
        }
    }
}

fn string_attr(out: &mut Vec<KeyValue>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        out.push(KeyValue::new(key, AnyValue::string(v.clone())));
    }
}

/// One event as a log record (the resource attributes go in [`resource_of`]).
pub fn log_record(ev: &Event) -> LogRecord {
    let mut attrs = Vec::with_capacity(8 + ev.fields.len());
    attrs.push(KeyValue::new(
        "swarm_obs.event.id",
        AnyValue::string(ev.id.to_string()),
    ));
    attrs.push(KeyValue::new(
        "swarm_obs.kind",
        AnyValue::string(ev.kind.as_str()),
    ));
    string_attr(&mut attrs, "session.id", &ev.session);
    string_attr(&mut attrs, "prompt.id", &ev.prompt_id);
    string_attr(&mut attrs, "gen_ai.agent.id", &ev.agent);
    string_attr(&mut attrs, "gen_ai.agent.name", &ev.agent_type);
    string_attr(&mut attrs, "gen_ai.tool.name", &ev.tool);
    string_attr(&mut attrs, "gen_ai.tool.call.id", &ev.tool_use_id);
    string_attr(&mut attrs, "swarm_obs.hook", &ev.hook);
    string_attr(&mut attrs, "swarm_obs.task", &ev.task);
    if let Some(p) = ev.progress {
        attrs.push(KeyValue::new(
            "swarm_obs.progress.done",
            AnyValue::int(p.done.min(i64::MAX as u64) as i64),
        ));
        attrs.push(KeyValue::new(
            "swarm_obs.progress.total",
            AnyValue::int(p.total.min(i64::MAX as u64) as i64),
        ));
    }
    if let Some(d) = ev.duration_ms {
        attrs.push(KeyValue::new(
            "swarm_obs.duration_ms",
            AnyValue::int(d.min(i64::MAX as u64) as i64),
        ));
    }
    for (k, v) in &ev.fields {
        attrs.push(KeyValue::new(k.clone(), json_to_any(v)));
    }
    let nanos = (ev.ts.unix_ms().max(0) as u64).saturating_mul(1_000_000);
    LogRecord {
        time_unix_nano: nanos,
        observed_time_unix_nano: nanos,
        severity_number: severity_number(ev.level),
        severity_text: ev.level.label().to_owned(),
        body: Some(AnyValue::string(ev.msg.clone())),
        attributes: attrs,
        event_name: format!("swarm_obs.{}", ev.kind),
        ..LogRecord::default()
    }
}

/// The resource an event came from: `service.name`, `host.name`, `process.pid`.
pub fn resource_of(ev: &Event) -> Resource {
    let mut attributes = vec![KeyValue::new(
        "service.name",
        AnyValue::string(ev.source.clone()),
    )];
    string_attr(&mut attributes, "host.name", &ev.host);
    if let Some(pid) = ev.pid {
        attributes.push(KeyValue::new("process.pid", AnyValue::int(i64::from(pid))));
    }
    Resource { attributes }
}

/// The instrumentation scope of everything swarm-obs exports.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        attributes: Vec::new(),
    }
}

/// A logs request for `events`, one resource per (source, host, pid), records in
/// the order given.
pub fn logs_request<'a>(events: impl IntoIterator<Item = &'a Event>) -> ExportLogsServiceRequest {
    let mut index: HashMap<(&str, Option<&str>, Option<u32>), usize> = HashMap::new();
    let mut groups: Vec<(&Event, Vec<LogRecord>)> = Vec::new();
    for ev in events {
        let key = (ev.source.as_str(), ev.host.as_deref(), ev.pid);
        let i = *index.entry(key).or_insert_with(|| {
            groups.push((ev, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(log_record(ev));
    }
    ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|(first, log_records)| ResourceLogs {
                resource: Some(resource_of(first)),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope()),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::Kind;

    fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
    }

    #[test]
    fn an_event_maps_to_semantic_conventions() {
        let mut ev = Event::new("backend", Kind::Error, "disk full");
        ev.session = Some("s-1".into());
        ev.tool = Some("Bash".into());
        ev.fields.insert("rows".into(), Value::from(42));
        ev.fields
            .insert("nested".into(), serde_json::json!({"a": [1, "x"]}));
        let req = logs_request([&ev]);
        let bytes = req.encode_to_vec();
        let back = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, req);
        let rl = &back.resource_logs[0];
        let res = &rl.resource.as_ref().unwrap().attributes;
        assert_eq!(
            attr(res, "service.name"),
            Some(&AnyValue::string("backend"))
        );
        assert!(attr(res, "host.name").is_some());
        assert_eq!(
            attr(res, "process.pid"),
            Some(&AnyValue::int(i64::from(std::process::id())))
        );
        let rec = &rl.scope_logs[0].log_records[0];
        assert_eq!(rec.severity_number, 17);
        assert_eq!(rec.severity_text, "ERROR");
        assert_eq!(rec.body, Some(AnyValue::string("disk full")));
        assert_eq!(rec.event_name, "swarm_obs.error");
        assert_eq!(
            rec.time_unix_nano,
            ev.ts.unix_ms() as u64 * 1_000_000,
            "nanoseconds"
        );
        assert_eq!(
            attr(&rec.attributes, "session.id"),
            Some(&AnyValue::string("s-1"))
        );
        assert_eq!(
            attr(&rec.attributes, "gen_ai.tool.name"),
            Some(&AnyValue::string("Bash"))
        );
        assert_eq!(attr(&rec.attributes, "rows"), Some(&AnyValue::int(42)));
        let nested = any_to_json(attr(&rec.attributes, "nested").unwrap());
        assert_eq!(nested, serde_json::json!({"a": [1, "x"]}));
    }

    #[test]
    fn events_group_by_resource_in_order() {
        let a1 = Event::new("a", Kind::Log, "1");
        let b = Event::new("b", Kind::Log, "2");
        let a2 = Event::new("a", Kind::Log, "3");
        let req = logs_request([&a1, &b, &a2]);
        assert_eq!(req.resource_logs.len(), 2);
        let bodies: Vec<_> = req.resource_logs[0].scope_logs[0]
            .log_records
            .iter()
            .map(|r| r.body.clone().unwrap())
            .collect();
        assert_eq!(bodies, [AnyValue::string("1"), AnyValue::string("3")]);
    }

    #[test]
    fn severities_round_trip() {
        for l in [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
        ] {
            assert_eq!(level_of_severity(severity_number(l)), Some(l));
        }
        assert_eq!(level_of_severity(0), None);
        assert_eq!(level_of_severity(24), Some(Level::Error));
    }
}
