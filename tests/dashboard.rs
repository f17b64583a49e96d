//! The web dashboard in a real headless Chromium against a real collector that
//! requires a token: events posted appear live, a restarted collector is resumed
//! from the last event seen (with what reached the event log meanwhile), filters
//! narrow the stream and live in the URL (a regex too; an invalid one is named and
//! leaves the page working), a worker killed with SIGKILL turns red, a health probe
//! against a real HTTP server turns red when it answers 500 and green when it
//! recovers, Claude Code's OTLP telemetry shows as a session's cost and tokens, the
//! activity chart follows its 1/5/15/60-minute window (its labels never over its
//! bars, at any width), the alerts list holds alerts and errors newest first,
//! hostile event text stays text, the timeline stays in time order whatever order
//! events arrive in, worker cards move with the stream, a list of kinds filters,
//! the message stays readable in narrow windows, panels say they are loading until
//! answered, and screenshots are left in `target/test-artifacts/`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarm_obs::otlp::Message;
use swarm_obs::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, KeyValue, LogRecord, Resource, ResourceLogs, ScopeLogs,
};
use swarm_obs::{Event, EventLog, Kind, Level, StateRoot};
use swarm_obs_suite::{
    Browser, ChildGuard, Collector, ListenerMode, TestHome, TestListener, artifacts_dir, example,
    have_programs, http,
};

const TOKEN: &str = "dashboard-test-token";
const WAIT: Duration = Duration::from_secs(30);
const XSS: &str = "<img src=x onerror=alert(1)>";
/// Events written to the event log while the collector is down: more than the
/// page's fresh backfill (500).
const DOWN_EVENTS: usize = 700;

/// JavaScript: the timeline row of event `id`, or null.
fn row(id: &str) -> String {
    format!("document.querySelector('#timeline .row[data-id=\"{id}\"]')")
}

/// JavaScript: whether the stream is connected.
const LIVE: &str = "document.getElementById('conn').dataset.state === 'live'";

fn event(source: &str, kind: Kind, msg: &str) -> Event {
    Event::new(source, kind, msg)
}

/// Posts one event and returns its id.
fn post(c: &Collector, ev: &Event) -> String {
    c.post_events(std::slice::from_ref(ev));
    ev.id.to_string()
}

/// The computed `rgb(r, g, b)` background of an element, as numbers.
fn light_colour(b: &mut Browser, element: &str) -> Vec<u32> {
    let colour = b.eval(&format!("getComputedStyle({element}).backgroundColor"));
    colour
        .as_str()
        .unwrap_or("")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .map(|n| n.trim().parse().unwrap_or(0))
        .collect()
}

/// The `claude_code.api_request` records [`claude_code_api_requests`] sends.
const API_REQUESTS: usize = 2;

/// Claude Code's own telemetry for `session`, as it exports it over OTLP: two API
/// requests with cost and tokens (together $0.1234; 1,200 in, 300 out, 5,100 cache).
fn claude_code_api_requests(session: &str) -> ExportLogsServiceRequest {
    let kv = |k: &str, v: &str| KeyValue::new(k, AnyValue::string(v));
    let now_ns = swarm_obs::Timestamp::now().unix_ms() as u64 * 1_000_000;
    let request = |i: u64, cost: &str, tokens: [&str; 4]| {
        let mut attributes = vec![
            kv("event.name", "api_request"),
            kv("session.id", session),
            kv("model", "claude-sonnet-4"),
            kv("cost_usd", cost),
            kv("duration_ms", "1500"),
        ];
        for (k, v) in [
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_creation_tokens",
        ]
        .into_iter()
        .zip(tokens)
        {
            attributes.push(kv(k, v));
        }
        LogRecord {
            time_unix_nano: now_ns + i * 1_000_000,
            body: Some(AnyValue::string("claude_code.api_request")),
            attributes,
            ..LogRecord::default()
        }
    };
    let records = vec![
        request(0, "0.1", ["1000", "200", "5000", "0"]),
        request(1, "0.0234", ["200", "100", "0", "100"]),
    ];
    assert_eq!(records.len(), API_REQUESTS);
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "claude-code")],
            }),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn the_dashboard_shows_live_events_filters_workers_and_never_runs_event_text() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start_with(&home, &["--token", TOKEN]);

    // The page and its assets need no token and carry a strict policy; data does.
    let resp = http().get(c.url("/")).call().expect("GET /");
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let js = http()
        .get(c.url("/assets/app.js"))
        .call()
        .expect("GET app.js");
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        http().get(c.url("/v1/events")).call().unwrap().status(),
        401
    );
    let q = format!("/v1/events?access_token={TOKEN}");
    assert_eq!(http().get(c.url(&q)).call().unwrap().status(), 200);
    let post_with_query = http()
        .post(c.url(&q))
        .header("content-type", "application/json")
        .send(event("x", Kind::Log, "x").to_json_line().as_bytes())
        .unwrap();
    assert_eq!(
        post_with_query.status(),
        401,
        "query tokens are for reads only"
    );

    // A real worker beating every second, its events reaching the collector through
    // the event log.
    let mut worker = ChildGuard::spawn(
        Command::new(example("worker"))
            .args(["1", "100000", "500"])
            .env("SWARM_OBS_HOME", home.path())
            .env("SWARM_OBS_COLLECTOR", "off")
            .env_remove("SWARM_OBS_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    // A Claude Code session with a subagent, for the sessions panel.
    let session = "5e551014-aaaa-4bbb-8ccc-000000000001";
    let mut hooks = Vec::new();
    for (hook, tool, agent) in [
        ("SessionStart", None, None),
        ("PreToolUse", Some("Bash"), None),
        ("PreToolUse", Some("Agent"), None),
        ("PreToolUse", Some("Read"), Some("a1b2c3")),
        ("PostToolUseFailure", Some("Read"), Some("a1b2c3")),
        ("Stop", None, None),
    ] {
        let mut ev = event("my-project", Kind::Hook, hook);
        ev.session = Some(session.into());
        ev.hook = Some(hook.into());
        ev.tool = tool.map(str::to_owned);
        ev.agent = agent.map(str::to_owned);
        ev.agent_type = agent.map(|_| "Explore".to_owned());
        if hook == "PostToolUseFailure" {
            ev.kind = Kind::Error;
            ev.level = Level::Error;
        }
        hooks.push(ev);
    }
    c.post_events(&hooks);

    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url(&format!("/#token={TOKEN}")));
    b.wait_for("the stream to connect", LIVE, WAIT);
    let href = b.eval("location.href");
    assert!(
        !href.as_str().unwrap().contains("token"),
        "the token stays out of the address bar: {href}"
    );

    // An event posted appears within a second.
    let first = post(&c, &event("alpha", Kind::Log, "first event from alpha"));
    let posted = Instant::now();
    b.wait_for(
        "the posted event in the timeline",
        &row(&first),
        Duration::from_secs(1),
    );
    eprintln!(
        "dashboard: POST to row in the timeline took {:?}",
        posted.elapsed()
    );

    // Hostile text is shown as text, in the row and in the detail view, and runs nothing.
    let mut hostile = event("beta", Kind::Error, XSS);
    hostile.tool = Some("<b>bold</b>".into());
    hostile.payload = Some(json!({ "html": "<script>alert(2)</script>", XSS: [XSS] }));
    let hostile = post(&c, &hostile);
    b.wait_for("the hostile event", &row(&hostile), WAIT);
    let shown = b.eval(&format!(
        "{}.querySelector('.c-msg').textContent",
        row(&hostile)
    ));
    assert_eq!(shown, XSS);
    b.eval(&format!("{}.click()", row(&hostile)));
    b.wait_for(
        "the detail view",
        "!document.getElementById('detail').hidden",
        WAIT,
    );
    let detail = b.eval("document.getElementById('detail-body').textContent");
    assert!(
        detail
            .as_str()
            .unwrap()
            .contains("<script>alert(2)</script>"),
        "{detail}"
    );
    let injected = b.eval(
        "document.querySelectorAll('#timeline img, #timeline b, #detail img, #detail script').length",
    );
    assert_eq!(injected, 0, "event text became markup");

    // A filter narrows the stream server-side and is kept in the URL.
    b.eval(
        "(() => { const f = document.getElementById('f-source'); f.value = 'alpha';
                  f.dispatchEvent(new Event('change')); })()",
    );
    b.wait_for(
        "the filter in the URL",
        "location.search.includes('source=alpha')",
        WAIT,
    );
    b.wait_for("the filtered stream", LIVE, WAIT);
    b.wait_for("alpha's backfill", &row(&first), WAIT);
    let beta = post(&c, &event("beta", Kind::Log, "beta after the filter"));
    let alpha = post(&c, &event("alpha", Kind::Log, "alpha after the filter"));
    b.wait_for("alpha's new event", &row(&alpha), WAIT);
    assert_eq!(b.eval(&format!("{} === null", row(&beta))), true);
    assert_eq!(b.eval(&format!("{} === null", row(&hostile))), true);
    let sources = b.eval(
        "[...new Set([...document.querySelectorAll('#timeline .row')].map(r => r.dataset.source))]",
    );
    assert_eq!(sources, json!(["alpha"]));
    // A shared link opens with the same view.
    let link = b.eval("location.href");
    b.navigate(link.as_str().unwrap());
    b.wait_for("the shared view", LIVE, WAIT);
    assert_eq!(b.eval("document.getElementById('f-source').value"), "alpha");
    b.wait_for("alpha's events after reload", &row(&alpha), WAIT);
    assert_eq!(b.eval(&format!("{} === null", row(&beta))), true);

    // Picking a session filters by it; picking it again shows everything.
    let pick = format!("document.querySelector('#sessions li[data-session=\"{session}\"]')");
    b.wait_for("the session in the sessions panel", &pick, WAIT);
    let lanes = b.eval(&format!(
        "[...{pick}.querySelectorAll('.lane')].map(l => l.dataset.agent)"
    ));
    assert_eq!(lanes, json!(["main", "a1b2c3"]));
    // Its one failing tool call, counted in the singular.
    assert_eq!(
        b.eval(&format!("{pick}.querySelector('.errors')?.textContent")),
        json!("1 error")
    );
    // Cost and tokens show once the collector has the session's telemetry (Claude
    // Code's own OTLP logs, posted to /v1/logs), and nothing before.
    assert_eq!(
        b.eval(&format!("{pick}.querySelector('.telemetry') === null")),
        true
    );
    let telemetry = claude_code_api_requests(session);
    let (status, body) = c.post(
        "/v1/logs",
        "application/x-protobuf",
        &telemetry.encode_to_vec(),
    );
    assert_eq!(status, 200, "POST /v1/logs: {body}");
    let telemetry = b.wait_for(
        "the session's cost and tokens",
        &format!("{pick}.querySelector('.telemetry')?.textContent"),
        WAIT,
    );
    let telemetry = telemetry.as_str().unwrap();
    // Token counts are grouped the reader's way (6,600 or 6 600 or 6.600).
    let digits: String = telemetry
        .chars()
        .filter(|c| !matches!(c, ',' | '.' | ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    assert!(
        telemetry.contains("$0.1234")
            && digits.contains("6600tokens(1200in300out)")
            && telemetry.contains("2 API requests"),
        "{telemetry}"
    );
    b.eval("document.getElementById('f-clear').click()");
    b.wait_for("no filter", "location.search === ''", WAIT);
    b.wait_for("the session list", &pick, WAIT);
    b.eval(&format!("{pick}.click()"));
    b.wait_for(
        "the session filter",
        &format!("location.search.includes('session={session}')"),
        WAIT,
    );
    // Its hooks and its telemetry, nothing else.
    b.wait_for(
        "the session's events only",
        &format!(
            "document.querySelectorAll('#timeline .row').length === {} && [...document.querySelectorAll('#timeline .row')].every(r => ['my-project', 'claude-code'].includes(r.dataset.source))",
            hooks.len() + API_REQUESTS
        ),
        WAIT,
    );
    b.eval(&format!("{pick}.click()"));
    b.wait_for("no filter", "location.search === ''", WAIT);

    // The worker is running (green, or amber on a loaded machine where a beat can
    // be read a moment past its interval), then red once killed, with an alert.
    let light = "document.querySelector('#workers li[data-worker=\"backend\"] .light')";
    let state = format!("{light} && {light}.dataset.state");
    let deadline = Instant::now() + WAIT;
    while !matches!(b.eval(&state).as_str(), Some("alive" | "late")) {
        assert!(
            Instant::now() < deadline,
            "the worker never showed running: the page says {}, the collector {}",
            b.eval(&state),
            c.get_json("/v1/workers")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    b.wait_for(
        "the worker's progress bar",
        "document.querySelector('#workers li[data-worker=\"backend\"] progress')",
        WAIT,
    );
    let rgb = light_colour(&mut b, light);
    assert!(
        !is_red(&rgb),
        "a running worker's light is not red: {rgb:?}"
    );
    worker.kill();
    b.wait_for(
        "the killed worker dead",
        &format!("{light}.dataset.state === 'dead'"),
        WAIT,
    );
    let rgb = light_colour(&mut b, light);
    assert!(is_red(&rgb), "a dead worker's light is red, not {rgb:?}");
    b.wait_for(
        "the dead alert in the alerts list",
        "[...document.querySelectorAll('#alerts li')].some(li => li.textContent.includes('backend is dead'))",
        WAIT,
    );
    b.wait_for(
        "the activity chart",
        "document.querySelector('#activity rect.b-hook') && document.querySelector('#activity rect.b-log')",
        WAIT,
    );

    // Follow mode puts the newest event at the bottom, and is kept in the URL.
    b.eval(
        "(() => { const o = document.getElementById('order'); o.value = 'follow';
                  o.dispatchEvent(new Event('change')); })()",
    );
    b.wait_for(
        "follow mode in the URL",
        "location.search.includes('order=follow')",
        WAIT,
    );
    let newest = post(&c, &event("gamma", Kind::Done, "the newest event"));
    b.wait_for(
        "the newest event at the bottom",
        &format!(
            "(() => {{ const rows = [...document.querySelectorAll('#timeline .row')];
                       const r = {};
                       return r && rows.every(x => parseFloat(x.style.top) <= parseFloat(r.style.top)); }})()",
            row(&newest)
        ),
        WAIT,
    );

    // Nothing ran from event text; the page threw nothing and broke no policy. (The
    // session's view asked for its conversation: it has no transcript, a 404.)
    assert_page_clean(&mut b, &["/conversation"]);

    let dir = artifacts_dir();
    b.eval("document.documentElement.dataset.theme = 'dark'");
    b.screenshot(&dir.join("dashboard-dark.png"));
    b.eval("document.documentElement.dataset.theme = 'light'");
    b.screenshot(&dir.join("dashboard-light.png"));
    eprintln!("dashboard: screenshots in {}", dir.display());
}

