//! Web pages of other sites cannot read or steer the collector: DNS rebinding (a
//! foreign name resolving to 127.0.0.1) meets a Host check, and cross-origin
//! WebSocket, SSE and POSTs meet an Origin check. First on raw HTTP, then in real
//! Chromium with `--host-resolver-rules` mapping a foreign name to 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use swarm_obs::{Event, Kind};
use swarm_obs_suite::{Browser, ChildGuard, Collector, TestHome, free_port, have_programs};

/// Sends one raw request and returns the status code and the whole answer.
fn raw(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the collector");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(addr: &str, path: &str, host: &str, extra: &str) -> u16 {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n{extra}connection: close\r\n\r\n"),
    )
    .0
}

fn post(addr: &str, host: &str, origin: Option<&str>, body: &str) -> u16 {
    let origin = origin.map_or_else(String::new, |o| format!("origin: {o}\r\n"));
    raw(
        addr,
        &format!(
            "POST /v1/events HTTP/1.1\r\nhost: {host}\r\n{origin}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .0
}

#[test]
fn only_the_collectors_own_host_and_origin_are_answered() {
    let home = TestHome::new();
    let c = Collector::start_with(
        &home,
        &[
            "--allow-host",
            "dev.box",
            "--allow-origin",
            "http://ui.example:3000",
        ],
    );
    let addr = c.addr().to_owned();
    let port = addr.rsplit(':').next().unwrap();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("dev.box:{port}"),
    ] {
        assert_eq!(get(&addr, "/v1/events", &host, ""), 200, "{host}");
    }
    for host in [
        format!("evil.example:{port}"),
        "127.0.0.1:1".into(),
        String::new(),
    ] {
        assert_eq!(get(&addr, "/v1/events", &host, ""), 421, "{host:?}");
        assert_eq!(
            get(&addr, "/", &host, ""),
            421,
            "the page too, for {host:?}"
        );
    }
    let own = format!("127.0.0.1:{port}");
    let ev = || Event::new("web", Kind::Log, "posted").to_json_line();
    assert_eq!(post(&addr, &own, Some("http://evil.example"), &ev()), 403);
    assert_eq!(post(&addr, &own, Some("null"), &ev()), 403);
    assert_eq!(
        post(&addr, &format!("evil.example:{port}"), None, &ev()),
        421
    );
    assert_eq!(
        post(&addr, &own, Some(&format!("http://{own}")), &ev()),
        202
    );
    assert_eq!(
        post(&addr, &own, Some("http://ui.example:3000"), &ev()),
        202
    );
    assert_eq!(post(&addr, &own, None, &ev()), 202, "tools send no Origin");
    let upgrade = "upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    assert_eq!(
        raw(
            &addr,
            &format!(
                "GET /v1/ws HTTP/1.1\r\nhost: {own}\r\norigin: http://evil.example\r\n{upgrade}\r\n"
            )
        )
        .0,
        403
    );
    assert_eq!(
        raw(
            &addr,
            &format!("GET /v1/ws HTTP/1.1\r\nhost: {own}\r\norigin: http://{own}\r\n{upgrade}\r\n")
        )
        .0,
        101
    );
    assert_eq!(
        get(&addr, "/v1/stream", &own, "origin: http://evil.example\r\n"),
        403
    );
    // Three events were accepted; the refused ones never reached the store.
    assert_eq!(
        c.get_json("/v1/events")["events"].as_array().unwrap().len(),
        3
    );
}

#[test]
fn pages_of_other_sites_in_chromium_neither_read_nor_post() {
    if !have_programs("hostile_web", &["chromium", "python3"]) {
        return;
    }
    let home = TestHome::new();
    let c = Collector::start(&home);
    let addr = c.addr().to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    c.post_events(&[Event::new("secret-project", Kind::Log, "a private prompt")]);

    // The attacker's own site, on another loopback port.
    let site = tempfile::tempdir().unwrap();
    std::fs::write(
        site.path().join("index.html"),
        "<!doctype html><title>evil</title>",
    )
    .unwrap();
    let site_port = free_port();
    let _server = ChildGuard::spawn(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &site_port.to_string(),
            ])
            .current_dir(site.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    let mut b = Browser::start_with_args(
        1000,
        700,
        &["--host-resolver-rules=MAP evil.example 127.0.0.1"],
    );
    // DNS rebinding: the foreign name resolves to the collector.
    b.navigate(&format!("http://evil.example:{port}/v1/events"));
    let text = b.eval("document.body ? document.body.innerText : ''");
    let text = text.as_str().unwrap_or("");
    assert!(
        !text.contains("a private prompt"),
        "the page read events: {text}"
    );
    assert!(text.contains("does not answer for host"), "{text}");

    // A page of another origin tries the WebSocket, the stream and a POST.
    b.navigate(&format!("http://evil.example:{site_port}/"));
    b.wait_for(
        "the attacker's page",
        "document.title === 'evil'",
        Duration::from_secs(20),
    );
    let ws = b.eval(&format!(
        "new Promise(r => {{ const w = new WebSocket('ws://127.0.0.1:{port}/v1/ws');
            w.onopen = () => r('open'); w.onerror = () => r('refused'); setTimeout(() => r('timeout'), 5000); }})"
    ));
    assert_eq!(ws, "refused", "cross-site WebSocket hijacking");
    let sse = b.eval(&format!(
        "new Promise(r => {{ const s = new EventSource('http://127.0.0.1:{port}/v1/stream');
            s.onmessage = () => r('read'); s.onerror = () => {{ s.close(); r('refused'); }};
            setTimeout(() => r('timeout'), 5000); }})"
    ));
    assert_eq!(sse, "refused");
    let posted = b.eval(&format!(
        "fetch('http://127.0.0.1:{port}/v1/events', {{method: 'POST', mode: 'no-cors',
            headers: {{'content-type': 'text/plain'}},
            body: JSON.stringify({{v: 1, id: '01890000-0000-7000-8000-000000000001', ts: '2026-01-01T00:00:00.000Z', source: 'evil', kind: 'log', level: 'info', msg: 'forged'}})}})
            .then(() => 'sent', () => 'failed')"
    ));
    assert!(posted == "sent" || posted == "failed", "{posted}");
    std::thread::sleep(Duration::from_millis(300));
    let stored = c.get_json("/v1/events?source=evil");
    assert_eq!(stored["events"].as_array().unwrap().len(), 0, "{stored}");

    // The dashboard itself, on its own origin, still works.
    b.navigate(&format!("http://127.0.0.1:{port}/"));
    b.wait_for(
        "the dashboard showing the event",
        "document.body.innerText.includes('a private prompt')",
        Duration::from_secs(20),
    );
}
