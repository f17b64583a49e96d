//! OTLP/JSON request bodies (`application/json` on `/v1/logs` and `/v1/metrics`)
//! read into the same messages protobuf bodies decode to, so one mapping serves
//! both encodings.
//!
//! Follows the OTLP/JSON rules: lowerCamelCase field names (snake_case is accepted
//! too), 64-bit integers as strings or numbers, enums as numbers, and trace and
//! span ids as hex (ignored here).

use serde_json::{Map, Value};
use swarm_obs::otlp::proto::{
    AnyValue, ArrayValue, ExportLogsServiceRequest, ExportMetricsServiceRequest, Gauge, KeyValue,
    KeyValueList, LogRecord, Metric, NumberDataPoint, Resource, ResourceLogs, ResourceMetrics,
    ScopeLogs, ScopeMetrics, Sum, any_value, metric, number_data_point,
};

type Obj = Map<String, Value>;

/// The field `camel` (or its snake_case spelling `snake`) of an object.
fn field<'a>(o: &'a Obj, camel: &str, snake: &str) -> Option<&'a Value> {
    o.get(camel)
        .or_else(|| o.get(snake))
        .filter(|v| !v.is_null())
}

fn objects<'a>(o: &'a Obj, camel: &str, snake: &str, at: &str) -> Result<Vec<&'a Obj>, String> {
    match field(o, camel, snake) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_object()
                    .ok_or_else(|| format!("{at}.{camel}[{i}] is not an object"))
            })
            .collect(),
        Some(_) => Err(format!("{at}.{camel} is not an array")),
    }
}

fn string(o: &Obj, camel: &str, snake: &str) -> String {
    field(o, camel, snake)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A 64-bit integer given as a JSON number or a decimal string.
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn uint(o: &Obj, camel: &str, snake: &str) -> u64 {
    field(o, camel, snake)
        .and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .unwrap_or(0)
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // Non-finite doubles are strings in OTLP/JSON.
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn any_value(v: &Value, depth: usize) -> AnyValue {
    let Some(o) = v.as_object() else {
        return AnyValue { value: None };
    };
    if depth > 32 {
        return AnyValue { value: None };
    }
    let value = if let Some(s) = field(o, "stringValue", "string_value") {
        s.as_str()
            .map(|s| any_value::Value::StringValue(s.to_owned()))
    } else if let Some(b) = field(o, "boolValue", "bool_value") {
        b.as_bool().map(any_value::Value::BoolValue)
    } else if let Some(i) = field(o, "intValue", "int_value") {
        int(i).map(any_value::Value::IntValue)
    } else if let Some(d) = field(o, "doubleValue", "double_value") {
        float(d).map(any_value::Value::DoubleValue)
    } else if let Some(a) = field(o, "arrayValue", "array_value") {
        let values = a
            .get("values")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(|v| any_value(v, depth + 1)).collect())
            .unwrap_or_default();
        Some(any_value::Value::ArrayValue(ArrayValue { values }))
    } else if let Some(kv) = field(o, "kvlistValue", "kvlist_value") {
        let values = kv
            .get("values")
            .and_then(Value::as_array)
            .map(|items| key_values(items, depth + 1))
            .unwrap_or_default();
        Some(any_value::Value::KvlistValue(KeyValueList { values }))
    } else if let Some(b) = field(o, "bytesValue", "bytes_value") {
        // Base64 in OTLP/JSON; kept as its text, which is what a viewer would show.
        b.as_str()
            .map(|s| any_value::Value::StringValue(s.to_owned()))
    } else {
        None
    };
    AnyValue { value }
}

fn key_values(items: &[Value], depth: usize) -> Vec<KeyValue> {
    items
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?.to_owned();
            let value = kv.get("value").map(|v| any_value(v, depth));
            Some(KeyValue { key, value })
        })
        .collect()
}

fn attributes(o: &Obj) -> Vec<KeyValue> {
    o.get("attributes")
        .and_then(Value::as_array)
        .map(|a| key_values(a, 0))
        .unwrap_or_default()
}

fn resource(o: &Obj) -> Option<Resource> {
    o.get("resource")
        .and_then(Value::as_object)
        .map(|r| Resource {
            attributes: attributes(r),
        })
}

fn top(body: &[u8]) -> Result<Obj, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err("body is not a JSON object".into()),
        Err(e) => Err(format!(
            "body is not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        )),
    }
}