#[test]
fn the_dashboard_asks_for_a_token_reconnects_and_stays_light_with_thousands_of_events() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let mut c = Collector::start_with(&home, &["--token", TOKEN]);
    let addr = c.addr().to_owned();
    let mut b = Browser::start(1200, 800);

    // Without a token the page asks for one; given, it connects.
    b.navigate(&c.url("/"));
    b.wait_for(
        "the token prompt",
        "!document.getElementById('token-form').hidden && document.getElementById('conn').dataset.state === 'unauthorized'",
        WAIT,
    );
    b.eval(&format!(
        "document.getElementById('token-input').value = '{TOKEN}';
         document.getElementById('token-form').requestSubmit()"
    ));
    b.wait_for("the stream to connect", LIVE, WAIT);
    // A collector without probes says how to add one.
    b.wait_for(
        "the probes panel's hint",
        "!document.getElementById('probes-empty').hidden && document.getElementById('probes-empty').textContent.includes('--probe')",
        WAIT,
    );

    // The collector restarts on the same address: the page reconnects by itself and
    // resumes where it stopped. While it is down, more events reach the event log
    // than a fresh connection's backfill holds, so only a resume shows them all.
    let before = post(&c, &event("alpha", Kind::Log, "before the restart"));
    b.wait_for("the first event", &row(&before), WAIT);
    b.hold_requests("*/v1/stream*");
    c.terminate();
    b.wait_for(
        "the page to notice",
        "document.getElementById('conn').dataset.state !== 'live'",
        WAIT,
    );
    let offline: Vec<Event> = (0..DOWN_EVENTS)
        .map(|i| event("offline", Kind::Log, &format!("written while down {i}")))
        .collect();
    let log = EventLog::new(StateRoot::new(home.path()));
    for ev in &offline {
        log.append(ev).expect("append to the event log");
    }
    // The page's next try, held until the restarted collector has caught up from
    // the event log, so a fresh backfill could not cover for a missing resume.
    let reconnect = b.next_held_request();
    let c = Collector::start_with(&home, &["--token", TOKEN, "--addr", &addr]);
    let deadline = Instant::now() + WAIT;
    while c.stored_ids().len() < 1 + offline.len() {
        assert!(
            Instant::now() < deadline,
            "the collector caught up {} of {} events",
            c.stored_ids().len(),
            1 + offline.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The page resumes from the last event it saw: the browser's own reconnect
    // sends Last-Event-ID, the page's sends `last_event_id` (ids need no escaping).
    let in_query = reconnect.url.split_once('?').and_then(|(_, query)| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("last_event_id="))
            .map(str::to_owned)
    });
    let url = reconnect.url.clone();
    let sent = b.release(reconnect);
    let resumes_from = sent.get("last-event-id").cloned().or(in_query);
    assert_eq!(
        resumes_from.as_deref(),
        Some(before.as_str()),
        "the reconnect says where to resume: {url} with {sent:?}"
    );
    let after = post(&c, &event("alpha", Kind::Log, "after the restart"));
    b.wait_for("the event posted after the restart", &row(&after), WAIT);
    b.wait_for("the stream to be live again", LIVE, WAIT);
    let newest_offline = offline[offline.len() - 1].id.to_string();
    b.wait_for(
        "the newest event written while down",
        &row(&newest_offline),
        WAIT,
    );
    let total = 2 + offline.len();
    b.wait_for(
        "every event once: before, those written while down, after",
        &format!("document.getElementById('count').textContent === '{total} events'"),
        WAIT,
    );
    // The oldest written while down sits right above the event before the restart.
    b.eval("(() => { const t = document.getElementById('timeline'); t.scrollTop = t.scrollHeight; })()");
    b.wait_for(
        "the oldest event written while down",
        &row(&offline[0].id.to_string()),
        WAIT,
    );
    b.wait_for("the event before the restart", &row(&before), WAIT);
    assert_eq!(
        b.eval(&format!(
            "document.querySelectorAll('#timeline .row[data-id=\"{before}\"]').length"
        )),
        1
    );
    b.eval("document.getElementById('timeline').scrollTop = 0");

    // Thousands of events: all counted, only a screenful in the DOM.
    let many: Vec<Event> = (0..3000)
        .map(|i| event("bulk", Kind::Log, &format!("bulk event {i}")))
        .collect();
    c.post_events(&many);
    let last = many[many.len() - 1].id.to_string();
    b.wait_for("the last bulk event", &row(&last), WAIT);
    b.wait_for(
        "every event counted",
        &format!(
            "document.getElementById('count').textContent === '{} events'",
            total + many.len()
        ),
        WAIT,
    );
    let rows = b.eval("document.querySelectorAll('#timeline .row').length");
    assert!(
        rows.as_u64().is_some_and(|n| n < 200),
        "{rows} rows in the DOM"
    );
    // Scrolling to the bottom shows the oldest, rendered on demand.
    b.eval("(() => { const t = document.getElementById('timeline'); t.scrollTop = t.scrollHeight; })()");
    b.wait_for("the oldest event after scrolling", &row(&before), WAIT);
    assert_eq!(b.dialogs(), Vec::<String>::new());
    assert!(b.events_named("Runtime.exceptionThrown").is_empty());
}

