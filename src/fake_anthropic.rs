//! A scripted stand-in for the Anthropic Messages API, so the real Claude Code CLI
//! runs offline (`ANTHROPIC_BASE_URL=<base_url>`, any `ANTHROPIC_API_KEY`).
//!
//! The model's moves are read from the conversation it is sent. The first user text
//! that holds script lines decides them, one line per tool call, in order:
//!
//! ```text
//! run: echo hello-from-bash          → a `Bash` tool_use running that command
//! subagent: echo hello-from-subagent → an `Agent` (or `Task`) tool_use, in the
//!                                      foreground, whose subagent is prompted
//!                                      `run: echo hello-from-subagent`
//! ```
//!
//! The next step is the one after as many steps as the conversation already holds
//! `tool_use` blocks; when all are done the answer is [`FINAL_TEXT`] with
//! `end_turn`. A request with no script, or without the tool a step needs (title
//! generation, quota checks, and the like), gets a short plain text.
//!
//! `POST /v1/messages` answers with Server-Sent Events when the request says
//! `"stream": true` (`message_start`, `ping`, `content_block_start`,
//! `content_block_delta` as `text_delta` or `input_json_delta`,
//! `content_block_stop`, `message_delta` with the stop reason, `message_stop`) and
//! with one JSON message otherwise; `POST /v1/messages/count_tokens` with a count;
//! anything else (telemetry, `HEAD` probes) with an empty `200`. Every answer
//! reports the same [`USAGE`] (input, output and both kinds of cache tokens), so
//! Claude Code prices each call.
//!
//! Set `SWARM_OBS_FAKE_ANTHROPIC_LOG=<file>` to append every request received
//! (method, path, body) to a file while developing a test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};

/// The text of the last answer of a scripted conversation.
pub const FINAL_TEXT: &str = "All steps done.";

/// The text every request without a script gets.
pub const PLAIN_TEXT: &str = "OK.";

/// The usage every answer reports, as the real API does (`message_start` holds
/// the input side, `message_delta` the output), so Claude Code prices each call
/// and its telemetry carries tokens of every kind.
pub const USAGE: Usage = Usage {
    input_tokens: 12,
    output_tokens: 6,
    cache_read_input_tokens: 200,
    cache_creation_input_tokens: 40,
};

/// Token counts of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    /// The `usage` object of a message, with `output_tokens` as given (a stream's
    /// `message_start` reports 1 and its `message_delta` the rest).
    fn json(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        })
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    /// `POST`, `HEAD`, …
    pub method: String,
    /// The path with its query (`/v1/messages?beta=true`).
    pub path: String,
    /// The body, when it was JSON.
    pub body: Option<Value>,
}

/// A `tool_use` block the fake answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedToolUse {
    /// `toolu_…`, the id Claude Code's hooks carry as `tool_use_id`.
    pub id: String,
    /// `Bash`, `Agent`, `Task`.
    pub name: String,
    /// The tool's input.
    pub input: Value,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<FakeRequest>>,
    issued: Mutex<Vec<IssuedToolUse>>,
    conns: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    counter: AtomicU64,
    stop: AtomicBool,
}

