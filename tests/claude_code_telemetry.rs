//! Claude Code's own telemetry, from the real CLI, offline: `claude -p` runs a
//! script with a foreground subagent against the scripted Messages API
//! (src/fake_anthropic.rs, whose answers carry usage of every kind), with the
//! swarm-obs hooks installed and OTLP export (`CLAUDE_CODE_ENABLE_TELEMETRY=1`,
//! logs and metrics, http/protobuf) pointed at a real collector. What the CLI
//! sends must say which agent made each model call, and the collector must show
//! the session's cost and tokens as the sum of its requests, and the main agent's
//! and the subagent's each on its own lane, adding up to the session's.
//!
//! `UPDATE_TELEMETRY_FIXTURES=1` runs the CLI once more with OTLP/JSON pointed at
//! the fake API, which records the bodies, and writes them as they came to
//! tests/fixtures/claude-code-telemetry/ (see the README there).
//!
//! Without the CLI the test skips loudly; `SWARM_OBS_REQUIRE_SYSTEM_TESTS=1`
//! makes that a failure.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarm_obs_suite::claude_cli::{ClaudeRun, claude_cli, claude_command};
use swarm_obs_suite::fake_anthropic::{FINAL_TEXT, USAGE};
use swarm_obs_suite::{Collector, FakeAnthropic, TestHome, UserHome, bin, workspace_root};

/// How long one run of the CLI may take before it is killed.
const CLI_BOUND: Duration = Duration::from_secs(120);

/// A Bash call by the main agent, then a subagent that runs its own.
const PROMPT: &str = "Follow this script, one tool call per line:\n\
                      run: echo hello-from-bash\n\
                      subagent: echo hello-from-subagent\n";

/// `claude -p PROMPT` with OTLP export of logs and metrics to `endpoint`.
fn telemetry_run(
    cli: &std::path::Path,
    user: &UserHome,
    home: &TestHome,
    api: &FakeAnthropic,
    endpoint: &str,
    protocol: &str,
) -> (Vec<Value>, u32) {
    let mut cmd = claude_command(cli, user, home, api);
    cmd.env("CLAUDE_CODE_ENABLE_TELEMETRY", "1")
        .env("OTEL_LOGS_EXPORTER", "otlp")
        .env("OTEL_METRICS_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .env("OTEL_LOGS_EXPORT_INTERVAL", "1000")
        .args([
            "-p",
            PROMPT,
            "--output-format",
            "stream-json",
            "--verbose",
            "--allowedTools",
            "Bash,Agent",
        ]);
    let mut run = ClaudeRun::spawn(&mut cmd);
    let (lines, status) = run.finish(CLI_BOUND);
    let dump = || {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            lines.join("\n"),
            run.child.stderr()
        )
    };
    assert!(
        status.success(),
        "claude -p exited with {status}; {}",
        dump()
    );
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let result = records
        .iter()
        .find(|r| r["type"] == "result")
        .unwrap_or_else(|| panic!("no result record; {}", dump()));
    assert_eq!(result["result"], FINAL_TEXT, "{}", dump());
    (records, run.child.pid())
}