/// Asserts that the page threw nothing, opened no dialog and logged no problem but
/// those holding one of `expected` (say, a refused request the test made happen).
fn assert_page_clean(b: &mut Browser, expected: &[&str]) {
    assert_eq!(b.dialogs(), Vec::<String>::new(), "a dialog opened");
    let thrown: Vec<Value> = b.events_named("Runtime.exceptionThrown");
    assert!(thrown.is_empty(), "the page threw: {thrown:?}");
    let mut problems = b.page_problems();
    problems.retain(|p| !expected.iter().any(|e| p.contains(e)));
    assert!(
        problems.is_empty(),
        "the page logged problems: {problems:#?}"
    );
}

fn is_red(rgb: &[u32]) -> bool {
    rgb[0] > 150 && rgb[1] < 120 && rgb[2] < 120
}

fn is_green(rgb: &[u32]) -> bool {
    rgb[1] > 100 && rgb[1] > rgb[0] + 40 && rgb[1] > rgb[2] + 20
}

#[test]
fn a_probe_turns_red_when_its_server_answers_500_and_green_again_when_it_recovers() {
    if !have_programs("dashboard probes", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let server = TestListener::start(ListenerMode::Answer(200));
    let probe = format!(
        "http:http://{}/health name=web interval_ms=100 grace_ms=500 timeout_ms=2000",
        server.addr()
    );
    let c = Collector::start_with(&home, &["--token", TOKEN, "--probe", &probe]);
    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url(&format!("/#token={TOKEN}")));
    b.wait_for("the stream to connect", LIVE, WAIT);

    let item = "document.querySelector('#probes li[data-probe=\"web\"]')";
    let light = format!("{item}.querySelector('.light')");
    b.wait_for(
        "the probe green",
        &format!("{item} && {item}.dataset.state === 'alive'"),
        WAIT,
    );
    assert!(
        is_green(&light_colour(&mut b, &light)),
        "a healthy probe's light is green, not {:?}",
        light_colour(&mut b, &light)
    );
    assert_eq!(
        b.eval("document.getElementById('probes-empty').hidden"),
        true
    );
    let target = b.eval(&format!("{item}.querySelector('.target').textContent"));
    assert_eq!(
        target.as_str().unwrap(),
        format!("http http://{}/health", server.addr())
    );
    let what = b.eval(&format!("{item}.querySelector('.what').textContent"));
    assert!(
        what.as_str().unwrap().starts_with("HTTP 200 · checked "),
        "{what}"
    );
    // The strip has one bar per hour of the last day, a summary for screen readers
    // and a title on each bar; this hour's bar is all healthy.
    let strip = format!("{item}.querySelector('svg.strip')");
    assert_eq!(b.eval(&format!("{strip}.querySelectorAll('g').length")), 24);
    let summary = b.wait_for(
        "the strip's summary",
        &format!("{strip}.getAttribute('aria-label').startsWith('Healthy 100%') && {strip}.getAttribute('aria-label')"),
        WAIT,
    );
    assert!(
        summary
            .as_str()
            .unwrap()
            .contains("checks in the last 24 h"),
        "{summary}"
    );
    let this_hour = b.eval(&format!(
        "{strip}.querySelector('g:last-child title').textContent"
    ));
    assert!(
        this_hour.as_str().unwrap().contains("100% healthy"),
        "{this_hour}"
    );
    // The time since the last transition ticks between polls.
    let since = format!("{item}.querySelector('.since').textContent");
    let first = b.eval(&since);
    b.wait_for(
        "the transition age to tick",
        &format!("{since} !== {first}"),
        WAIT,
    );

    // Answering 500: late, then down and red, with alerts in the alerts list.
    server.set_mode(ListenerMode::Answer(500));
    b.wait_for(
        "the failing probe down",
        &format!("{item}.dataset.state === 'down'"),
        WAIT,
    );
    let rgb = light_colour(&mut b, &light);
    assert!(is_red(&rgb), "a down probe's light is red, not {rgb:?}");
    let what = b.eval(&format!("{item}.querySelector('.what').textContent"));
    assert!(what.as_str().unwrap().starts_with("HTTP 500"), "{what}");
    let alert = |text: &str| {
        format!(
            "[...document.querySelectorAll('#alerts li')].some(li => li.textContent.includes('web: probe web {text}'))"
        )
    };
    b.wait_for("the failing alert", &alert("is failing: HTTP 500"), WAIT);
    b.wait_for("the down alert", &alert("is down"), WAIT);
    b.wait_for(
        "failures in this hour's bar",
        &format!("{strip}.querySelector('g:last-child rect.h-bad') !== null"),
        WAIT,
    );
    let dir = artifacts_dir();
    b.screenshot(&dir.join("dashboard-probe-down.png"));

    // Answering 200 again: green, and the recovery is listed too.
    server.set_mode(ListenerMode::Answer(200));
    b.wait_for(
        "the recovered probe green",
        &format!("{item}.dataset.state === 'alive'"),
        WAIT,
    );
    let rgb = light_colour(&mut b, &light);
    assert!(
        is_green(&rgb),
        "a recovered probe's light is green, not {rgb:?}"
    );
    b.wait_for("the recovery alert", &alert("recovered: HTTP 200"), WAIT);
    let ratio = b.eval(&format!("{item}.querySelector('.ratio-text').textContent"));
    let ratio = ratio.as_str().unwrap();
    assert!(
        ratio.ends_with('%') && ratio != "100%" && ratio != "0%",
        "{ratio}"
    );

    // Earlier hours come from the collector's rollup, and whatever the answer holds
    // stays text: a failing hour five hours ago, a hostile probe and garbage entries.
    // The panel is re-polled every second, so its first render of that answer is
    // recorded as it happens.
    let now = swarm_obs::Timestamp::now().unix_ms();
    let earlier = now - now.rem_euclid(3_600_000) - 5 * 3_600_000;
    b.eval(&format!(
        "(() => {{
           window.probeSnapshot = null;
           const ul = document.getElementById('probes');
           const hour = new Date({earlier}).toISOString();
           new MutationObserver(() => {{
             const web = ul.querySelector('li[data-probe=\"web\"]');
             const odd = [...ul.querySelectorAll('li')].find(li => li !== web);
             if (!web || !odd || window.probeSnapshot) return;
             const bar = web.querySelector(`svg.strip g[data-hour=\"${{hour}}\"]`);
             window.probeSnapshot = {{
               items: ul.querySelectorAll('li').length,
               oddName: odd.querySelector('.name').textContent,
               oddState: odd.dataset.state,
               injected: ul.querySelectorAll('img, b').length,
               earlier: bar.querySelector('title').textContent,
               earlierFailed: bar.querySelector('rect.h-bad') !== null,
               summary: web.querySelector('svg.strip').getAttribute('aria-label'),
             }};
           }}).observe(ul, {{ childList: true, subtree: true }});
         }})()"
    ));
    b.rewrite_next_response("*/v1/probes*", |body| {
        let mut v: Value = serde_json::from_str(body).expect("probes JSON");
        v["probes"][0]["rollup"]
            .as_array_mut()
            .expect("a rollup")
            .insert(
                0,
                json!({
                    "hour": swarm_obs::Timestamp::from_unix_ms(earlier),
                    "checks": 10, "healthy": 5, "healthy_ratio": 0.5
                }),
            );
        let probes = v["probes"].as_array_mut().expect("probes");
        probes.push(Value::Null);
        probes.push(json!("not a probe"));
        probes.push(json!({
            "name": XSS, "kind": "<b>k</b>", "target": "<b>k</b>:x", "state": "down",
            "rollup": "not a list", "last_check": { "ts": "not a time", "detail": XSS },
        }));
        v.to_string()
    });
    let seen = b.wait_for("the rewritten probes", "window.probeSnapshot", WAIT);
    assert_eq!(seen["items"], 2, "{seen}");
    assert_eq!(seen["oddName"], XSS);
    assert_eq!(seen["oddState"], "down");
    assert_eq!(seen["injected"], 0, "probe text became markup: {seen}");
    assert!(
        seen["earlier"]
            .as_str()
            .unwrap()
            .ends_with("50% healthy (5 of 10 checks)"),
        "{seen}"
    );
    assert_eq!(seen["earlierFailed"], true);
    assert!(
        seen["summary"].as_str().unwrap().contains("failures in"),
        "{seen}"
    );

    // Clicking the probe shows its events only; clicking again shows all.
    let other = post(&c, &event("alpha", Kind::Log, "not the probe"));
    b.wait_for("another source's event", &row(&other), WAIT);
    b.eval(&format!("{item}.click()"));
    b.wait_for(
        "the probe's filter",
        "location.search.includes('source=web')",
        WAIT,
    );
    b.wait_for("the filtered stream", LIVE, WAIT);
    b.wait_for(
        "the probe's alerts only",
        "(() => { const rows = [...document.querySelectorAll('#timeline .row')];
                  return rows.length >= 3 && rows.every(r => r.dataset.source === 'web'); })()",
        WAIT,
    );
    b.wait_for(
        "the probe marked as picked",
        &format!("{item}.classList.contains('selected')"),
        WAIT,
    );
    b.eval(&format!("{item}.click()"));
    b.wait_for("no filter", "location.search === ''", WAIT);
    b.wait_for("everything again", &row(&other), WAIT);
    b.wait_for(
        "the next poll to show the real probes again",
        "document.querySelectorAll('#probes li').length === 1",
        WAIT,
    );

    assert_page_clean(&mut b, &[]);
    b.eval("document.documentElement.dataset.theme = 'dark'");
    b.screenshot(&dir.join("dashboard-probes-dark.png"));
    b.eval("document.documentElement.dataset.theme = 'light'");
    let rgb = light_colour(&mut b, &light);
    assert!(is_green(&rgb), "green in the light theme too, not {rgb:?}");
    b.screenshot(&dir.join("dashboard-probes-light.png"));
    eprintln!("dashboard probes: screenshots in {}", dir.display());
}

