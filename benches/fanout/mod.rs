//! Live fan-out: many viewers (SSE or WebSocket) of one stream while several
//! posters send single events at once. Every (event, viewer) pair is timed from
//! the start of its POST to the moment the viewer's socket yields it, and the
//! collector's CPU time for the run is read from `/proc`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use swarm_obs::{Event, Kind};
use swarm_obs_suite::{Collector, http};

/// How the viewers connect.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Sse,
    WebSocket,
}

/// One fan-out run's figures.
pub struct FanOut {
    /// Sorted POST-start → receipt latency of every delivered (event, viewer) pair.
    pub latencies: Vec<Duration>,
    /// Pairs delivered, and pairs expected (events × viewers).
    pub delivered: usize,
    pub expected: usize,
    /// The collector's user + system CPU time over the run.
    pub cpu: Duration,
}

impl FanOut {
    /// CPU time per delivered pair.
    pub fn cpu_per_delivery(&self) -> Duration {
        self.cpu / self.delivered.max(1) as u32
    }
}

/// The CPU time `pid` has used so far (user + system), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `)`.
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros((ticks(11) + ticks(12)) * 1_000_000 / hz)
}

/// The event id in a WebSocket event message (`…"data":{…"id":"<uuid>"…`).
fn ws_event_id(text: &str) -> Option<&str> {
    let data = text.find("\"data\":")?;
    let at = text[data..].find("\"id\":\"")? + data + 6;
    text.get(at..at + 36)
}

type Receipts = Vec<(String, Instant)>;

/// Opens one viewer of `source` and returns once it is subscribed; its thread
/// records every event it receives until `want` have come or 60 s pass.
fn viewer(
    c: &Collector,
    transport: Transport,
    source: &str,
    want: usize,
) -> std::thread::JoinHandle<Receipts> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let addr = c.addr().to_owned();
    let source = source.to_owned();
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut got = Vec::with_capacity(want);
        match transport {
            Transport::Sse => {
                let mut s = TcpStream::connect(&addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                write!(
                    s,
                    "GET /v1/stream?n=0&source={source} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
                )
                .expect("send");
                let mut lines = BufReader::new(s);
                let mut line = String::new();
                let mut ready = Some(ready_tx);
                while got.len() < want && Instant::now() < deadline {
                    line.clear();
                    match lines.read_line(&mut line) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => continue,
                    }
                    if line == "\r\n" {
                        // End of the response head: subscribed.
                        if let Some(tx) = ready.take() {
                            tx.send(()).ok();
                        }
                    } else if let Some(id) = line.strip_prefix("id: ") {
                        got.push((id.trim_end().to_owned(), Instant::now()));
                    }
                }
            }
            Transport::WebSocket => {
                let stream = TcpStream::connect(&addr).expect("connect");
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let (mut ws, _) = tungstenite::client::client(format!("ws://{addr}/v1/ws"), stream)
                    .expect("WebSocket handshake");
                let sub = format!(r#"{{"type":"subscribe","channels":["source:{source}"]}}"#);
                ws.send(tungstenite::Message::text(sub)).expect("subscribe");
                let mut ready = Some(ready_tx);
                while got.len() < want && Instant::now() < deadline {
                    let Ok(m) = ws.read() else { continue };
                    let tungstenite::Message::Text(t) = m else {
                        continue;
                    };
                    if t.contains("\"type\":\"subscribed\"") {
                        if let Some(tx) = ready.take() {
                            tx.send(()).ok();
                        }
                    } else if let Some(id) = ws_event_id(t.as_str()) {
                        got.push((id.to_owned(), Instant::now()));
                    }
                }
                let _ = ws.close(None);
            }
        }
        got
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the viewer subscribed");
    handle
}

/// `events` single-event POSTs from `posters` keep-alive clients at once, with
/// `viewers` viewers of their source connected by `transport`.
pub fn run(
    c: &Collector,
    transport: Transport,
    viewers: usize,
    posters: usize,
    events: usize,
    round: usize,
) -> FanOut {
    let source = format!("fanout-{round}");
    let watching: Vec<_> = (0..viewers)
        .map(|_| viewer(c, transport, &source, events))
        .collect();
    let start = Arc::new(Barrier::new(posters + 1));
    let url = c.url("/v1/events");
    let sending: Vec<_> = (0..posters)
        .map(|p| {
            let (start, url, source) = (start.clone(), url.clone(), source.clone());
            let n = events / posters + usize::from(p < events % posters);
            std::thread::spawn(move || {
                let agent = http();
                let evs: Vec<Event> = (0..n)
                    .map(|i| Event::new(source.as_str(), Kind::Log, format!("fan-out {p}/{i}")))
                    .collect();
                let mut sent = Vec::with_capacity(n);
                start.wait();
                for ev in evs {
                    let body = ev.to_json_line();
                    let t = Instant::now();
                    let mut r = agent
                        .post(&url)
                        .header("content-type", "application/x-ndjson")
                        .send(body.as_bytes())
                        .expect("POST");
                    assert!(r.status().is_success(), "POST answered {}", r.status());
                    let _ = r.body_mut().read_to_vec();
                    sent.push((ev.id.to_string(), t));
                }
                sent
            })
        })
        .collect();
    let cpu0 = cpu_time(c.pid());
    start.wait();
    let mut started: HashMap<String, Instant> = HashMap::with_capacity(events);
    for s in sending {
        started.extend(s.join().expect("poster"));
    }
    let mut latencies = Vec::with_capacity(events * viewers);
    for w in watching {
        for (id, at) in w.join().expect("viewer") {
            if let Some(t) = started.get(&id) {
                latencies.push(at.saturating_duration_since(*t));
            }
        }
    }
    let cpu = cpu_time(c.pid()).saturating_sub(cpu0);
    latencies.sort();
    FanOut {
        delivered: latencies.len(),
        expected: events * viewers,
        latencies,
        cpu,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_event_id_in_a_ws_message() {
        let m = r#"{"type":"event","event":"log","data":{"v":1,"id":"0192f5e4-6c1a-7c3e-8a4b-000000000001","ts":"x"}}"#;
        assert_eq!(
            super::ws_event_id(m),
            Some("0192f5e4-6c1a-7c3e-8a4b-000000000001")
        );
    }
}