/// The fake API on an ephemeral 127.0.0.1 port; stopped on drop (listener
/// closed, every connection shut down, every thread joined).
pub struct FakeAnthropic {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FakeAnthropic {
    /// Binds `127.0.0.1:0` and starts serving.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let Ok(clone) = conn.try_clone() else {
                    continue;
                };
                lock(&s.conns).push(clone);
                let s2 = s.clone();
                let handle = std::thread::spawn(move || serve(conn, &s2));
                lock(&s.threads).push(handle);
            }
        });
        Self {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>`, for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<FakeRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The Messages API requests received so far (`POST /v1/messages`, not
    /// `count_tokens`), with their JSON bodies.
    pub fn message_requests(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && is_messages(&r.path))
            .filter_map(|r| r.body)
            .collect()
    }

    /// Every `tool_use` the fake answered with, in order.
    pub fn issued_tool_uses(&self) -> Vec<IssuedToolUse> {
        lock(&self.shared.issued).clone()
    }
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for c in lock(&self.shared.conns).drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let threads: Vec<_> = lock(&self.shared.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_messages(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or(path);
    p == "/v1/messages"
}

fn is_count_tokens(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or(path);
    p == "/v1/messages/count_tokens"
}

/// One parsed request off a kept-alive connection.
struct Request {
    method: String,
    path: String,
    close: bool,
    body: Vec<u8>,
}

/// Serves one connection: requests one after another until the client closes
/// it, asks to, or the fake stops.
fn serve(conn: TcpStream, shared: &Shared) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        let body: Option<Value> = serde_json::from_slice(&req.body).ok();
        log_request(&req, body.as_ref());
        lock(&shared.requests).push(FakeRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            body: body.clone(),
        });
        let (status, content_type, payload) = answer(&req, body.as_ref(), shared);
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
             request-id: req_fake_{}\r\nconnection: {}\r\n\r\n",
            payload.len(),
            shared.counter.fetch_add(1, Ordering::SeqCst),
            if req.close { "close" } else { "keep-alive" },
        );
        let mut bytes = head.into_bytes();
        if req.method != "HEAD" {
            bytes.extend_from_slice(&payload);
        }
        if out.write_all(&bytes).and_then(|()| out.flush()).is_err() || req.close {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    // Tolerate blank lines between requests.
    while line.trim().is_empty() {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let http10 = parts.next() == Some("HTTP/1.0");
    let mut len = 0usize;
    let mut chunked = false;
    let mut close = http10;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = value.parse().ok()?,
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t).ok()? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).ok()?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).ok()?;
        }
    } else {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some(Request {
        method,
        path,
        close,
        body,
    })
}

fn log_request(req: &Request, body: Option<&Value>) {
    let Some(path) = std::env::var_os("SWARM_OBS_FAKE_ANTHROPIC_LOG") else {
        return;
    };
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let body = match body {
        Some(v) => v.to_string(),
        None => String::from_utf8_lossy(&req.body).into_owned(),
    };
    let _ = writeln!(f, "{} {}\n{body}\n", req.method, req.path);
}

/// Status line, content type and body for one request.
fn answer(
    req: &Request,
    body: Option<&Value>,
    shared: &Shared,
) -> (&'static str, &'static str, Vec<u8>) {
    const JSON: &str = "application/json";
    if req.method == "POST" && is_count_tokens(&req.path) {
        let tokens = (req.body.len() / 4).max(1);
        return (
            "200 OK",
            JSON,
            json!({ "input_tokens": tokens }).to_string().into_bytes(),
        );
    }
    if req.method == "POST" && is_messages(&req.path) {
        let Some(body) = body else {
            let err = json!({
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "body is not JSON"},
            });
            return ("400 Bad Request", JSON, err.to_string().into_bytes());
        };
        let block = decide(body, shared);
        let model = body["model"].as_str().unwrap_or("claude-fake").to_owned();
        let id = format!(
            "msg_fake_{:04}",
            shared.counter.fetch_add(1, Ordering::SeqCst)
        );
        return if body["stream"].as_bool() == Some(true) {
            (
                "200 OK",
                "text/event-stream",
                sse_message(&id, &model, &block).into_bytes(),
            )
        } else {
            (
                "200 OK",
                JSON,
                json_message(&id, &model, &block).to_string().into_bytes(),
            )
        };
    }
    ("200 OK", JSON, b"{}".to_vec())
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Run(String),
    Subagent(String),
}

/// The script of a conversation: the first user text that holds script lines.
fn script(body: &Value) -> Vec<Step> {
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for m in messages.iter().filter(|m| m["role"] == "user") {
        let texts: Vec<&str> = match &m["content"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(blocks) => blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect(),
            _ => Vec::new(),
        };
        for text in texts {
            let steps: Vec<Step> = text
                .lines()
                .map(str::trim)
                .filter_map(|l| {
                    if let Some(cmd) = l.strip_prefix("run:") {
                        Some(Step::Run(cmd.trim().to_owned()))
                    } else {
                        l.strip_prefix("subagent:")
                            .map(|cmd| Step::Subagent(cmd.trim().to_owned()))
                    }
                })
                .collect();
            if !steps.is_empty() {
                return steps;
            }
        }
    }
    Vec::new()
}

/// How many tool calls the conversation already holds.
fn tool_uses_so_far(body: &Value) -> usize {
    body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(|m| m["role"] == "assistant")
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "tool_use")
        .count()
}

fn offered_tools(body: &Value) -> Vec<&str> {
    body["tools"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect()
}

/// The one content block of the answer to `body`.
fn decide(body: &Value, shared: &Shared) -> Value {
    let steps = script(body);
    if steps.is_empty() {
        return json!({"type": "text", "text": PLAIN_TEXT});
    }
    let done = tool_uses_so_far(body);
    let Some(step) = steps.get(done) else {
        return json!({"type": "text", "text": FINAL_TEXT});
    };
    let tools = offered_tools(body);
    let (name, input) = match step {
        Step::Run(cmd) if tools.contains(&"Bash") => (
            "Bash",
            json!({"command": cmd, "description": "Run a scripted command"}),
        ),
        Step::Subagent(cmd) => {
            let Some(name) = ["Agent", "Task"].into_iter().find(|n| tools.contains(n)) else {
                return json!({"type": "text", "text": PLAIN_TEXT});
            };
            (
                name,
                json!({
                    "description": "Scripted subagent",
                    "prompt": format!("run: {cmd}"),
                    "subagent_type": "general-purpose",
                    "run_in_background": false,
                }),
            )
        }
        Step::Run(_) => return json!({"type": "text", "text": PLAIN_TEXT}),
    };
    let id = format!(
        "toolu_fake_{:04}",
        shared.counter.fetch_add(1, Ordering::SeqCst)
    );
    lock(&shared.issued).push(IssuedToolUse {
        id: id.clone(),
        name: name.to_owned(),
        input: input.clone(),
    });
    json!({"type": "tool_use", "id": id, "name": name, "input": input})
}

fn stop_reason(block: &Value) -> &'static str {
    if block["type"] == "tool_use" {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn json_message(id: &str, model: &str, block: &Value) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop_reason(block),
        "stop_sequence": null,
        "usage": USAGE.json(USAGE.output_tokens),
    })
}

fn sse_message(id: &str, model: &str, block: &Value) -> String {
    let mut events = vec![
        json!({
            "type": "message_start",
            "message": {
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": USAGE.json(1),
            },
        }),
        json!({"type": "ping"}),
    ];
    if block["type"] == "tool_use" {
        events.push(json!({
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
        }));
        // The input arrives in pieces, as from the real API.
        let input = block["input"].to_string();
        let cut = input
            .char_indices()
            .nth(input.len() / 2)
            .map_or(0, |(i, _)| i);
        for part in [&input[..cut], &input[cut..]] {
            events.push(json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": part},
            }));
        }
    } else {
        events.push(json!({
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }));
        events.push(json!({
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": block["text"]},
        }));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    events.push(json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(block), "stop_sequence": null},
        "usage": {"output_tokens": USAGE.output_tokens},
    }));
    events.push(json!({"type": "message_stop"}));
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(fake: &FakeAnthropic, path: &str, body: &Value) -> (u16, String) {
        let mut resp = ureq::Agent::new_with_defaults()
            .post(format!("{}{path}", fake.base_url()))
            .header("content-type", "application/json")
            .send(body.to_string())
            .expect("POST to the fake");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().expect("read body"))
    }

    fn conversation(prompt: &str, tool_uses: usize, stream: bool) -> Value {
        let mut messages = vec![json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nnothing\n</system-reminder>"},
            {"type": "text", "text": prompt},
        ]})];
        for i in 0..tool_uses {
            messages.push(json!({"role": "assistant", "content": [
                {"type": "tool_use", "id": format!("t{i}"), "name": "Bash", "input": {}},
            ]}));
            messages.push(json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": format!("t{i}"), "content": "x"},
            ]}));
        }
        json!({
            "model": "claude-test",
            "stream": stream,
            "messages": messages,
            "tools": [{"name": "Agent"}, {"name": "Bash"}],
        })
    }

    #[test]
    fn follows_the_script_then_ends_the_turn() {
        let fake = FakeAnthropic::start();
        let prompt = "Do this:\nrun: echo one\nsubagent: echo two";
        let (status, text) = post(&fake, "/v1/messages", &conversation(prompt, 0, false));
        assert_eq!(status, 200);
        let msg: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(msg["stop_reason"], "tool_use");
        assert_eq!(msg["content"][0]["name"], "Bash");
        assert_eq!(msg["content"][0]["input"]["command"], "echo one");

        let (_, text) = post(&fake, "/v1/messages", &conversation(prompt, 1, false));
        let msg: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(msg["content"][0]["name"], "Agent");
        assert_eq!(msg["content"][0]["input"]["prompt"], "run: echo two");
        assert_eq!(msg["content"][0]["input"]["run_in_background"], false);

        let (_, text) = post(&fake, "/v1/messages", &conversation(prompt, 2, false));
        let msg: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(msg["stop_reason"], "end_turn");
        assert_eq!(msg["content"][0]["text"], FINAL_TEXT);

        let issued = fake.issued_tool_uses();
        assert_eq!(issued.len(), 2);
        assert_eq!(issued[0].name, "Bash");
        assert_eq!(fake.message_requests().len(), 3);
    }

    #[test]
    fn streams_a_tool_use_in_order() {
        let fake = FakeAnthropic::start();
        let (status, text) = post(
            &fake,
            "/v1/messages?beta=true",
            &conversation("run: ls /nonexistent-dir", 0, true),
        );
        assert_eq!(status, 200);
        let kinds: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let input: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|e| e["delta"]["partial_json"].as_str().map(str::to_owned))
            .collect();
        let input: Value = serde_json::from_str(&input).unwrap();
        assert_eq!(input["command"], "ls /nonexistent-dir");
        assert!(text.contains(r#""stop_reason":"tool_use""#), "{text}");
    }

    #[test]
    fn side_requests_get_plain_text_and_the_rest_a_harmless_answer() {
        let fake = FakeAnthropic::start();
        let title = json!({"model": "m", "messages": [
            {"role": "user", "content": "Write a title for: run: echo hi"},
        ]});
        let (_, text) = post(&fake, "/v1/messages", &title);
        let msg: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(msg["content"][0]["text"], PLAIN_TEXT);
        let (status, text) = post(&fake, "/v1/messages/count_tokens", &title);
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<Value>(&text).unwrap()["input_tokens"].is_u64());
        let (status, _) = post(&fake, "/api/event_logging/batch", &json!({}));
        assert_eq!(status, 200);
        assert!(fake.issued_tool_uses().is_empty());
    }
}