/// JavaScript: sets the form control `id` to `value` (a JSON string) as a person
/// would, firing `change`.
fn set_control(id: &str, value: &str) -> String {
    let value = Value::from(value);
    format!(
        "(() => {{ const f = document.getElementById('{id}'); f.value = {value};
                   f.dispatchEvent(new Event('change')); }})()"
    )
}

/// JavaScript: the activity chart once it has one bar per minute of a `minutes`
/// window, bars of every kind in `has` and of none in `lacks`, and a bar whose
/// title (its minute and counts) ends with each of `titles`; else null. The value
/// is `{bars, kinds, titles, label}`, `label` being the window's first minute.
fn chart_shows(minutes: usize, has: &[&str], lacks: &[&str], titles: &[&str]) -> String {
    let (has, lacks, titles) = (json!(has), json!(lacks), json!(titles));
    format!(
        "(() => {{
           const c = document.querySelector('#activity svg');
           if (!c) return null;
           const s = {{
             bars: c.querySelectorAll('title').length,
             kinds: [...new Set([...c.querySelectorAll('rect[class^=\"b-\"]')]
               .map(r => r.getAttribute('class').slice(2)))].sort(),
             titles: [...c.querySelectorAll('title')].map(t => t.textContent),
             label: document.querySelector('#activity .from')?.textContent,
           }};
           const ok = s.bars === {minutes}
             && {has}.every(k => s.kinds.includes(k))
             && !{lacks}.some(k => s.kinds.includes(k))
             && {titles}.every(t => s.titles.some(x => x.endsWith(': ' + t)));
           return ok ? s : null;
         }})()"
    )
}

#[test]
fn the_regex_filter_the_activity_window_and_the_alerts_list_show_what_the_collector_holds() {
    if !have_programs("dashboard regex, activity and alerts", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    // A probe of a port nobody listens on: failing, then down, each an alert.
    let probe = format!(
        "tcp:127.0.0.1:{} name=db interval_ms=100 grace_ms=300",
        swarm_obs_suite::free_port()
    );
    let c = Collector::start_with(&home, &["--token", TOKEN, "--probe", &probe]);

    // Events of several kinds in different minutes: some seconds into the minute
    // 3, 7 and 30 minutes before this one, so each window holds a known set even
    // if the minute turns during the test.
    let minute = swarm_obs::Timestamp::now().unix_ms().div_euclid(60_000);
    let at = |minutes_ago: i64, second: i64, source: &str, kind: Kind, msg: &str| {
        let mut ev = event(source, kind, msg);
        ev.ts = swarm_obs::Timestamp::from_unix_ms((minute - minutes_ago) * 60_000 + second * 1000);
        ev.id = swarm_obs::EventId::at(ev.ts);
        if kind == Kind::Error {
            ev.level = Level::Error;
        }
        ev
    };
    let mut warn = at(3, 4, "web", Kind::Log, "disk almost full");
    warn.level = Level::Warn;
    let older_error = at(7, 1, "backend", Kind::Error, "disk full on /dev/sda");
    let newer_error = at(7, 2, "backend", Kind::Error, "disk  full on /dev/sdb");
    let done = at(30, 1, "backend", Kind::Done, "nightly backup done");
    let mut past = vec![older_error.clone(), newer_error.clone(), done, warn];
    for i in 0..3 {
        past.push(at(
            3,
            1 + i,
            "web",
            Kind::Log,
            &format!("request {i} served"),
        ));
    }
    c.post_events(&past);

    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url(&format!("/#token={TOKEN}")));
    b.wait_for("the stream to connect", LIVE, WAIT);

    // The activity chart: 15 minutes by default, one bar per minute; each window
    // shows the kinds of its minutes, counted, and starts at its own minute.
    let fifteen = b.wait_for(
        "the 15-minute chart",
        &chart_shows(15, &["log", "error"], &["done"], &["log 4", "error 2"]),
        WAIT,
    );
    b.eval(&set_control("activity-minutes", "60"));
    let sixty = b.wait_for(
        "the 60-minute chart",
        &chart_shows(60, &["log", "error", "done"], &[], &["done 1"]),
        WAIT,
    );
    assert_eq!(
        b.eval("new URLSearchParams(location.search).get('minutes')"),
        "60"
    );
    b.eval(&set_control("activity-minutes", "5"));
    let five = b.wait_for(
        "the 5-minute chart",
        &chart_shows(5, &["log"], &["error", "done"], &["log 4"]),
        WAIT,
    );
    b.eval(&set_control("activity-minutes", "1"));
    let one = b.wait_for(
        "the 1-minute chart",
        &chart_shows(1, &[], &["log", "error", "done"], &[]),
        WAIT,
    );
    let labels: std::collections::BTreeSet<_> = [&one, &five, &fifteen, &sixty]
        .iter()
        .map(|s| s["label"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        labels.len(),
        4,
        "each window starts at its own minute: {one} {five} {fifteen} {sixty}"
    );
    b.eval(&set_control("activity-minutes", "15"));
    b.wait_for(
        "the default window again",
        &chart_shows(15, &["log", "error"], &["done"], &[]),
        WAIT,
    );
    assert_eq!(b.eval("location.search"), "");

    // A regex narrows the timeline (and the chart) on the collector, and lives in
    // the URL.
    let pattern = r"disk\s+full";
    b.eval(&set_control("f-q", pattern));
    b.wait_for(
        "the regex in the URL",
        &format!(
            "new URLSearchParams(location.search).get('q') === {}",
            Value::from(pattern)
        ),
        WAIT,
    );
    b.wait_for("the filtered stream", LIVE, WAIT);
    b.wait_for(
        "the matching events only",
        &format!(
            "document.querySelectorAll('#timeline .row').length === 2 && {} && {}",
            row(&older_error.id.to_string()),
            row(&newer_error.id.to_string())
        ),
        WAIT,
    );
    b.wait_for(
        "the chart of the matching events",
        &chart_shows(15, &["error"], &["log", "alert", "done"], &["error 2"]),
        WAIT,
    );
    let miss = post(&c, &event("web", Kind::Log, "disk is fine"));
    let hit = post(&c, &event("web", Kind::Log, "disk\tfull again"));
    b.wait_for("the matching live event", &row(&hit), WAIT);
    assert_eq!(b.eval(&format!("{} === null", row(&miss))), true);
    assert_eq!(
        b.eval("document.querySelectorAll('#timeline .row').length"),
        3
    );
    assert_eq!(
        b.eval("document.getElementById('filter-error').textContent"),
        ""
    );

    // An invalid regex: the collector's reason, visible, and the page keeps going.
    b.eval(&set_control("f-q", "disk("));
    let shown = b.wait_for(
        "the regex error",
        "(() => { const e = document.getElementById('filter-error');
                  return e.textContent.includes('invalid `q` regex') && e.checkVisibility()
                    && e.getBoundingClientRect().height > 0 && e.textContent; })()",
        WAIT,
    );
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("disk(") && shown.contains("unclosed group"),
        "{shown}"
    );
    assert_eq!(
        b.eval("[document.getElementById('conn').dataset.state, document.getElementById('conn-text').textContent]"),
        json!(["offline", "filter rejected"])
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#timeline .row').length"),
        0
    );
    // No chart for a rejected filter, rather than the previous filter's.
    b.wait_for(
        "no chart for the rejected filter",
        "document.querySelector('#activity svg') === null",
        WAIT,
    );
    b.screenshot(&artifacts_dir().join("dashboard-bad-regex.png"));

    // The alerts list, newest first, is not filtered: probe alerts and errors, not
    // warnings. An error posted now tops it, hostile text and all.
    b.wait_for(
        "the probe's down alert",
        "[...document.querySelectorAll('#alerts li')].some(li => li.textContent.includes('db: probe db is down'))",
        WAIT,
    );
    let mut crash = event("backend", Kind::Error, &format!("crashed: {XSS}"));
    crash.level = Level::Error;
    let crash = post(&c, &crash);
    b.wait_for(
        "the new error at the top of the alerts",
        &format!("document.querySelector('#alerts li')?.dataset.id === '{crash}'"),
        WAIT,
    );
    let alerts = b.eval(
        "[...document.querySelectorAll('#alerts li')].map(li => ({
           id: li.dataset.id, kind: li.dataset.kind,
           ts: Date.parse(li.querySelector('.t').title), text: li.querySelector('.m').textContent }))",
    );
    let alerts = alerts.as_array().unwrap();
    let position = |what: &str, f: &dyn Fn(&Value) -> bool| {
        alerts
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("no {what} in the alerts: {alerts:#?}"))
    };
    let texts = |s: &'static str| move |a: &Value| a["text"].as_str().unwrap().contains(s);
    let is = |id: String| move |a: &Value| a["id"] == id.as_str();
    let order = [
        position("new error", &is(crash.clone())),
        position("down alert", &texts("db: probe db is down")),
        position("failing alert", &texts("db: probe db is failing")),
        position("newer error", &is(newer_error.id.to_string())),
        position("older error", &is(older_error.id.to_string())),
    ];
    assert!(order.is_sorted(), "newest first: {order:?} in {alerts:#?}");
    assert!(
        alerts
            .windows(2)
            .all(|w| w[0]["ts"].as_i64() >= w[1]["ts"].as_i64()),
        "newest first: {alerts:#?}"
    );
    assert!(
        alerts
            .iter()
            .all(|a| a["kind"] == "alert" || a["kind"] == "error"),
        "only alerts and errors, no warnings or logs: {alerts:#?}"
    );
    assert_eq!(alerts[0]["text"], format!("backend: crashed: {XSS}"));
    assert_eq!(
        b.eval("document.querySelectorAll('#alerts img, #alerts b').length"),
        0
    );

    // Mending the regex clears the error and the stream comes back.
    b.eval(&set_control("f-q", "crash"));
    b.wait_for("the mended filter", LIVE, WAIT);
    b.wait_for("the crash under the mended filter", &row(&crash), WAIT);
    assert_eq!(
        b.eval("document.getElementById('filter-error').textContent"),
        ""
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#timeline .row').length"),
        1
    );

    // The refused stream and query are the only problems the page logged.
    assert_page_clean(&mut b, &["status of 400"]);
}

