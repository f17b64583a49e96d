//! OTLP ingest: telemetry shaped like Claude Code's own (`claude_code.api_request`
//! with cost and tokens, `claude_code.tool_result`, cost and token metrics) posted
//! to a real collector joins the hook events of the same session, prompt and tool
//! call, and `/v1/sessions` shows the session's cost, tokens and API time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarm_obs::otlp::Message;
use swarm_obs::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, KeyValue, LogRecord, Resource, ResourceLogs, ScopeLogs,
};
use swarm_obs_suite::{Collector, SseStream, TestHome, fixtures_dir, run_with_stdin};

const SESSION: &str = "20b1d544-018f-44e4-b792-250c8bd26555";
const PROMPT: &str = "0706b4bc-9b7d-46d6-a4b0-2b6a6f4d6ab3";
const TOOL_USE: &str = "toolu_48881246cf3f4440aef2eb01";

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue::new(k, AnyValue::string(v))
}

/// A record as Claude Code sends it: body and `event.name` name the event, every
/// attribute is a string.
fn record(name: &str, ms: u64, attrs: &[(&str, &str)]) -> LogRecord {
    let mut attributes = vec![
        kv("event.name", name),
        kv("event.timestamp", "2026-01-05T14:32:15.000Z"),
        kv("session.id", SESSION),
        kv("prompt.id", PROMPT),
        kv("user.account_uuid", "acct-1"),
        kv("organization.id", "org-1"),
        kv("terminal.type", "tmux"),
    ];
    attributes.extend(attrs.iter().map(|(k, v)| kv(k, v)));
    LogRecord {
        time_unix_nano: 1_767_623_535_000_000_000 + ms * 1_000_000,
        observed_time_unix_nano: 1_767_623_535_000_000_000 + ms * 1_000_000,
        body: Some(AnyValue::string(format!("claude_code.{name}"))),
        attributes,
        ..LogRecord::default()
    }
}

fn claude_logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "claude-code"),
                    kv("service.version", "2.1.330"),
                    kv("host.name", "dev-box"),
                ],
            }),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: vec![
                    record("user_prompt", 0, &[("prompt_length", "42")]),
                    record(
                        "api_request",
                        10,
                        &[
                            ("model", "claude-sonnet-4"),
                            ("cost_usd", "0.0125"),
                            ("duration_ms", "2100"),
                            ("input_tokens", "1200"),
                            ("output_tokens", "300"),
                            ("cache_read_tokens", "5000"),
                            ("cache_creation_tokens", "100"),
                        ],
                    ),
                    record(
                        "tool_result",
                        20,
                        &[
                            ("tool_name", "Bash"),
                            ("tool_use_id", TOOL_USE),
                            ("success", "true"),
                            ("duration_ms", "42"),
                        ],
                    ),
                    record(
                        "api_request",
                        30,
                        &[
                            ("model", "claude-sonnet-4"),
                            ("cost_usd", "0.0075"),
                            ("duration_ms", "900"),
                            ("input_tokens", "800"),
                            ("output_tokens", "200"),
                            ("cache_read_tokens", "0"),
                            ("cache_creation_tokens", "0"),
                        ],
                    ),
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Claude Code's cost and token metrics, as OTLP/JSON.
fn claude_metrics() -> Value {
    let point = |v: f64, attrs: Value| {
        json!({"attributes": attrs, "startTimeUnixNano": "1767623535000000000",
               "timeUnixNano": "1767623595000000000", "asDouble": v})
    };
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    json!({"resourceMetrics": [{
        "resource": {"attributes": [attr("service.name", "claude-code")]},
        "scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code"}, "metrics": [
            {"name": "claude_code.cost.usage", "unit": "USD",
             "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [
                point(0.02, json!([attr("session.id", SESSION), attr("model", "claude-sonnet-4")]))]}},
            {"name": "claude_code.token.usage", "unit": "tokens",
             "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [
                point(2000.0, json!([attr("session.id", SESSION), attr("type", "input")])),
                point(500.0, json!([attr("session.id", SESSION), attr("type", "output")]))]}}
        ]}]
    }]})
}

fn session<'a>(sessions: &'a Value, id: &str) -> Option<&'a Value> {
    sessions["sessions"]
        .as_array()?
        .iter()
        .find(|s| s["session"] == id)
}