/// Reads an OTLP/JSON `ExportLogsServiceRequest`.
pub fn logs(body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    let o = top(body)?;
    let mut out = ExportLogsServiceRequest::default();
    for (i, rl) in objects(&o, "resourceLogs", "resource_logs", "")?
        .into_iter()
        .enumerate()
    {
        let at = format!("resourceLogs[{i}]");
        let mut scope_logs = Vec::new();
        for (j, sl) in objects(rl, "scopeLogs", "scope_logs", &at)?
            .into_iter()
            .enumerate()
        {
            let at = format!("{at}.scopeLogs[{j}]");
            let log_records = objects(sl, "logRecords", "log_records", &at)?
                .into_iter()
                .map(|r| LogRecord {
                    time_unix_nano: uint(r, "timeUnixNano", "time_unix_nano"),
                    observed_time_unix_nano: uint(
                        r,
                        "observedTimeUnixNano",
                        "observed_time_unix_nano",
                    ),
                    severity_number: field(r, "severityNumber", "severity_number")
                        .and_then(int)
                        .unwrap_or(0)
                        .clamp(0, 24) as i32,
                    severity_text: string(r, "severityText", "severity_text"),
                    body: r.get("body").map(|b| any_value(b, 0)),
                    attributes: attributes(r),
                    event_name: string(r, "eventName", "event_name"),
                    ..LogRecord::default()
                })
                .collect();
            scope_logs.push(ScopeLogs {
                scope: None,
                log_records,
                schema_url: String::new(),
            });
        }
        out.resource_logs.push(ResourceLogs {
            resource: resource(rl),
            scope_logs,
            schema_url: String::new(),
        });
    }
    Ok(out)
}

fn points(o: &Obj) -> Vec<NumberDataPoint> {
    o.get("dataPoints")
        .or_else(|| o.get("data_points"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_object)
                .map(|p| NumberDataPoint {
                    attributes: attributes(p),
                    start_time_unix_nano: uint(p, "startTimeUnixNano", "start_time_unix_nano"),
                    time_unix_nano: uint(p, "timeUnixNano", "time_unix_nano"),
                    value: if let Some(d) = field(p, "asDouble", "as_double").and_then(float) {
                        Some(number_data_point::Value::AsDouble(d))
                    } else {
                        field(p, "asInt", "as_int")
                            .and_then(int)
                            .map(number_data_point::Value::AsInt)
                    },
                    flags: 0,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads an OTLP/JSON `ExportMetricsServiceRequest` (gauges and sums; other
/// metric types are skipped).
pub fn metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest, String> {
    let o = top(body)?;
    let mut out = ExportMetricsServiceRequest::default();
    for (i, rm) in objects(&o, "resourceMetrics", "resource_metrics", "")?
        .into_iter()
        .enumerate()
    {
        let at = format!("resourceMetrics[{i}]");
        let mut scope_metrics = Vec::new();
        for (j, sm) in objects(rm, "scopeMetrics", "scope_metrics", &at)?
            .into_iter()
            .enumerate()
        {
            let at = format!("{at}.scopeMetrics[{j}]");
            let metrics = objects(sm, "metrics", "metrics", &at)?
                .into_iter()
                .map(|m| Metric {
                    name: string(m, "name", "name"),
                    description: string(m, "description", "description"),
                    unit: string(m, "unit", "unit"),
                    data: if let Some(g) = m.get("gauge").and_then(Value::as_object) {
                        Some(metric::Data::Gauge(Gauge {
                            data_points: points(g),
                        }))
                    } else {
                        m.get("sum").and_then(Value::as_object).map(|s| {
                            metric::Data::Sum(Sum {
                                data_points: points(s),
                                aggregation_temporality: field(
                                    s,
                                    "aggregationTemporality",
                                    "aggregation_temporality",
                                )
                                .and_then(int)
                                .unwrap_or(0)
                                .clamp(0, 2)
                                    as i32,
                                is_monotonic: field(s, "isMonotonic", "is_monotonic")
                                    .and_then(Value::as_bool)
                                    .unwrap_or(false),
                            })
                        })
                    },
                })
                .collect();
            scope_metrics.push(ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            });
        }
        out.resource_metrics.push(ResourceMetrics {
            resource: resource(rm),
            scope_metrics,
            schema_url: String::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_follow_the_otlp_json_rules() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"claude-code"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000",
            "severityNumber":9,"body":{"stringValue":"claude_code.api_request"},
            "attributes":[{"key":"cost_usd","value":{"doubleValue":0.5}},
                          {"key":"input_tokens","value":{"intValue":"12"}},
                          {"key":"list","value":{"arrayValue":{"values":[{"boolValue":true}]}}}]}]}]}]}"#;
        let req = logs(body).unwrap();
        let rec = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(rec.severity_number, 9);
        assert_eq!(rec.attributes[1].value, Some(AnyValue::int(12)));
        assert_eq!(
            req.resource_logs[0].resource.as_ref().unwrap().attributes[0].key,
            "service.name"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(logs(b"").is_err());
        assert!(logs(b"[1]").is_err());
        assert!(logs(br#"{"resourceLogs":7}"#).is_err());
        assert!(logs(br#"{"resourceLogs":[3]}"#).is_err());
        assert!(metrics(br#"{"resourceMetrics":[{"scopeMetrics":"x"}]}"#).is_err());
        // Unknown and odd values are skipped, not fatal.
        let ok = logs(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":5,"attributes":[{"key":1}]}]}]}]}"#);
        assert_eq!(
            ok.unwrap().resource_logs[0].scope_logs[0].log_records.len(),
            1
        );
        let deep = format!(
            "{{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[{{\"body\":{}1{}}}]}}]}}]}}",
            "{\"arrayValue\":{\"values\":[".repeat(60),
            "]}}".repeat(60)
        );
        // serde_json's own recursion limit or ours: an error or a flattened value.
        let _ = logs(deep.as_bytes());
    }
}