#[test]
fn sessions_show_their_live_state_pushed_by_the_stream() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start(&home);
    let hook_with = |name: &str, tool: Option<&str>, extra: Value| {
        let mut ev = event("proj", Kind::Hook, name);
        ev.session = Some("5e55-live-0001".into());
        ev.hook = Some(name.into());
        ev.tool = tool.map(str::to_owned);
        let mut payload = json!({"hook_event_name": name});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        ev.payload = Some(payload);
        ev
    };
    let hook = |name: &str, tool: Option<&str>| hook_with(name, tool, json!({}));
    post(
        &c,
        &hook_with("UserPromptSubmit", None, json!({"prompt": "fix the build"})),
    );
    let mut b = Browser::start(1200, 800);
    b.navigate(&c.url("/"));
    b.wait_for("the stream to connect", LIVE, WAIT);
    b.wait_for(
        "the working session",
        "[...document.querySelectorAll('#sessions .state-badge')].some(e => e.classList.contains('state-working'))",
        WAIT,
    );
    // A permission prompt: the badge turns and names the tool, through the stream.
    post(&c, &hook("PermissionRequest", Some("Bash")));
    let text = b.wait_for(
        "the session asking for permission",
        "(() => { const e = document.querySelector('#sessions .state-needs_permission'); return e && e.textContent; })()",
        WAIT,
    );
    assert!(
        text.as_str()
            .unwrap_or("")
            .contains("needs permission for Bash"),
        "{text}"
    );
    // The turn ends: the last prompt and the answer show under the session, the
    // answer as text.
    post(
        &c,
        &hook_with(
            "Stop",
            None,
            json!({"last_assistant_message": "the build is <b>fixed</b>"}),
        ),
    );
    let said = b.wait_for(
        "the last answer",
        "(() => { const e = document.querySelector('#sessions .exchange.said'); return e && e.textContent; })()",
        WAIT,
    );
    assert_eq!(said, "« the build is <b>fixed</b>");
    assert_eq!(
        b.eval("document.querySelector('#sessions .exchange.prompt').textContent"),
        "» fix the build"
    );
    assert_eq!(b.eval("document.querySelectorAll('#sessions b').length"), 0);
    post(&c, &hook("SessionEnd", None));
    b.wait_for(
        "the ended session",
        "!!document.querySelector('#sessions .state-ended')",
        WAIT,
    );
}

#[test]
fn a_worker_that_exits_3_is_red_and_says_failed_with_its_code() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start(&home);
    let status = home
        .swarm_obs()
        .args([
            "run",
            "--source",
            "exits3",
            "--no-echo",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .status()
        .expect("swarm-obs run");
    assert_eq!(status.code(), Some(3));
    let mut b = Browser::start(1200, 800);
    b.navigate(&c.url("/"));
    let light = "document.querySelector('#workers li[data-worker=\"exits3\"] .light')";
    b.wait_for(
        "the failed worker",
        &format!("{light} && {light}.dataset.state === 'failed'"),
        WAIT,
    );
    let rgb = light_colour(&mut b, light);
    assert!(is_red(&rgb), "a failed worker's light is red, not {rgb:?}");
    let text =
        b.eval("document.querySelector('#workers li[data-worker=\"exits3\"] .state').textContent");
    assert!(
        text.as_str().is_some_and(|t| t.contains("failed (exit 3)")),
        "{text:?}"
    );
}

/// JavaScript: the ids of the timeline's rows from top to bottom.
const ROW_IDS: &str = "[...document.querySelectorAll('#timeline .row')]
     .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map(r => r.dataset.id)";

/// JavaScript: a promise of the next frame but one, after any render queued now.
const NEXT_FRAMES: &str =
    "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))";

/// Ids of `events` in the timeline's order: by time then id, newest first.
fn newest_first(events: &[&Event]) -> Vec<String> {
    let mut sorted: Vec<(i64, String)> = events
        .iter()
        .map(|e| (e.ts.unix_ms(), e.id.to_string()))
        .collect();
    sorted.sort();
    sorted.into_iter().rev().map(|(_, id)| id).collect()
}

/// Evaluates `expression` until `ok` accepts its value, and returns that value;
/// panics naming `what` with the last value after [`WAIT`].
fn wait_until(b: &mut Browser, what: &str, expression: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = b.eval(expression);
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what}; the page says {v:#}\npage problems: {:#?}",
            b.page_problems()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sets the page's viewport to `width` × `height` CSS pixels and waits until the
/// page has it.
fn set_viewport(b: &mut Browser, width: u32, height: u32) {
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
    );
    b.wait_for(
        &format!("a {width} px wide viewport"),
        &format!("window.innerWidth === {width} && window.innerHeight === {height}"),
        WAIT,
    );
    b.eval(NEXT_FRAMES);
}

#[test]
fn the_timeline_stays_in_time_order_whatever_order_events_arrive_in() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let mut c = Collector::start(&home);
    let addr = c.addr().to_owned();
    // Times a minute ago plus some milliseconds; ids are made as events are, so they
    // follow arrival, not time.
    let base = swarm_obs::Timestamp::now().unix_ms() - 60_000;
    let at = |ms: i64, msg: &str| {
        let mut ev = event("clock", Kind::Log, msg);
        ev.ts = swarm_obs::Timestamp::from_unix_ms(base + ms);
        ev
    };

    // The backfill: stored in this order, newest time first.
    let stored = [
        at(523, "stored .523"),
        at(495, "stored .495"),
        at(510, "stored .510"),
    ];
    c.post_events(&stored);
    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url("/"));
    b.wait_for("the stream to connect", LIVE, WAIT);
    let mut all: Vec<&Event> = stored.iter().collect();
    let shows = |b: &mut Browser, all: &[&Event], what: &str| {
        let want = json!(newest_first(all));
        wait_until(b, what, ROW_IDS, |v| *v == want);
    };
    shows(&mut b, &all, "the backfill in time order");

    // Live, one by one: later, earlier, between, and the same time as another (the
    // id decides).
    let live = [
        at(700, "live .700"),
        at(100, "live .100"),
        at(505, "live .505"),
        at(495, "live .495 (a tie)"),
        at(701, "live .701"),
    ];
    for ev in &live {
        post(&c, ev);
        all.push(ev);
        shows(&mut b, &all, &format!("{} in its place", ev.msg));
    }

    // Following at the bottom: the same order upside down.
    b.eval(&set_control("order", "follow"));
    let mut oldest_first = newest_first(&all);
    oldest_first.reverse();
    let want = json!(oldest_first);
    wait_until(&mut b, "oldest first when following", ROW_IDS, |v| {
        *v == want
    });
    b.eval(&set_control("order", "newest"));
    shows(&mut b, &all, "newest first again");

    // A resume: events that reached the event log while the collector was down,
    // of times among those shown, come after it restarts and go in their places.
    c.terminate();
    b.wait_for(
        "the page to notice the collector gone",
        "document.getElementById('conn').dataset.state !== 'live'",
        WAIT,
    );
    let offline = [at(650, "while down .650"), at(300, "while down .300")];
    let log = EventLog::new(StateRoot::new(home.path()));
    for ev in &offline {
        log.append(ev).expect("append to the event log");
    }
    let c = Collector::start_with(&home, &["--addr", &addr]);
    b.wait_for("the stream to be live again", LIVE, WAIT);
    all.extend(offline.iter());
    shows(&mut b, &all, "the resumed events in their places");
    let late = at(200, "live after the restart .200");
    post(&c, &late);
    all.push(&late);
    shows(&mut b, &all, "a live event after the resume in its place");

    // Scrolled away from the top, what is read stays put as events arrive above it
    // (the newest, and one from the middle of the list) and below it.
    let many: Vec<Event> = (0..300)
        .map(|i| at(1000 + i * 10, &format!("many {i}")))
        .collect();
    c.post_events(&many);
    let total = all.len() + many.len();
    b.wait_for(
        "every event",
        &format!("document.getElementById('count').textContent === '{total} events'"),
        WAIT,
    );
    b.eval("document.getElementById('timeline').scrollTop = 100 * 24 + 5");
    b.eval(NEXT_FRAMES);
    let top_row =
        "(() => { const box = document.getElementById('timeline').getBoundingClientRect();
        const rows = [...document.querySelectorAll('#timeline .row')]
          .filter(r => r.getBoundingClientRect().bottom > box.top + 1)
          .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
        return { id: rows[0].dataset.id, top: rows[0].getBoundingClientRect().top }; })()";
    let before = b.eval(top_row);
    assert_eq!(
        b.eval("document.getElementById('timeline').scrollTop"),
        100 * 24 + 5,
        "scrolled away from the top"
    );
    let around = [
        at(5000, "newer than all"),
        at(1000 + 50 * 10 + 5, "among those above the view"),
        at(-1000, "older than all"),
    ];
    c.post_events(&around);
    b.wait_for(
        "the three more",
        &format!(
            "document.getElementById('count').textContent === '{} events'",
            total + around.len()
        ),
        WAIT,
    );
    b.eval(NEXT_FRAMES);
    assert_eq!(
        b.eval(top_row),
        before,
        "the row at the top of the view stays where it was"
    );
    assert_page_clean(&mut b, &["ERR_CONNECTION_REFUSED"]);
}

/// JavaScript: what the card of worker `name` shows: progress value and maximum,
/// its task and action line, its error line.
fn card(name: &str) -> String {
    format!(
        "(() => {{ const li = document.querySelector('#workers li[data-worker=\"{name}\"]');
                   if (!li) return null;
                   const p = li.querySelector('progress');
                   return {{ done: p ? p.value : null, total: p ? p.max : null,
                            what: li.querySelector('.what:not(.last-error)')?.textContent ?? null,
                            error: li.querySelector('.last-error')?.textContent ?? null,
                            state: li.dataset.state }}; }})()"
    )
}

