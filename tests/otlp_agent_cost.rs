//! Cost and tokens per agent from OTLP ingest: the records and metric points the
//! real Claude Code CLI sent (tests/fixtures/claude-code-telemetry/, 2.1.337),
//! posted as protobuf to a real collector beside the hook events of the same
//! session, land on the agent lanes the hooks created.

use std::time::Duration;

use serde_json::Value;
use swarm_obs::otlp::Message;
use swarm_obs::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, ExportMetricsServiceRequest, Gauge, KeyValue, LogRecord,
    Metric, NumberDataPoint, Resource, ResourceLogs, ResourceMetrics, ScopeLogs, ScopeMetrics, Sum,
    any_value, metric, number_data_point,
};
use swarm_obs::{Event, Kind};
use swarm_obs_suite::{Collector, TestHome, workspace_root};

fn fixture(name: &str) -> Value {
    let path = workspace_root()
        .join("tests/fixtures/claude-code-telemetry")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read a fixture"))
        .expect("a fixture is JSON")
}

/// An OTLP/JSON scalar as protobuf (arrays and maps are left out: no agent or
/// cost is in them).
fn any(v: &Value) -> Option<AnyValue> {
    use any_value::Value as V;
    let value = if let Some(s) = v["stringValue"].as_str() {
        V::StringValue(s.to_owned())
    } else if let Some(b) = v["boolValue"].as_bool() {
        V::BoolValue(b)
    } else if let Some(i) = v["intValue"]
        .as_i64()
        .or_else(|| v["intValue"].as_str()?.parse().ok())
    {
        V::IntValue(i)
    } else if let Some(d) = v["doubleValue"].as_f64() {
        V::DoubleValue(d)
    } else {
        return None;
    };
    Some(AnyValue { value: Some(value) })
}

fn attrs(list: &Value) -> Vec<KeyValue> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| Some(KeyValue::new(kv["key"].as_str()?, any(&kv["value"])?)))
        .collect()
}

fn nanos(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str()?.parse().ok())
        .unwrap_or_default()
}