#[test]
fn claude_code_telemetry_joins_its_session() {
    let home = TestHome::new();
    let collector = Collector::start(&home);
    // A live viewer of Claude Code's telemetry, open before any arrives.
    let live = SseStream::open(
        collector.addr(),
        &format!("/v1/stream?n=0&source=claude-code&session={SESSION}"),
        &[],
    );

    // The hooks of one tool call, through the real hook binary.
    for fixture in ["PreToolUse.json", "PostToolUse.json"] {
        let input = std::fs::read(fixtures_dir().join(fixture)).unwrap();
        let out = run_with_stdin(&mut home.hook(), input);
        assert_eq!(out.status.code(), Some(0));
    }
    // Its telemetry: logs as protobuf (twice: a sender's retry), metrics as JSON.
    let logs = claude_logs().encode_to_vec();
    for _ in 0..2 {
        let (status, body) = collector.post("/v1/logs", "application/x-protobuf", &logs);
        assert_eq!(status, 200, "{body}");
        assert!(
            body.is_empty(),
            "an empty ExportLogsServiceResponse: {body:?}"
        );
    }
    let metrics = claude_metrics().to_string();
    let (status, body) = collector.post("/v1/metrics", "application/json", metrics.as_bytes());
    assert_eq!((status, body.as_str()), (200, "{}"));

    // Streamed like any other event: the first record reaches the viewer.
    let first = live
        .next_event(Duration::from_secs(30))
        .expect("an OTLP record on the live stream");
    let first: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(first["fields"]["event.name"], "claude_code.user_prompt");
    assert_eq!(first["msg"], "Prompt submitted (42 chars)");

    let deadline = Instant::now() + Duration::from_secs(60);
    let s = loop {
        let all = collector.get_json("/v1/sessions");
        if let Some(s) = session(&all, SESSION)
            && s["events"].as_i64() == Some(2 + 4 + 3)
        {
            break s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "session never held the hooks and telemetry: {all}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let t = &s["telemetry"];
    assert!(
        (t["cost_usd"].as_f64().unwrap() - 0.02).abs() < 1e-9,
        "cost from the two API requests, not again from the metric: {t}"
    );
    assert_eq!(t["input_tokens"], 2000);
    assert_eq!(t["output_tokens"], 500);
    assert_eq!(t["cache_read_tokens"], 5000);
    assert_eq!(t["cache_creation_tokens"], 100);
    assert_eq!(t["api_requests"], 2);
    assert_eq!(t["api_duration_ms"], 3000);
    let sources: Vec<&str> = s["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(sources.contains(&"claude-code"), "{sources:?}");
    assert_eq!(s["tools"]["Bash"], 1);

    // Joined on prompt and tool call: the hook events and the tool result share them.
    let events = collector.get_json(&format!("/v1/events?session={SESSION}&limit=100"));
    let events = events["events"].as_array().unwrap();
    let by_tool_use: Vec<&Value> = events
        .iter()
        .filter(|e| e["tool_use_id"] == TOOL_USE)
        .collect();
    assert_eq!(by_tool_use.len(), 3, "PreToolUse, PostToolUse, tool_result");
    let result = by_tool_use
        .iter()
        .find(|e| e["source"] == "claude-code")
        .unwrap();
    assert_eq!(result["tool"], "Bash");
    assert_eq!(result["duration_ms"], 42);
    assert_eq!(result["prompt_id"], PROMPT);
    assert_eq!(result["fields"]["event.name"], "claude_code.tool_result");
    assert_eq!(result["fields"]["terminal.type"], "tmux");
    assert_eq!(result["fields"]["service.version"], "2.1.330");
    assert_eq!(result["host"], "dev-box");
    assert!(
        events
            .iter()
            .filter(|e| e["fields"]["metric.name"].is_null())
            .all(|e| e["prompt_id"] == PROMPT),
        "hooks and log records share the prompt id"
    );
    let cost = events
        .iter()
        .find(|e| e["fields"]["metric.name"] == "claude_code.cost.usage")
        .expect("the cost metric is an event");
    assert_eq!(cost["fields"]["metric.value"], 0.02);
    assert_eq!(cost["fields"]["metric.temporality"], "delta");
    assert_eq!(cost["level"], "debug");
    let request = events
        .iter()
        .find(|e| e["fields"]["event.name"] == "claude_code.api_request")
        .unwrap();
    assert!(
        request["msg"]
            .as_str()
            .unwrap()
            .starts_with("API request claude-sonnet-4: $"),
        "{request}"
    );

    // `tail` shows each model call's cost, tokens and latency, and each tool
    // result, among the session's hook events.
    let out = home
        .swarm_obs()
        .args([
            "tail",
            "--color",
            "never",
            "-n",
            "100",
            "--session",
            SESSION,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
    };
    let api = line("API request claude-sonnet-4: $0.0");
    assert!(
        api.contains("[claude-code]") && api.contains(" ms"),
        "{api}"
    );
    assert!(line("Tool Bash succeeded in 42 ms").contains("[claude-code]"));
    assert!(
        line("PreToolUse").contains("Bash"),
        "hook events beside them"
    );

    // A session whose Claude Code sends metrics only: cost and tokens from them.
    let only_metrics = claude_metrics()
        .to_string()
        .replace(SESSION, "metrics-only-session");
    let (status, _) = collector.post("/v1/metrics", "application/json", only_metrics.as_bytes());
    assert_eq!(status, 200);
    let all = collector.get_json("/v1/sessions");
    let m = &session(&all, "metrics-only-session").expect("listed")["telemetry"];
    assert!((m["cost_usd"].as_f64().unwrap() - 0.02).abs() < 1e-9, "{m}");
    assert_eq!(m["input_tokens"], 2000);
    assert_eq!(m["output_tokens"], 500);
    assert_eq!(m["api_requests"], 0);

    // A session without telemetry has no `telemetry` field.
    let mut plain = swarm_obs::Event::new("worker", swarm_obs::Kind::Log, "hi");
    plain.session = Some("no-telemetry".into());
    collector.post_events(&[plain]);
    let all = collector.get_json("/v1/sessions");
    let other = session(&all, "no-telemetry").expect("the plain session is listed");
    assert!(other.get("telemetry").is_none(), "{other}");
}

#[test]
fn bad_otlp_bodies_are_refused_clearly() {
    let home = TestHome::new();
    let collector = Collector::start_with(&home, &["--max-body-mb", "1"]);
    for (path, ctype, body, status) in [
        ("/v1/logs", "text/plain", &b"x"[..], 415),
        ("/v1/metrics", "application/x-ndjson", b"{}", 415),
        (
            "/v1/logs",
            "application/x-protobuf",
            b"\xff\xff\xff\xff",
            400,
        ),
        (
            "/v1/metrics",
            "application/x-protobuf",
            b"\x0a\x05\x0a",
            400,
        ),
        ("/v1/logs", "application/json", b"{\"resourceLogs\":", 400),
        ("/v1/logs", "application/json", b"[]", 400),
        ("/v1/metrics", "application/json", b"", 400),
    ] {
        let (got, text) = collector.post(path, ctype, body);
        assert_eq!(got, status, "{path} {ctype} {body:?}: {text}");
        let err: Value = serde_json::from_str(&text).expect("a JSON error");
        assert!(
            err["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{text}"
        );
    }
    // 2 MiB announced against a 1 MiB cap: refused before the body is read.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(collector.addr()).unwrap();
        write!(
            s,
            "POST /v1/logs HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            collector.addr(),
            2 << 20
        )
        .unwrap();
        let mut head = [0u8; 64];
        let n = s.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    // A compression it does not take is 415; a gzip body that is not gzip, 400.
    for (encoding, body, status) in [("br", &b"x"[..], 415), ("gzip", b"\x1f\x8b", 400)] {
        let resp = swarm_obs_suite::http()
            .post(collector.url("/v1/logs"))
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", encoding)
            .send(body)
            .unwrap();
        assert_eq!(resp.status(), status, "{encoding}");
    }
    // An empty request is valid OTLP: accepted, nothing stored.
    let (got, _) = collector.post("/v1/logs", "application/x-protobuf", b"");
    assert_eq!(got, 200);
    assert!(collector.stored_ids().is_empty());
    // Still healthy after all that.
    assert_eq!(collector.get_json("/healthz")["status"], "ok");
}

/// Compresses `data` with the real `gzip` program.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run gzip");
    let mut stdin = child.stdin.take().expect("gzip's stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("gzip's output");
    writer.join().unwrap().expect("feed gzip");
    assert!(out.status.success());
    out.stdout
}

/// OTLP senders gzip their requests (OTEL_EXPORTER_OTLP_COMPRESSION=gzip): the
/// collector takes them, protobuf and JSON, and applies the body cap to what the
/// body decodes to, so a small bomb gets 413 and the collector stays well.
#[test]
fn gzip_requests_are_taken_and_a_zip_bomb_is_refused() {
    if !swarm_obs_suite::have_programs("gzip ingest", &["gzip"]) {
        return;
    }
    let home = TestHome::new();
    let collector = Collector::start_with(&home, &["--max-body-mb", "1"]);
    let logs = gzip(&claude_logs().encode_to_vec());
    let resp = swarm_obs_suite::http()
        .post(collector.url("/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .send(&logs[..])
        .unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = gzip(claude_metrics().to_string().as_bytes());
    let resp = swarm_obs_suite::http()
        .post(collector.url("/v1/metrics"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .send(&metrics[..])
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stored = collector.get_json("/v1/events?source=claude-code&limit=1000");
    let n = stored["events"].as_array().map_or(0, Vec::len);
    assert!(
        n >= 2,
        "logs and metrics from gzip bodies were stored: {stored}"
    );

    // 64 MiB of zeros is about 64 KiB of gzip: under the 1 MiB cap as sent, far
    // over it decoded.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let mut resp = swarm_obs_suite::http()
        .post(collector.url("/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .send(&bomb[..])
        .unwrap();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(resp.status(), 413, "{text}");
    assert!(text.contains("decodes to more than"), "{text}");
    assert_eq!(collector.get_json("/healthz")["status"], "ok");
    let after = collector.get_json("/v1/events?source=claude-code&limit=1000");
    assert_eq!(after["events"].as_array().map_or(0, Vec::len), n);
}