/// The subagent's id as the CLI reports it on the subagent's own messages.
fn subagent_of(records: &[Value]) -> String {
    let ids: BTreeSet<&str> = records
        .iter()
        .filter(|r| r["parent_tool_use_id"].is_string())
        .filter_map(|r| r["agent_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "one subagent: {records:#?}");
    ids.into_iter().next().unwrap_or_default().to_owned()
}

/// Whether a Messages API request was the subagent's: its conversation starts
/// with the subagent's one-line script, not the main prompt.
fn is_subagent_request(body: &Value) -> bool {
    let first = body["messages"][0].to_string();
    first.contains("run: echo hello-from-subagent") && !first.contains("subagent:")
}

/// The session's stored telemetry events (source `claude-code`), polled until
/// `ready` holds.
fn telemetry_events(c: &Collector, session: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let t = Instant::now();
    loop {
        let page = c.get_json("/v1/events?limit=1000&source=claude-code");
        let events: Vec<Value> = page["events"]
            .as_array()
            .expect("events array")
            .iter()
            .filter(|e| e["session"] == session)
            .cloned()
            .collect();
        if ready(&events) {
            return events;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the collector's telemetry of session {session} never became complete: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn event_name(e: &Value) -> &str {
    e["fields"]["event.name"].as_str().unwrap_or("")
}

fn metric_name(e: &Value) -> &str {
    e["fields"]["metric.name"].as_str().unwrap_or("")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn the_real_cli_says_which_agent_made_each_model_call() {
    let Some(cli) = claude_cli("claude_code_telemetry") else {
        return;
    };
    let home = TestHome::new();
    std::fs::write(
        home.path().join("config.toml"),
        "[notify]\nbackend = \"off\"\n",
    )
    .expect("write config.toml");
    let user = UserHome::new();
    let collector = Collector::start(&home);
    let api = FakeAnthropic::start();
    let install = user
        .command(bin("swarm-obs"))
        .args(["hooks", "install", "--scope", "project"])
        .output()
        .expect("run swarm-obs hooks install");
    assert!(
        install.status.success(),
        "swarm-obs hooks install --scope project: {}",
        String::from_utf8_lossy(&install.stderr)
    );

    let endpoint = format!("http://{}", collector.addr());
    let (records, _pid) = telemetry_run(&cli, &user, &home, &api, &endpoint, "http/protobuf");
    let session = records
        .iter()
        .find_map(|r| r["session_id"].as_str())
        .expect("a session id")
        .to_owned();
    let subagent = subagent_of(&records);
    let requests = api.message_requests();
    let sub_requests = requests.iter().filter(|b| is_subagent_request(b)).count();
    let main_requests = requests.len() - sub_requests;
    assert!(
        sub_requests >= 1 && main_requests >= 1,
        "{sub_requests} subagent and {main_requests} main requests"
    );

    // ---- What the CLI sent, as the collector stored it.
    let events = telemetry_events(&collector, &session, |evs| {
        evs.iter()
            .filter(|e| event_name(e) == "claude_code.api_request")
            .count()
            == requests.len()
            && evs
                .iter()
                .any(|e| metric_name(e) == "claude_code.cost.usage")
            && evs
                .iter()
                .any(|e| event_name(e) == "claude_code.subagent_completed")
    });
    let all = format!("{events:#?}");
    // api_request: the subagent's carry its id (the hooks' agent_id), its type
    // as agent.name and query_source agent:builtin:<type>; the main agent's
    // carry neither id nor name.
    let calls: Vec<&Value> = events
        .iter()
        .filter(|e| event_name(e) == "claude_code.api_request")
        .collect();
    // Every call of the fake has the same usage, so the same price.
    let price = calls[0]["fields"]["cost_usd"].as_f64().unwrap_or(0.0);
    assert!(price > 0.0, "{all}");
    for e in &calls {
        let f = &e["fields"];
        assert!(close(f["cost_usd"].as_f64().unwrap_or(0.0), price), "{e}");
        assert_eq!(f["input_tokens"], USAGE.input_tokens, "{e}");
        assert_eq!(f["output_tokens"], USAGE.output_tokens, "{e}");
        assert_eq!(f["cache_read_tokens"], USAGE.cache_read_input_tokens, "{e}");
        assert_eq!(
            f["cache_creation_tokens"], USAGE.cache_creation_input_tokens,
            "{e}"
        );
        assert!(f["model"].is_string(), "{e}");
    }
    let (sub_calls, main_calls): (Vec<&&Value>, Vec<&&Value>) = calls
        .iter()
        .partition(|e| e["fields"]["agent_id"].is_string());
    assert_eq!(sub_calls.len(), sub_requests, "{all}");
    assert_eq!(main_calls.len(), main_requests, "{all}");
    for e in &sub_calls {
        let f = &e["fields"];
        assert_eq!(f["agent_id"], subagent.as_str(), "{e}");
        assert_eq!(f["agent.name"], "general-purpose", "{e}");
        assert_eq!(f["query_source"], "agent:builtin:general-purpose", "{e}");
    }
    for e in &main_calls {
        let f = &e["fields"];
        assert!(f["agent.name"].is_null(), "{e}");
        let source = f["query_source"].as_str().unwrap_or("");
        assert!(!source.starts_with("agent:"), "{e}");
    }
    // The cost and token metrics say main or subagent (with the type as
    // agent.name), never which subagent.
    let points: Vec<&Value> = events
        .iter()
        .filter(|e| {
            matches!(
                metric_name(e),
                "claude_code.cost.usage" | "claude_code.token.usage"
            )
        })
        .collect();
    let sources: BTreeSet<&str> = points
        .iter()
        .filter_map(|e| e["fields"]["query_source"].as_str())
        .collect();
    assert_eq!(sources, BTreeSet::from(["main", "subagent"]), "{all}");
    for e in &points {
        let f = &e["fields"];
        assert!(
            f["agent_id"].is_null(),
            "a metric point names its agent: {e}"
        );
        let sub = f["query_source"] == "subagent";
        assert_eq!(sub, f["agent.name"] == "general-purpose", "{e}");
    }
    // subagent_completed: the subagent's id and type, its tool uses and time.
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| event_name(e) == "claude_code.subagent_completed")
        .collect();
    assert_eq!(done.len(), 1, "{all}");
    let f = &done[0]["fields"];
    assert_eq!(f["agent_id"], subagent.as_str(), "{f}");
    assert_eq!(f["agent_type"], "general-purpose", "{f}");
    assert_eq!(f["total_tool_uses"], 1, "{f}");
    assert!(f["total_tokens"].as_u64().is_some_and(|n| n > 0), "{f}");
    assert!(f["duration_ms"].as_u64().is_some(), "{f}");

    // ---- The session's sums: every request, priced.
    let n = requests.len() as u64;
    let s = collector.session_when(&session, |s| {
        s["state"] == "ended" && s["telemetry"]["api_requests"] == n
    });
    let t = &s["telemetry"];
    assert!(
        close(t["cost_usd"].as_f64().unwrap_or(0.0), n as f64 * price),
        "{s:#}"
    );
    assert_eq!(t["input_tokens"], n * USAGE.input_tokens, "{s:#}");
    assert_eq!(t["output_tokens"], n * USAGE.output_tokens, "{s:#}");
    assert_eq!(
        t["cache_read_tokens"],
        n * USAGE.cache_read_input_tokens,
        "{s:#}"
    );
    assert_eq!(
        t["cache_creation_tokens"],
        n * USAGE.cache_creation_input_tokens,
        "{s:#}"
    );

    // ---- Each agent's own: the main agent's calls and the subagent's (matched
    // to the lane its hooks created by its id), adding up to the session's.
    let s = collector.session_when(&session, |s| {
        s["agents"]
            .as_array()
            .is_some_and(|a| a.iter().all(|a| a["telemetry"].is_object()))
    });
    assert!(
        s["unattributed"].is_null(),
        "every call has its agent: {s:#}"
    );
    let agents = s["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 2, "{s:#}");
    let lane = |agent: Option<&str>| -> &Value {
        let found = agents.iter().find(|a| a["agent"].as_str() == agent);
        &found.unwrap_or_else(|| panic!("no lane {agent:?}: {s:#}"))["telemetry"]
    };
    let (main, sub) = (lane(None), lane(Some(&subagent)));
    for (t, calls) in [(main, main_requests), (sub, sub_requests)] {
        let calls = calls as u64;
        assert_eq!(t["api_requests"], calls, "{s:#}");
        assert!(
            close(t["cost_usd"].as_f64().unwrap_or(0.0), calls as f64 * price),
            "{s:#}"
        );
        assert_eq!(t["input_tokens"], calls * USAGE.input_tokens, "{s:#}");
        assert_eq!(t["output_tokens"], calls * USAGE.output_tokens, "{s:#}");
        assert_eq!(
            t["cache_read_tokens"],
            calls * USAGE.cache_read_input_tokens,
            "{s:#}"
        );
    }
    let whole = &s["telemetry"];
    for key in [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "api_requests",
        "api_duration_ms",
    ] {
        assert_eq!(
            main[key].as_u64().unwrap_or(0) + sub[key].as_u64().unwrap_or(0),
            whole[key].as_u64().unwrap_or(u64::MAX),
            "{key}: {s:#}"
        );
    }
    assert!(
        close(
            main["cost_usd"].as_f64().unwrap_or(0.0) + sub["cost_usd"].as_f64().unwrap_or(0.0),
            whole["cost_usd"].as_f64().unwrap_or(0.0)
        ),
        "{s:#}"
    );

    if std::env::var_os("UPDATE_TELEMETRY_FIXTURES").is_some() {
        update_fixtures(&cli);
    }
}

/// Runs the CLI once more with OTLP/JSON to the fake API (which records every
/// request) and writes what it sent, one export request per signal.
fn update_fixtures(cli: &std::path::Path) {
    let home = TestHome::new();
    let user = UserHome::new();
    let api = FakeAnthropic::start();
    let (records, _) = telemetry_run(cli, &user, &home, &api, &api.base_url(), "http/json");
    let subagent = subagent_of(&records);
    let dir = workspace_root().join("tests/fixtures/claude-code-telemetry");
    std::fs::create_dir_all(&dir).expect("create the fixture dir");
    for (path, key, file) in [
        ("/v1/logs", "resourceLogs", "logs.json"),
        ("/v1/metrics", "resourceMetrics", "metrics.json"),
    ] {
        let mut resources = Vec::new();
        for r in api.requests() {
            if r.method == "POST" && r.path == path {
                let body = r.body.unwrap_or_else(|| panic!("{path}: not JSON"));
                resources.extend(body[key].as_array().cloned().unwrap_or_default());
            }
        }
        assert!(!resources.is_empty(), "nothing was sent to {path}");
        let text =
            serde_json::to_string_pretty(&json!({ key: resources })).expect("serialise a fixture");
        std::fs::write(dir.join(file), text + "\n").expect("write a fixture");
    }
    eprintln!(
        "fixtures written to {} (subagent {subagent})",
        dir.display()
    );
}