/// The captured logs, as protobuf.
fn logs() -> ExportLogsServiceRequest {
    let json = fixture("logs.json");
    let resource_logs = json["resourceLogs"]
        .as_array()
        .expect("resourceLogs")
        .iter()
        .map(|rl| ResourceLogs {
            resource: Some(Resource {
                attributes: attrs(&rl["resource"]["attributes"]),
            }),
            scope_logs: rl["scopeLogs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|sl| ScopeLogs {
                    scope: None,
                    log_records: sl["logRecords"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| LogRecord {
                            time_unix_nano: nanos(&r["timeUnixNano"]),
                            observed_time_unix_nano: nanos(&r["observedTimeUnixNano"]),
                            body: any(&r["body"]),
                            attributes: attrs(&r["attributes"]),
                            ..LogRecord::default()
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
            schema_url: String::new(),
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

/// The captured metrics, as protobuf.
fn metrics() -> ExportMetricsServiceRequest {
    let json = fixture("metrics.json");
    let point = |p: &Value| NumberDataPoint {
        attributes: attrs(&p["attributes"]),
        start_time_unix_nano: nanos(&p["startTimeUnixNano"]),
        time_unix_nano: nanos(&p["timeUnixNano"]),
        value: p["asDouble"]
            .as_f64()
            .map(number_data_point::Value::AsDouble)
            .or_else(|| {
                let i = p["asInt"]
                    .as_i64()
                    .or_else(|| p["asInt"].as_str()?.parse().ok())?;
                Some(number_data_point::Value::AsInt(i))
            }),
        flags: 0,
    };
    let resource_metrics = json["resourceMetrics"]
        .as_array()
        .expect("resourceMetrics")
        .iter()
        .map(|rm| ResourceMetrics {
            resource: Some(Resource {
                attributes: attrs(&rm["resource"]["attributes"]),
            }),
            scope_metrics: rm["scopeMetrics"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|sm| ScopeMetrics {
                    scope: None,
                    metrics: sm["metrics"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|m| Metric {
                            name: m["name"].as_str().unwrap_or("").to_owned(),
                            description: String::new(),
                            unit: m["unit"].as_str().unwrap_or("").to_owned(),
                            data: if m["sum"].is_object() {
                                Some(metric::Data::Sum(Sum {
                                    data_points: m["sum"]["dataPoints"]
                                        .as_array()
                                        .into_iter()
                                        .flatten()
                                        .map(point)
                                        .collect(),
                                    aggregation_temporality: m["sum"]["aggregationTemporality"]
                                        .as_i64()
                                        .unwrap_or(0)
                                        as i32,
                                    is_monotonic: true,
                                }))
                            } else {
                                Some(metric::Data::Gauge(Gauge {
                                    data_points: m["gauge"]["dataPoints"]
                                        .as_array()
                                        .into_iter()
                                        .flatten()
                                        .map(point)
                                        .collect(),
                                }))
                            },
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
            schema_url: String::new(),
        })
        .collect();
    ExportMetricsServiceRequest { resource_metrics }
}

/// Every log record's attributes, as a JSON object each.
fn records(name: &str) -> Vec<serde_json::Map<String, Value>> {
    let json = fixture("logs.json");
    let mut out = Vec::new();
    for rl in json["resourceLogs"].as_array().into_iter().flatten() {
        for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
            for r in sl["logRecords"].as_array().into_iter().flatten() {
                let mut m = serde_json::Map::new();
                for kv in r["attributes"].as_array().into_iter().flatten() {
                    let v = &kv["value"];
                    let v = ["stringValue", "intValue", "doubleValue", "boolValue"]
                        .iter()
                        .find_map(|k| v.get(*k).cloned())
                        .unwrap_or(Value::Null);
                    m.insert(kv["key"].as_str().unwrap_or("").to_owned(), v);
                }
                if m["event.name"] == name {
                    out.push(m);
                }
            }
        }
    }
    out
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str()?.parse().ok())
        .unwrap_or(0.0)
}

/// The hook events that make the session's lanes: the main agent, and
/// subagents `(id, type)`.
fn lanes(c: &Collector, session: &str, subagents: &[(&str, &str)]) {
    let hook = |name: &str, agent: Option<(&str, &str)>| {
        let mut ev = Event::new("project", Kind::Hook, name);
        ev.session = Some(session.to_owned());
        ev.hook = Some(name.to_owned());
        ev.agent = agent.map(|a| a.0.to_owned());
        ev.agent_type = agent.map(|a| a.1.to_owned());
        ev.payload = Some(serde_json::json!({"hook_event_name": name}));
        ev
    };
    let mut evs = vec![hook("SessionStart", None)];
    evs.extend(subagents.iter().map(|a| hook("SubagentStart", Some(*a))));
    c.post_events(&evs);
}

fn lane<'a>(s: &'a Value, agent: Option<&str>) -> &'a Value {
    let found = s["agents"]
        .as_array()
        .and_then(|l| l.iter().find(|a| a["agent"].as_str() == agent));
    &found.unwrap_or_else(|| panic!("no lane {agent:?}: {s:#}"))["telemetry"]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn request_records_put_each_call_on_its_agents_lane_by_id() {
    let calls = records("api_request");
    let session = calls[0]["session.id"]
        .as_str()
        .expect("session.id")
        .to_owned();
    let subagent = calls
        .iter()
        .find_map(|c| c.get("agent_id")?.as_str())
        .expect("a subagent's call")
        .to_owned();
    let (sub, main): (Vec<_>, Vec<_>) = calls.iter().partition(|c| c.contains_key("agent_id"));
    let cost = |cs: &[&serde_json::Map<String, Value>]| {
        cs.iter().map(|c| num(&c["cost_usd"])).sum::<f64>()
    };
    let input = |cs: &[&serde_json::Map<String, Value>]| {
        cs.iter()
            .map(|c| num(&c["input_tokens"]) as u64)
            .sum::<u64>()
    };

    let home = TestHome::new();
    let c = Collector::start(&home);
    lanes(&c, &session, &[(&subagent, "general-purpose")]);
    let (status, body) = c.post(
        "/v1/logs",
        "application/x-protobuf",
        &logs().encode_to_vec(),
    );
    assert_eq!(status, 200, "{body}");
    let s = c.session_when(&session, |s| s["telemetry"]["api_requests"] == calls.len());
    let (m, a) = (lane(&s, None), lane(&s, Some(&subagent)));
    assert_eq!(m["api_requests"], main.len(), "{s:#}");
    assert_eq!(a["api_requests"], sub.len(), "{s:#}");
    assert!(
        close(m["cost_usd"].as_f64().unwrap_or(-1.0), cost(&main)),
        "{s:#}"
    );
    assert!(
        close(a["cost_usd"].as_f64().unwrap_or(-1.0), cost(&sub)),
        "{s:#}"
    );
    assert_eq!(m["input_tokens"], input(&main), "{s:#}");
    assert_eq!(a["input_tokens"], input(&sub), "{s:#}");
    assert!(s["unattributed"].is_null(), "{s:#}");

    // The metrics say the same again: the records still win, nothing doubles.
    let (status, body) = c.post(
        "/v1/metrics",
        "application/x-protobuf",
        &metrics().encode_to_vec(),
    );
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(300));
    let again = c.session_when(&session, |_| true);
    assert_eq!(again["telemetry"], s["telemetry"], "{again:#}");
    assert_eq!(lane(&again, Some(&subagent)), a, "{again:#}");
}

#[test]
fn metric_points_name_a_subagent_by_type_only_so_a_shared_type_stays_unattributed() {
    let req = metrics();
    let json = fixture("metrics.json");
    let mut main_cost = 0.0;
    let mut sub_cost = 0.0;
    let mut session = String::new();
    for rm in json["resourceMetrics"].as_array().into_iter().flatten() {
        for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
            for m in sm["metrics"].as_array().into_iter().flatten() {
                for p in m["sum"]["dataPoints"].as_array().into_iter().flatten() {
                    let a = |k: &str| {
                        p["attributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|kv| kv["key"] == k)
                            .and_then(|kv| kv["value"]["stringValue"].as_str())
                            .unwrap_or("")
                            .to_owned()
                    };
                    session = a("session.id");
                    if m["name"] == "claude_code.cost.usage" {
                        match a("query_source").as_str() {
                            "main" => main_cost += num(&p["asDouble"]),
                            "subagent" => sub_cost += num(&p["asDouble"]),
                            other => panic!("query_source {other:?}"),
                        }
                    }
                }
            }
        }
    }
    assert!(main_cost > 0.0 && sub_cost > 0.0);

    let home = TestHome::new();
    let c = Collector::start(&home);
    lanes(&c, &session, &[("a0000000000000001", "general-purpose")]);
    let (status, body) = c.post(
        "/v1/metrics",
        "application/x-protobuf",
        &req.encode_to_vec(),
    );
    assert_eq!(status, 200, "{body}");
    let s = c.session_when(&session, |s| s["telemetry"].is_object());
    assert!(
        close(
            lane(&s, None)["cost_usd"].as_f64().unwrap_or(-1.0),
            main_cost
        ),
        "{s:#}"
    );
    let sub = lane(&s, Some("a0000000000000001"));
    assert!(
        close(sub["cost_usd"].as_f64().unwrap_or(-1.0), sub_cost),
        "{s:#}"
    );
    assert_eq!(sub["api_requests"], 0, "metrics count no requests: {s:#}");
    assert!(s["unattributed"].is_null(), "{s:#}");

    // A second general-purpose subagent: the type no longer tells which one.
    lanes(&c, &session, &[("a0000000000000002", "general-purpose")]);
    let s = c.session_when(&session, |s| s["unattributed"].is_object());
    assert!(lane(&s, Some("a0000000000000001")).is_null(), "{s:#}");
    assert!(lane(&s, Some("a0000000000000002")).is_null(), "{s:#}");
    assert!(
        close(
            s["unattributed"]["cost_usd"].as_f64().unwrap_or(-1.0),
            sub_cost
        ),
        "{s:#}"
    );
    assert!(
        close(
            lane(&s, None)["cost_usd"].as_f64().unwrap_or(-1.0),
            main_cost
        ),
        "{s:#}"
    );
}