/// A beat of worker `cards` on another host (so no process check applies), due
/// again only in ten minutes.
fn far_beat(
    ts: swarm_obs::Timestamp,
    task: &str,
    action: &str,
    done: u64,
    total: u64,
) -> swarm_obs::Heartbeat {
    let mut hb = swarm_obs::Heartbeat::new("cards", Duration::from_secs(600));
    hb.timestamp = ts;
    hb.host = "far-host".into();
    hb.task = Some(task.into());
    hb.action = Some(action.into());
    hb.progress = Some(swarm_obs::Progress { done, total });
    hb.state = swarm_obs::HeartbeatState::Working;
    hb
}

#[test]
fn worker_cards_move_with_the_live_stream_not_only_with_the_poll() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start(&home);
    let now = || swarm_obs::Timestamp::now().unix_ms();
    let beat_at = now() - 2000;
    let beat = far_beat(
        swarm_obs::Timestamp::from_unix_ms(beat_at),
        "TASK_7",
        "step 2 of 10",
        2,
        10,
    );
    let (status, body) = c.post("/v1/heartbeats", "application/json", &beat.to_json());
    assert_eq!(status, 202, "POST /v1/heartbeats: {body}");
    let work = |kind: Kind, msg: &str, progress: Option<(u64, u64)>, host: &str| {
        let mut ev = event("cards", kind, msg);
        ev.host = Some(host.into());
        ev.task = Some("TASK_7".into());
        ev.progress = progress.map(|(done, total)| swarm_obs::Progress { done, total });
        if kind == Kind::Error {
            ev.level = Level::Error;
        }
        ev
    };

    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url("/"));
    b.wait_for("the stream to connect", LIVE, WAIT);
    let shows = |b: &mut Browser, what: &str, ok: &dyn Fn(&Value) -> bool| {
        wait_until(b, what, &card("cards"), |v| !v.is_null() && ok(v))
    };
    shows(&mut b, "the card from the beat", &|v| {
        v["done"] == 2 && v["total"] == 10
    });
    let same_after_next_poll = |b: &mut Browser, what: &str, ok: &dyn Fn(&Value) -> bool| {
        // Each poll draws the cards anew: a mark on this one tells when it has.
        b.eval("document.querySelector('#workers li[data-worker=\"cards\"]').dataset.old = '1'");
        wait_until(
            b,
            "the next poll of the workers",
            "!!document.querySelector('#workers li[data-worker=\"cards\"]:not([data-old])')",
            |v| *v == true,
        );
        let v = b.eval(&card("cards"));
        assert!(ok(&v), "{what}: the card shows {v:#}");
    };

    // A progress event is on the card as soon as it is in the timeline, and the
    // poll, whose beat is older, does not take it back.
    let three = post(
        &c,
        &work(Kind::Progress, "step 3 of 10", Some((3, 10)), "far-host"),
    );
    shows(
        &mut b,
        "3 of 10 on the card with the event in the timeline",
        &|v| v["done"] == 3 && v["total"] == 10 && v["what"] == "TASK_7 — step 3 of 10",
    );
    assert_eq!(b.eval(&format!("!!{}", row(&three))), true);
    same_after_next_poll(&mut b, "the older beat leaves 3 of 10", &|v| v["done"] == 3);

    // An older event arriving late (a backfill, a resume) changes nothing.
    let mut old = work(Kind::Progress, "step 1 of 10", Some((1, 10)), "far-host");
    old.ts = swarm_obs::Timestamp::from_unix_ms(beat_at - 500);
    let old = post(&c, &old);
    b.wait_for("the older event in the timeline", &row(&old), WAIT);
    b.eval(NEXT_FRAMES);
    let v = b.eval(&card("cards"));
    assert_eq!((&v["done"], &v["total"]), (&json!(3), &json!(10)), "{v:#}");

    // A newer beat wins over older events.
    let beat = far_beat(swarm_obs::Timestamp::now(), "TASK_7", "step 5 of 10", 5, 10);
    let (status, body) = c.post("/v1/heartbeats", "application/json", &beat.to_json());
    assert_eq!(status, 202, "POST /v1/heartbeats: {body}");
    shows(&mut b, "the newer beat's 5 of 10", &|v| {
        v["done"] == 5 && v["what"] == "TASK_7 — step 5 of 10"
    });

    // A start sets the task and clears the progress; done says it finished.
    while now() <= beat.timestamp.unix_ms() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut start = work(Kind::Start, "Started TASK_8", None, "far-host");
    start.task = Some("TASK_8".into());
    post(&c, &start);
    shows(&mut b, "the new task without progress", &|v| {
        v["what"] == "TASK_8 — Started TASK_8" && v["done"].is_null()
    });
    same_after_next_poll(&mut b, "the older beat leaves the new task", &|v| {
        v["what"] == "TASK_8 — Started TASK_8"
    });
    let mut done = work(Kind::Done, "Finished TASK_8", None, "far-host");
    done.task = Some("TASK_8".into());
    post(&c, &done);
    shows(&mut b, "the finished task", &|v| {
        v["what"] == "TASK_8 — Finished TASK_8"
    });

    // An error is the worker's last word until its next one.
    post(
        &c,
        &work(Kind::Error, "upload failed: <b>503</b>", None, "far-host"),
    );
    shows(&mut b, "the error on the card", &|v| {
        v["error"] == "error: upload failed: <b>503</b>"
    });
    assert_eq!(b.eval("document.querySelectorAll('#workers b').length"), 0);
    let mut next = work(Kind::Progress, "retrying", Some((1, 4)), "far-host");
    next.task = Some("TASK_9".into());
    post(&c, &next);
    shows(&mut b, "the next step without the error", &|v| {
        v["error"].is_null() && v["done"] == 1 && v["total"] == 4
    });

    // A worker of the same name on another host is another worker.
    let other = post(
        &c,
        &work(Kind::Progress, "elsewhere", Some((9, 10)), "other-host"),
    );
    b.wait_for("the other host's event in the timeline", &row(&other), WAIT);
    b.eval(NEXT_FRAMES);
    let v = b.eval(&card("cards"));
    assert_eq!((&v["done"], &v["total"]), (&json!(1), &json!(4)), "{v:#}");
    assert_page_clean(&mut b, &[]);
}

#[test]
fn a_list_of_kinds_filters_the_dashboard_and_stays_in_the_address() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start(&home);
    let of = |kind: Kind| {
        let mut ev = event("kinds", kind, &format!("a {} event", kind.as_str()));
        if kind == Kind::Error {
            ev.level = Level::Error;
        }
        ev
    };
    let stored: Vec<Event> = [Kind::Log, Kind::Error, Kind::Alert, Kind::Done]
        .into_iter()
        .map(of)
        .collect();
    c.post_events(&stored);
    let id = |k: usize| stored[k].id.to_string();

    // The collector takes the list as `tail --kind` does, and names a bad kind.
    let listed = c.get_json("/v1/events?kind=error,alert");
    let mut kinds: Vec<&str> = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["alert", "error"]);
    let mut resp = c.get("/v1/events?kind=error,nope").call().unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    assert_eq!(resp.status(), 400, "{text}");
    assert!(text.contains("invalid `kind` \\\"nope\\\""), "{text}");

    // The page opened with the list shows those kinds, live too, and keeps the list
    // in the address as it was written.
    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url("/?kind=error,alert"));
    b.wait_for("the stream to connect", LIVE, WAIT);
    b.wait_for(
        "the error and the alert",
        &format!("{} && {}", row(&id(1)), row(&id(2))),
        WAIT,
    );
    let live_log = post(&c, &of(Kind::Log));
    let live_alert = post(&c, &of(Kind::Alert));
    b.wait_for("the live alert", &row(&live_alert), WAIT);
    assert_eq!(
        b.eval("[...document.querySelectorAll('#timeline .row .c-kind .badge:first-child')].map(b => b.textContent).sort()"),
        json!(["alert", "alert", "error"])
    );
    for absent in [id(0), id(3), live_log] {
        assert_eq!(b.eval(&format!("{} === null", row(&absent))), true);
    }
    assert_eq!(b.eval("location.search"), "?kind=error,alert");
    assert_eq!(
        b.eval("[...document.querySelectorAll('#f-kind input:checked')].map(i => i.value)"),
        json!(["error", "alert"])
    );
    assert_eq!(
        b.eval("document.getElementById('f-kind-summary').textContent"),
        "error, alert"
    );
    assert_eq!(
        b.eval("document.getElementById('filter-error').textContent"),
        ""
    );

    // Ticking one more kind in the menu adds it, in the address too.
    b.eval(
        "(() => { document.getElementById('f-kind-menu').open = true;
                  document.querySelector('#f-kind input[value=\"done\"]').click(); })()",
    );
    b.wait_for(
        "the wider list in the address",
        "location.search === '?kind=done,error,alert'",
        WAIT,
    );
    b.wait_for("the filtered stream", LIVE, WAIT);
    b.wait_for("the done event", &row(&id(3)), WAIT);
    assert_eq!(b.eval(&format!("{} === null", row(&id(0)))), true);
    // Clicking elsewhere closes the menu.
    b.eval("document.getElementById('timeline').click()");
    assert_eq!(b.eval("document.getElementById('f-kind-menu').open"), false);
    // A shared link reopens the same view.
    let link = b.eval("location.href");
    b.navigate(link.as_str().unwrap());
    b.wait_for("the shared view", LIVE, WAIT);
    b.wait_for("the done event again", &row(&id(3)), WAIT);
    assert_eq!(
        b.eval("[...document.querySelectorAll('#f-kind input:checked')].map(i => i.value)"),
        json!(["done", "error", "alert"])
    );

    // A list naming an unknown kind: the collector's reason, naming it.
    b.navigate(&c.url("/?kind=error,bogus"));
    let shown = b.wait_for(
        "the rejected list",
        "document.getElementById('filter-error').textContent",
        WAIT,
    );
    assert!(
        shown.as_str().unwrap().contains("invalid `kind` \"bogus\""),
        "{shown}"
    );
    assert_eq!(b.eval("location.search"), "?kind=error,bogus");
    assert_page_clean(&mut b, &["status of 400"]);
}

