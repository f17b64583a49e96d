//! A real headless Chromium driven over the DevTools protocol, for tests of the web
//! dashboard: navigate, evaluate JavaScript, watch for dialogs, take screenshots.
//!
//! The protocol is JSON over one WebSocket to the page target; this speaks just the
//! part the tests need, with every wait bounded.

use std::collections::{BTreeMap, VecDeque};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long one protocol call or a browser start may take before the test fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A headless Chromium with a private profile and one page; the whole process
/// group is killed on drop.
pub struct Browser {
    child: Child,
    profile: tempfile::TempDir,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Protocol events received and not yet taken.
    events: VecDeque<Value>,
    /// Messages of JavaScript dialogs that opened (each was dismissed at once).
    dialogs: Vec<String>,
}

impl Browser {
    /// The programs it needs (Debian package `chromium`).
    pub const PROGRAMS: &[&str] = &["chromium"];

    /// Starts Chromium headless on a `width` × `height` window and connects to its page.
    pub fn start(width: u32, height: u32) -> Self {
        Self::start_with_args(width, height, &[])
    }

    /// Like [`start`](Self::start), with extra Chromium flags
    /// (`--host-resolver-rules=…`, say).
    pub fn start_with_args(width: u32, height: u32, extra: &[&str]) -> Self {
        let profile = tempfile::Builder::new()
            .prefix("swarm-obs-chromium-")
            .tempdir()
            .expect("create a Chromium profile directory");
        let log = std::fs::File::create(profile.path().join("chromium.log"))
            .expect("create the Chromium log file");
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            &format!("--window-size={width},{height}"),
        ])
        .args(extra)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        // Its own process group, so the renderer and helper processes die with it.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("start chromium");

        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + CALL_TIMEOUT;
        let port = loop {
            let port = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u16>().ok()));
            if let Some(p) = port {
                break p;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "chromium exited with {status} before opening its DevTools port:\n{}",
                    std::fs::read_to_string(profile.path().join("chromium.log"))
                        .unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                kill_group(&mut child);
                panic!("chromium did not write {} within 60 s", port_file.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        };

        // The page target opened for about:blank.
        let ws_url = loop {
            let list: Option<Value> = crate::http()
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str(&t).ok());
            let page = list.as_ref().and_then(|l| {
                l.as_array()?
                    .iter()
                    .find(|t| t["type"] == "page")?
                    .get("webSocketDebuggerUrl")?
                    .as_str()
                    .map(str::to_owned)
            });
            if let Some(url) = page {
                break url;
            }
            if Instant::now() > deadline {
                kill_group(&mut child);
                panic!("chromium listed no page target within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to DevTools");
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .expect("set a read timeout");
        let (ws, _) = tungstenite::client::client(ws_url.as_str(), stream)
            .unwrap_or_else(|e| panic!("DevTools WebSocket handshake with {ws_url}: {e}"));
        // From now on reads wake up often, so waits can check their deadlines.
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a read timeout");
        let mut browser = Self {
            child,
            profile,
            ws,
            next_id: 0,
            events: VecDeque::new(),
            dialogs: Vec::new(),
        };
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser.call("Log.enable", json!({}));
        // The viewport itself, not the window with its frame, gets the asked size.
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
        browser
    }

    /// Sends one protocol command and waits for its result; panics on an error answer.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws
            .send(Message::text(msg))
            .unwrap_or_else(|e| panic!("DevTools {method}: send failed: {e}"));
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "DevTools {method}: no answer within 60 s"
            );
            let Some(v) = self.read_message() else {
                continue;
            };
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("DevTools {method} failed: {err}");
                }
                return v["result"].clone();
            }
            self.note_event(v);
        }
    }

    /// One message, or `None` when nothing arrived within the short read timeout.
    fn read_message(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection lost: {e}"),
        }
    }

    /// Keeps an event; a JavaScript dialog is recorded and dismissed at once so it
    /// cannot block the page.
    fn note_event(&mut self, v: Value) {
        if v["method"] == "Page.javascriptDialogOpening" {
            self.dialogs
                .push(v["params"]["message"].as_str().unwrap_or("").to_owned());
            let _ = self.ws.send(Message::text(
                json!({
                    "id": 0,
                    "method": "Page.handleJavaScriptDialog",
                    "params": { "accept": false }
                })
                .to_string(),
            ));
        }
        if self.events.len() >= 10_000 {
            self.events.pop_front();
        }
        self.events.push_back(v);
    }

    /// Reads whatever events are waiting, without blocking for long.
    fn pump(&mut self) {
        while let Some(v) = self.read_message() {
            if v.get("method").is_some() {
                self.note_event(v);
            }
        }
    }

    /// Messages of every JavaScript dialog (`alert`, `confirm`, `prompt`) the page
    /// opened so far.
    pub fn dialogs(&mut self) -> Vec<String> {
        self.pump();
        self.dialogs.clone()
    }

    /// Events received so far with this method name (`Runtime.exceptionThrown`, …).
    pub fn events_named(&mut self, method: &str) -> Vec<Value> {
        self.pump();
        self.events
            .iter()
            .filter(|e| e["method"] == method)
            .cloned()
            .collect()
    }

    /// Exceptions the page threw and console errors it logged, as text.
    pub fn page_problems(&mut self) -> Vec<String> {
        self.pump();
        self.events
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.exceptionThrown" => Some(e["params"]["exceptionDetails"].to_string()),
                "Runtime.consoleAPICalled" if e["params"]["type"] == "error" => {
                    Some(e["params"]["args"].to_string())
                }
                "Log.entryAdded" => Some(e["params"]["entry"].to_string()),
                _ => None,
            })
            .collect()
    }

    /// Lets the next response whose URL matches `url_pattern` (`*` wildcards) be
    /// rewritten by `rewrite` before the page sees it; returns the rewritten body.
    /// For answers a real collector cannot be brought to give within a test (hours
    /// past, malformed entries).
    pub fn rewrite_next_response(
        &mut self,
        url_pattern: &str,
        rewrite: impl FnOnce(&str) -> String,
    ) -> String {
        self.call(
            "Fetch.enable",
            json!({ "patterns": [{ "urlPattern": url_pattern, "requestStage": "Response" }] }),
        );
        let paused = self.next_paused(url_pattern);
        let id = paused["params"]["requestId"].clone();
        let body = self.call("Fetch.getResponseBody", json!({ "requestId": id }));
        let text = match body["base64Encoded"].as_bool() {
            Some(true) => String::from_utf8(
                data_encoding::BASE64
                    .decode(body["body"].as_str().unwrap_or("").as_bytes())
                    .expect("response body is base64"),
            )
            .expect("response body is UTF-8"),
            _ => body["body"].as_str().unwrap_or("").to_owned(),
        };
        let new = rewrite(&text);
        self.call(
            "Fetch.fulfillRequest",
            json!({
                "requestId": id,
                "responseCode": 200,
                "responseHeaders": [{ "name": "content-type", "value": "application/json" }],
                "body": data_encoding::BASE64.encode(new.as_bytes()),
            }),
        );
        self.call("Fetch.disable", json!({}));
        new
    }

    /// Starts holding back every request whose URL matches `url_pattern` (`*`
    /// wildcards) before it is sent; [`next_held_request`](Self::next_held_request)
    /// returns each, which waits until [`release`](Self::release).
    pub fn hold_requests(&mut self, url_pattern: &str) {
        // Network events tell which headers a released request went out with.
        self.call("Network.enable", json!({}));
        self.call(
            "Fetch.enable",
            json!({ "patterns": [{ "urlPattern": url_pattern, "requestStage": "Request" }] }),
        );
    }

    /// The next request held back by [`hold_requests`](Self::hold_requests), waiting
    /// up to 60 s for the page to make it.
    pub fn next_held_request(&mut self) -> HeldRequest {
        let paused = self.next_paused("the held pattern");
        let params = &paused["params"];
        HeldRequest {
            id: params["requestId"].clone(),
            network_id: params["networkId"].clone(),
            url: params["request"]["url"].as_str().unwrap_or("").to_owned(),
            headers: lowercase_headers(&params["request"]["headers"]),
        }
    }

    /// Sends a held request on as it was, stops holding requests back, and returns
    /// the headers it went out with: the browser's own ones too (`Last-Event-ID`,
    /// `Cache-Control`), which it adds only as it sends.
    pub fn release(&mut self, held: HeldRequest) -> BTreeMap<String, String> {
        self.call("Fetch.continueRequest", json!({ "requestId": held.id }));
        self.call("Fetch.disable", json!({}));
        let deadline = Instant::now() + CALL_TIMEOUT;
        let sent = loop {
            let found = self.events.iter().position(|e| {
                e["method"] == "Network.requestWillBeSentExtraInfo"
                    && e["params"]["requestId"] == held.network_id
            });
            if let Some(i) = found {
                break self.events.remove(i).unwrap_or_default();
            }
            assert!(
                Instant::now() < deadline,
                "the released request to {} was not sent within 60 s",
                held.url
            );
            if let Some(v) = self.read_message() {
                self.note_event(v);
            }
        };
        self.call("Network.disable", json!({}));
        lowercase_headers(&sent["params"]["headers"])
    }

    /// The next `Fetch.requestPaused` event, taken from those received.
    fn next_paused(&mut self, what: &str) -> Value {
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let found = self
                .events
                .iter()
                .position(|e| e["method"] == "Fetch.requestPaused");
            if let Some(i) = found {
                return self.events.remove(i).unwrap_or_default();
            }
            assert!(
                Instant::now() < deadline,
                "no request matching {what} within 60 s"
            );
            if let Some(v) = self.read_message() {
                self.note_event(v);
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value;
    /// panics if it throws.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("page script `{expression}` threw: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it returns something truthy, and returns that; panics
    /// naming `what` after `timeout`.
    pub fn wait_for(&mut self, what: &str, expression: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(expression);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() >= deadline {
                let problems = self.page_problems();
                panic!(
                    "waited {timeout:?} for {what}; `{expression}` is still {v}\npage problems: {problems:#?}"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Loads `url` (a reload when it is the current address) and waits until the new
    /// document has loaded.
    pub fn navigate(&mut self, url: &str) {
        // A mark on the old document tells it apart from the new one.
        self.eval("window.__swarmObsOldDocument = true");
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for(
            &format!("{url} to load"),
            "!window.__swarmObsOldDocument && document.readyState === 'complete'",
            CALL_TIMEOUT,
        );
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = data_encoding::BASE64
            .decode(r["data"].as_str().unwrap_or("").as_bytes())
            .expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the artifacts directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Chromium's own log (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }
}

/// A request the page made, held back before it was sent (see
/// [`Browser::hold_requests`]).
#[derive(Debug)]
pub struct HeldRequest {
    id: Value,
    network_id: Value,
    /// The full URL.
    pub url: String,
    /// The headers the page asked for, lowercased names; the browser adds its own
    /// as it sends (see [`Browser::release`]).
    pub headers: BTreeMap<String, String>,
}

/// A protocol `Headers` object as a map with lowercased names.
fn lowercase_headers(headers: &Value) -> BTreeMap<String, String> {
    headers
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    // SAFETY: signalling the process group our own child leads.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Where tests leave files for people to look at (`target/test-artifacts/`).
pub fn artifacts_dir() -> PathBuf {
    // Test executables live in target/<profile>/deps.
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_owned()))
        .unwrap_or_else(|| crate::workspace_root().join("target"))
        .join("test-artifacts")
}