/// JavaScript: the geometry of the row of event `id`: the viewport width, the
/// row's and each cell's rectangle, whether the message is visible and what is
/// drawn at its middle.
fn row_geometry(id: &str) -> String {
    format!(
        "(() => {{
           const r = {row};
           if (!r) return null;
           const rect = e => {{ const b = e.getBoundingClientRect();
             return {{ left: b.left, right: b.right, top: b.top, bottom: b.bottom, width: b.width, height: b.height }}; }};
           const cells = {{}};
           for (const c of ['c-time', 'c-src', 'c-kind', 'c-tool', 'c-msg']) {{
             const e = r.querySelector('.' + c);
             cells[c] = {{ ...rect(e), visible: e.checkVisibility() }};
           }}
           const m = cells['c-msg'];
           const hit = document.elementFromPoint(m.left + Math.min(20, m.width / 2), (m.top + m.bottom) / 2);
           return {{ viewport: window.innerWidth, row: rect(r), cells,
                    msgOnTop: !!hit && r.querySelector('.c-msg').contains(hit) }};
         }})()",
        row = row(id)
    )
}

/// Whether two rectangles (of [`row_geometry`]) share more than a sliver.
fn overlap(a: &Value, b: &Value) -> bool {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    f(a, "width") > 0.0
        && f(b, "width") > 0.0
        && f(a, "left") < f(b, "right") - 0.5
        && f(b, "left") < f(a, "right") - 0.5
        && f(a, "top") < f(b, "bottom") - 0.5
        && f(b, "top") < f(a, "bottom") - 0.5
}

/// What is wrong with a row's layout, or nothing.
fn row_layout_problems(g: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if g.is_null() {
        return vec!["no row".into()];
    }
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let width = f(g, "viewport");
    let msg = &g["cells"]["c-msg"];
    let wide = (width * 0.25).max(150.0);
    if msg["visible"] != true || f(msg, "width") < wide {
        problems.push(format!(
            "the message is {} px wide, less than {wide}",
            f(msg, "width")
        ));
    }
    if f(msg, "left") < 0.0 || f(msg, "right") > width + 0.5 {
        problems.push("the message leaves the viewport".into());
    }
    if g["msgOnTop"] != true {
        problems.push("something covers the message".into());
    }
    let cells = g["cells"].as_object().unwrap();
    for (name, cell) in cells {
        if name != "c-tool" && (cell["visible"] != true || f(cell, "width") < 20.0) {
            problems.push(format!("{name} is not shown"));
        }
        if f(cell, "top") < f(&g["row"], "top") - 0.5
            || f(cell, "bottom") > f(&g["row"], "bottom") + 0.5
        {
            problems.push(format!("{name} spills out of its row"));
        }
        for (other, o) in cells {
            if name < other && overlap(cell, o) {
                problems.push(format!("{name} overlaps {other}"));
            }
        }
    }
    problems
}

#[test]
fn the_message_column_stays_visible_at_narrow_widths() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start(&home);
    let mut hook = event(
        "my-project-with-a-long-name",
        Kind::Hook,
        "Bash: cargo test --workspace --all-targets -- --nocapture, and then a long tail of words",
    );
    hook.hook = Some("PreToolUse".into());
    hook.tool = Some("Bash".into());
    let mut error = event(
        "backend",
        Kind::Error,
        "upload of the nightly backup failed: connection reset by peer",
    );
    error.level = Level::Error;
    c.post_events(&[hook.clone(), error.clone()]);

    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url("/"));
    b.wait_for("the stream to connect", LIVE, WAIT);
    let ids = [hook.id.to_string(), error.id.to_string()];
    b.wait_for(
        "both rows",
        &format!("{} && {}", row(&ids[0]), row(&ids[1])),
        WAIT,
    );
    for width in [1400, 800, 600, 400] {
        set_viewport(&mut b, width, 800);
        for id in &ids {
            let g = wait_until(
                &mut b,
                &format!("a readable row at {width} px"),
                &row_geometry(id),
                |g| row_layout_problems(g).is_empty(),
            );
            // The hook and tool are still there, if not in their own column.
            if id == &ids[0] {
                let tool = &g["cells"]["c-tool"];
                assert!(
                    tool["visible"] == true && tool["width"].as_f64().unwrap_or(0.0) > 40.0,
                    "hook / tool at {width} px: {g:#}"
                );
            }
        }
        b.screenshot(&artifacts_dir().join(format!("dashboard-{width}px.png")));
    }
    assert_page_clean(&mut b, &[]);
}

#[test]
fn the_activity_chart_labels_never_cover_its_bars() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start(&home);
    // Two events in each of the last 16 minutes: every bar of the 15-minute window
    // is as tall as the chart, even if the minute turns during the test.
    let minute = swarm_obs::Timestamp::now().unix_ms().div_euclid(60_000);
    let events: Vec<Event> = (0..16)
        .flat_map(|ago| (1..=2).map(move |s| (ago, s)))
        .map(|(ago, s)| {
            let mut ev = event("busy", Kind::Log, "tick");
            ev.ts = swarm_obs::Timestamp::from_unix_ms((minute - ago) * 60_000 + s * 1000);
            ev
        })
        .collect();
    c.post_events(&events);

    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url("/"));
    b.wait_for("the stream to connect", LIVE, WAIT);
    // Every piece of text in the chart (not the bars' tooltips) and every bar.
    let geometry = "(() => {
        const box = document.getElementById('activity');
        const rect = e => { const b = e.getBoundingClientRect();
          return { left: b.left, right: b.right, top: b.top, bottom: b.bottom, width: b.width, height: b.height }; };
        const labels = [...box.querySelectorAll('*')]
          .filter(e => e.children.length === 0 && e.textContent.trim() && e.tagName.toLowerCase() !== 'title')
          .map(e => ({ text: e.textContent, ...rect(e) }));
        const bars = [...box.querySelectorAll('rect[class^=\"b-\"]')].map(rect);
        return { box: rect(box), labels, bars };
      })()";
    for width in [1400, 800, 400] {
        set_viewport(&mut b, width, 900);
        let g = wait_until(
            &mut b,
            &format!("the chart with its labels at {width} px"),
            geometry,
            |g| {
                g["bars"].as_array().is_some_and(|b| b.len() >= 14)
                    && g["labels"].as_array().is_some_and(|l| l.len() >= 3)
            },
        );
        let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        for label in g["labels"].as_array().unwrap() {
            assert!(
                f(label, "width") > 0.0 && f(label, "height") > 0.0,
                "a label is not shown at {width} px: {label}"
            );
            assert!(
                f(label, "left") >= f(&g["box"], "left") - 0.5
                    && f(label, "right") <= f(&g["box"], "right") + 0.5,
                "a label leaves the chart at {width} px: {label} in {}",
                g["box"]
            );
            for bar in g["bars"].as_array().unwrap() {
                assert!(
                    !overlap(label, bar),
                    "the label {label} covers the bar {bar} at {width} px"
                );
            }
        }
        b.screenshot(&artifacts_dir().join(format!("dashboard-activity-{width}px.png")));
    }
    assert_page_clean(&mut b, &[]);
}

/// JavaScript: the text shown in the side panels (what a person sees, not what is
/// hidden) and the event count.
const SIDE_TEXT: &str = "({ side: document.querySelector('.side').innerText,
     count: document.getElementById('count').textContent })";

/// What no panel may say before it has an answer.
const NONE_YET: [&str; 4] = [
    "No heartbeats yet",
    "No probes",
    "No alerts",
    "No Claude Code sessions",
];

#[test]
fn side_panels_say_loading_until_answered_and_nothing_behind_the_token_prompt() {
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start_with(&home, &["--token", TOKEN]);
    let mut b = Browser::start(1400, 900);

    // Behind the token prompt nothing was read, so nothing is said to be missing.
    b.navigate(&c.url("/"));
    b.wait_for(
        "the token prompt",
        "!document.getElementById('token-form').hidden && document.getElementById('conn').dataset.state === 'unauthorized'",
        WAIT,
    );
    let says_none = |v: &Value| {
        let side = v["side"].as_str().unwrap_or("");
        NONE_YET.iter().any(|none| side.contains(none))
    };
    let shown = b.eval(SIDE_TEXT);
    assert!(!says_none(&shown), "behind the token prompt: {shown:#}");
    // Every panel and the chart hear the refusal and say so.
    let shown = wait_until(
        &mut b,
        "every panel waiting for the token",
        SIDE_TEXT,
        |v| {
            says_none(v)
                || v["side"]
                    .as_str()
                    .unwrap_or("")
                    .matches("Waiting for the token.")
                    .count()
                    == 5
        },
    );
    assert!(!says_none(&shown), "behind the token prompt: {shown:#}");
    assert_eq!(shown["count"], "", "no event count before any was read");

    // With the token, every answer held back: each panel is loading.
    b.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": "(() => {
            let open;
            const gate = new Promise(r => { open = r; });
            window.openGate = () => open();
            const real = window.fetch.bind(window);
            window.fetch = (...args) => gate.then(() => real(...args));
          })()" }),
    );
    // (A new document: the same address with a fragment would only scroll.)
    b.navigate("about:blank");
    b.navigate(&c.url(&format!("/#token={TOKEN}")));
    b.wait_for("the stream to connect", LIVE, WAIT);
    let side = b.eval(SIDE_TEXT)["side"].as_str().unwrap().to_owned();
    for none in NONE_YET {
        assert!(!side.contains(none), "before any answer: {side:?}");
    }
    assert_eq!(
        side.matches("Loading…").count(),
        5,
        "each panel is loading: {side:?}"
    );
    assert!(!side.contains("Waiting for the token"), "{side:?}");

    // The answers come: an empty collector says so in every panel.
    b.eval("window.openGate()");
    let side = wait_until(&mut b, "every panel's answer", SIDE_TEXT, |v| {
        let side = v["side"].as_str().unwrap_or("");
        NONE_YET.iter().all(|none| side.contains(none))
    });
    assert!(
        !side["side"].as_str().unwrap().contains("Loading"),
        "{side:#}"
    );
    assert_page_clean(&mut b, &["status of 401"]);
}

/// JavaScript: the turns the session view shows, in its order.
const TURNS: &str = "[...document.querySelectorAll('#sv-turns .turn')].map(t => ({
    seq: Number(t.dataset.seq), kind: t.dataset.kind, id: t.dataset.toolUseId || null,
    error: t.classList.contains('is-error'), text: t.querySelector('.text').textContent }))";

/// The kinds of the turns `TURNS` read.
fn kinds(turns: &Value) -> Vec<&str> {
    turns
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn a_session_opens_its_story_lanes_and_conversation_linked_to_the_timeline() {
    use swarm_obs_suite::transcripts::{self, ClaudeUser, SESSION, SUBAGENT};
    if !have_programs("dashboard", Browser::PROGRAMS) {
        return;
    }
    let home = TestHome::new();
    let user = ClaudeUser::new();
    let shift = transcripts::shift_ms();
    user.install_fixtures(SESSION, shift);
    let c = user.collector(&home, &[]);
    let (main, sub) = (user.main_path(SESSION), user.sub_path(SESSION, SUBAGENT));
    let run = transcripts::fixture_events(SESSION, &main, Some(&sub), shift);
    c.post_events(&run);
    // A session whose transcript is not there.
    let gone = "60e5e5e5-0000-4000-8000-000000000404";
    let gone_path = user.main_path(gone);
    c.post_events(&[transcripts::hook(
        gone,
        "SessionStart",
        swarm_obs::Timestamp::now(),
        None,
        json!({"transcript_path": gone_path.to_str().unwrap()}),
    )]);
    let elsewhere = post(&c, &event("elsewhere", Kind::Log, "not in the session"));

    let mut b = Browser::start(1400, 900);
    b.navigate(&c.url("/"));
    b.wait_for("the stream to connect", LIVE, WAIT);
    b.wait_for("the unrelated event", &row(&elsewhere), WAIT);
    let pick = |id: &str| format!("document.querySelector('#sessions li[data-session=\"{id}\"]')");
    b.wait_for("the session in the panel", &pick(SESSION), WAIT);
    b.eval(&format!("{}.click()", pick(SESSION)));
    b.wait_for(
        "the session view",
        "!document.getElementById('session-view').hidden",
        WAIT,
    );
    // The timeline keeps to the session while the view is open.
    b.wait_for(
        "the session filter",
        &format!("location.search.includes('session={SESSION}')"),
        WAIT,
    );
    wait_until(
        &mut b,
        "the session's events only",
        "[...document.querySelectorAll('#timeline .row')].map(r => r.dataset.source)",
        |v| {
            v.as_array()
                .is_some_and(|a| a.len() == run.len() && a.iter().all(|s| s == "proj"))
        },
    );

    // Its lanes: the main agent and the subagent, each with its state, calls,
    // errors and last message.
    let lanes = wait_until(
        &mut b,
        "both lanes",
        "[...document.querySelectorAll('#sv-lanes .sv-lane')].map(l => [l.dataset.agent, l.textContent])",
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    );
    assert_eq!(lanes[0][0], "main", "{lanes:#}");
    let text = lanes[0][1].as_str().unwrap();
    for part in ["ended", "3 tool calls", "1 error", "« All steps done."] {
        assert!(text.contains(part), "main lane lacks {part:?}: {text}");
    }
    assert_eq!(lanes[1][0], SUBAGENT, "{lanes:#}");
    let text = lanes[1][1].as_str().unwrap();
    for part in ["general-purpose", "ended", "1 tool call", "0 errors"] {
        assert!(text.contains(part), "subagent lane lacks {part:?}: {text}");
    }
    // No telemetry for this session: the view says how Claude Code sends it.
    let hint = b.eval(
        "(() => { const e = document.getElementById('sv-cost-hint'); return e.hidden ? '' : e.textContent; })()",
    );
    let hint = hint.as_str().unwrap_or("");
    assert!(
        hint.contains("CLAUDE_CODE_ENABLE_TELEMETRY=1") && hint.contains(c.addr()),
        "{hint:?}"
    );

    // The main agent's conversation, in order, the failing command marked.
    let turns = wait_until(&mut b, "the main agent's turns", TURNS, |v| {
        v.as_array().is_some_and(|a| a.len() == 8)
    });
    assert_eq!(
        kinds(&turns),
        [
            "prompt",
            "tool_use",
            "tool_result",
            "tool_use",
            "tool_result",
            "tool_use",
            "tool_result",
            "text"
        ]
    );
    let seqs: Vec<u64> = turns
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..8).collect::<Vec<_>>());
    assert!(
        turns[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Follow this script")
    );
    assert_eq!(
        turns[1]["text"],
        r#"{"command":"echo hello-from-bash","description":"Run a scripted command"}"#
    );
    assert_eq!(turns[1]["id"], "toolu_fake_0000");
    let errors: Vec<u64> = turns
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["error"] == true)
        .map(|t| t["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(errors, [4], "only the failing ls is an error: {turns:#}");
    assert_eq!(
        b.eval("document.querySelector('#sv-turns .turn[data-seq=\"4\"] .err')?.textContent"),
        "error"
    );
    assert_eq!(turns[7]["text"], "All steps done.");
    assert_eq!(
        b.eval("document.getElementById('sv-older').hidden"),
        true,
        "every turn is on the first page"
    );

    // A tool call leads to its events in the timeline: the PreToolUse selected,
    // its events (the call and its failure) highlighted, and no other.
    let call = "toolu_fake_0003";
    let expected: Vec<String> = run
        .iter()
        .filter(|e| e.tool_use_id.as_deref() == Some(call))
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(expected.len(), 2);
    b.eval(&format!(
        "document.querySelector('#sv-turns .turn[data-tool-use-id=\"{call}\"][data-kind=\"tool_use\"] button.link').click()"
    ));
    let linked = wait_until(
        &mut b,
        "the call's events highlighted",
        "[...document.querySelectorAll('#timeline .row.linked')].map(r => [r.dataset.id, r.dataset.toolUseId]).sort()",
        |v| v.as_array().is_some_and(|a| a.len() == 2),
    );
    let mut want: Vec<Value> = expected.iter().map(|id| json!([id, call])).collect();
    want.sort_by_key(|v| v[0].as_str().unwrap().to_owned());
    assert_eq!(linked, Value::Array(want), "{linked:#}");
    let pre = run
        .iter()
        .find(|e| e.tool_use_id.as_deref() == Some(call) && e.hook.as_deref() == Some("PreToolUse"))
        .unwrap();
    assert_eq!(
        b.eval("document.querySelector('#timeline .row.selected')?.dataset.id"),
        pre.id.to_string()
    );
    assert!(
        b.eval("document.getElementById('detail-body').textContent")
            .as_str()
            .unwrap()
            .contains(call)
    );

    // The subagent's conversation.
    b.eval(&format!(
        "document.querySelector('#sv-agents button[data-agent=\"{SUBAGENT}\"]').click()"
    ));
    let turns = wait_until(&mut b, "the subagent's turns", TURNS, |v| {
        v.as_array()
            .is_some_and(|a| a.len() == 4 && a[0]["text"] == "run: echo hello-from-subagent")
    });
    assert_eq!(kinds(&turns), ["prompt", "tool_use", "tool_result", "text"]);
    assert_eq!(turns[1]["id"], "toolu_fake_0009");
    assert!(
        turns[1]["text"]
            .as_str()
            .unwrap()
            .contains("echo hello-from-subagent")
    );
    assert_eq!(
        b.eval(&format!(
            "document.querySelector('#sv-agents button[data-agent=\"{SUBAGENT}\"]').getAttribute('aria-pressed')"
        )),
        "true"
    );

    // Back on the main agent, a turn written now arrives while the view is open;
    // markup in it stays text and runs nothing.
    b.eval("document.querySelector('#sv-agents button[data-agent=\"main\"]').click()");
    wait_until(&mut b, "the main agent's turns again", TURNS, |v| {
        v.as_array().is_some_and(|a| a.len() == 8)
    });
    let line = json!({
        "type": "assistant",
        "uuid": "feedface-0000-4000-8000-000000000001",
        "timestamp": swarm_obs::Timestamp::now().to_string(),
        "message": {"role": "assistant", "content": [{"type": "text", "text": XSS}]},
    });
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&main)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
    let turns = wait_until(&mut b, "the new turn, live", TURNS, |v| {
        v.as_array().is_some_and(|a| a.len() == 9)
    });
    assert_eq!(turns[8]["text"], XSS);
    assert_eq!(turns[8]["seq"], 8);
    assert_eq!(
        b.eval("document.querySelectorAll('#session-view img, #session-view [onerror]').length"),
        0
    );

    b.screenshot(&artifacts_dir().join("dashboard-session-view.png"));

    // Esc closes the view.
    for kind in ["keyDown", "keyUp"] {
        b.call(
            "Input.dispatchKeyEvent",
            json!({"type": kind, "key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27}),
        );
    }
    b.wait_for(
        "the view closed",
        "document.getElementById('session-view').hidden",
        WAIT,
    );

    // A session whose transcript is missing: the endpoint's own message.
    let mut resp = c
        .get(&format!("/v1/sessions/{gone}/conversation"))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 404);
    let answer: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let message = answer["error"].as_str().unwrap().to_owned();
    b.wait_for("the other session", &pick(gone), WAIT);
    b.eval(&format!("{}.click()", pick(gone)));
    let shown = b.wait_for(
        "the 404 said",
        "(() => { const e = document.getElementById('sv-error'); return !e.hidden && e.textContent; })()",
        WAIT,
    );
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("404") && shown.contains(&message),
        "{shown} / {message}"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#sv-turns .turn').length"),
        0
    );
    // Picked again, the view closes and the timeline shows everything.
    b.eval(&format!("{}.click()", pick(gone)));
    b.wait_for("no filter", "location.search === ''", WAIT);
    assert_eq!(
        b.eval("document.getElementById('session-view').hidden"),
        true
    );
    assert_page_clean(&mut b, &["/conversation"]);
}
