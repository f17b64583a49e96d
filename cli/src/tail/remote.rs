//! Tailing the collector: history from `GET /v1/events`, then the live
//! Server-Sent Events stream from `GET /v1/stream`, resumed with `Last-Event-ID`
//! whenever the connection drops, so a collector restart costs no event and
//! repeats none. While the collector is away, the event files are followed instead.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use swarm_obs::{CollectorAddress, Config, Event, EventId, StateRoot, Timestamp};

use crate::sessions::{Session, SessionsAnswer};

use super::files::FileFeed;
use super::select::Selection;
use super::sort_events;

/// Events one history request asks for (the collector's cap).
const PAGE: usize = 1000;
/// History pages read at most: a million events is far beyond a terminal.
const MAX_PAGES: usize = 1000;
/// Backfill asked of a stream that has no event to resume from.
const MAX_BACKFILL: usize = 1000;
/// A stream that sends nothing, not even a keep-alive (every 15 s), for this long
/// is taken for dead and reopened.
const STREAM_SILENCE: Duration = Duration::from_secs(45);
/// Largest history page read, in bytes: events carry capped payloads.
const MAX_PAGE_BYTES: u64 = 256 << 20;
/// Largest answer of any other GET read from the collector.
const MAX_BODY_BYTES: u64 = 64 << 20;
/// Sessions asked for when a stream that carries their states (re)connects.
const SESSIONS_LIMIT: usize = 50;

/// Where the collector is: a fixed address, or discovered again before every
/// (re)connection, since a restarted collector may listen on a new port.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// Always this address.
    Fixed(CollectorAddress),
    /// `SWARM_OBS_COLLECTOR`, else `collector.json`, else the configuration.
    Discover {
        /// The state root holding `collector.json`.
        root: StateRoot,
        /// The loaded configuration.
        config: Box<Config>,
    },
}

impl Endpoint {
    /// The collector's address now, if one is known.
    pub fn address(&self) -> Option<CollectorAddress> {
        match self {
            Endpoint::Fixed(a) => Some(a.clone()),
            Endpoint::Discover { root, config } => CollectorAddress::discover(root, config),
        }
    }
}

/// What the stream thread hands the follower.
enum Message {
    Event(Box<Event>),
    /// Sessions' states, when the follower asked for them.
    Sessions(SessionNews),
    /// The stream is gone, and why.
    Down(String),
    /// The stream is back.
    Up(String),
}

/// Sessions' states as a stream that carries them (`Selection::states`) brings
/// them, in arrival order.
#[derive(Debug)]
pub enum SessionNews {
    /// The whole list, read each time the stream (re)connects: states moved while
    /// it was away were not pushed to it.
    All(Vec<Session>),
    /// One session whose state moved.
    One(Box<Session>),
}

/// How long the collector may be away before the event files are followed instead.
const FALLBACK_AFTER: Duration = Duration::from_secs(2);
/// How far before the last streamed event the files are read from when falling
/// back: events that reached the files but not yet the stream. Repeats are dropped
/// by the follower.
const FALLBACK_SLACK_MS: i64 = 10_000;

/// A live follower of the collector's stream. The stream is read on its own
/// thread; events arrive in the collector's order. While the collector is away the
/// event files under `root` are followed, and the stream, once back, resumes where
/// it stopped (its repeats of what the files showed are dropped by the follower).
pub struct CollectorFeed {
    rx: mpsc::Receiver<Message>,
    closed: Arc<AtomicBool>,
    root: StateRoot,
    started: Timestamp,
    last_ts: Option<Timestamp>,
    down_since: Option<Instant>,
    files: Option<FileFeed>,
    news: Vec<SessionNews>,
}

impl Drop for CollectorFeed {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// An HTTP agent for the loopback collector: no proxy, statuses returned rather
/// than raised, bounded connect and response waits, and `global` as the limit for
/// a whole request (`None` for a stream).
pub fn agent(global: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_recv_response(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(STREAM_SILENCE))
        .timeout_global(global)
        .build()
        .into()
}

/// GETs `path` (with its query) from the collector at `address` and parses the
/// JSON answer; an error status becomes an error naming the collector's reason.
pub fn get_json<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    address: &CollectorAddress,
    path: &str,
) -> Result<T> {
    let url = address.url(path);
    let mut resp = authorized(agent.get(&url), address)
        .call()
        .with_context(|| format!("the collector at {url} is not answering"))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    if status != 200 {
        let reason = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect());
        let hint = if status == 401 {
            " (set SWARM_OBS_TOKEN to the collector's token)"
        } else {
            ""
        };
        bail!("{url} answered HTTP {status}: {reason}{hint}");
    }
    serde_json::from_str(&text)
        .with_context(|| format!("{url} did not answer the JSON this version expects"))
}

/// `req` with the collector's bearer token, when it has one.
pub fn authorized<B>(
    req: ureq::RequestBuilder<B>,
    address: &CollectorAddress,
) -> ureq::RequestBuilder<B> {
    match &address.token {
        Some(t) => req.header("authorization", &format!("Bearer {t}")),
        None => req,
    }
}

/// Checks that a collector answers `/healthz` at `address`.
pub fn probe(address: &CollectorAddress) -> Result<()> {
    let url = address.url("/healthz");
    let resp = authorized(agent(Some(Duration::from_secs(2))).get(&url), address)
        .call()
        .with_context(|| format!("no collector answers at {url}"))?;
    if resp.status() != 200 {
        bail!("{url} answered HTTP {}", resp.status());
    }
    Ok(())
}

/// Reads the history from the collector: the newest `lines` selected events
/// (every selected one when `None`), oldest first, and the id to resume the live
/// stream from (the newest event the query saw, selected or not).
///
/// The collector pages in arrival order, and events can arrive late (caught up
/// from the files after a restart), so the newest `lines` by arrival only bound
/// the time the newest `lines` by time start from: a second pass reads every
/// event since then and keeps the newest by time.
pub fn history(
    address: &CollectorAddress,
    sel: &Selection,
    lines: Option<usize>,
) -> Result<(Vec<Event>, Option<EventId>)> {
    let params = sel.server_params();
    let (mut out, newest) = query(address, sel, &params, lines)?;
    if let Some(n) = lines
        && n > 0
        && out.len() >= n
    {
        sort_events(&mut out);
        let from = out[out.len() - n].ts;
        let mut params = params;
        params.retain(|(k, _)| *k != "since");
        params.push(("since", from.to_string()));
        out = query(address, sel, &params, None)?.0;
    }
    sort_events(&mut out);
    if let Some(n) = lines {
        let extra = out.len().saturating_sub(n);
        out.drain(..extra);
    }
    Ok((out, newest))
}

/// Pages through `GET /v1/events` (newest arrival first) until `want` selected
/// events are found (all of them when `None`); returns them and the id of the
/// newest event seen.
fn query(
    address: &CollectorAddress,
    sel: &Selection,
    params: &[(&'static str, String)],
    want: Option<usize>,
) -> Result<(Vec<Event>, Option<EventId>)> {
    let agent = agent(Some(Duration::from_secs(60)));
    let url = address.url("/v1/events");
    let want = want.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut newest = None;
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        // With no history wanted, one event still tells where the stream resumes.
        let limit = if want == 0 { 1 } else { PAGE };
        let mut req = authorized(agent.get(&url), address).query("limit", limit.to_string());
        for (k, v) in params {
            req = req.query(*k, v);
        }
        if let Some(c) = &cursor {
            req = req.query("cursor", c);
        }
        let mut resp = req.call().with_context(|| format!("cannot query {url}"))?;
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_PAGE_BYTES)
            .read_to_string()
            .with_context(|| format!("cannot read the answer of {url}"))?;
        if resp.status() != 200 {
            bail!("{url} answered HTTP {}: {}", resp.status(), body.trim());
        }
        let page: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("{url} did not answer JSON"))?;
        let events = page["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for raw in events {
            let Ok(ev) = serde_json::from_value::<Event>(raw.clone()) else {
                continue;
            };
            newest.get_or_insert(ev.id);
            if out.len() < want && sel.matches(&ev) {
                out.push(ev);
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) if out.len() < want => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    Ok((out, newest))
}

impl CollectorFeed {
    /// Starts following the stream: from just after `resume` when given, else with
    /// the collector's backfill (the caller drops what it has shown already).
    pub fn start(
        endpoint: Endpoint,
        root: StateRoot,
        sel: &Selection,
        resume: Option<EventId>,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let closed = Arc::new(AtomicBool::new(false));
        let params = sel.server_params();
        let flag = closed.clone();
        let states = sel.states;
        std::thread::Builder::new()
            .name("tail-stream".into())
            .spawn(move || {
                let stream = Stream {
                    params: &params,
                    states,
                    tx: &tx,
                    closed: &flag,
                };
                stream_loop(&endpoint, &stream, resume);
            })
            .context("cannot start the thread that reads the collector's stream")?;
        Ok(Self {
            rx,
            closed,
            root,
            started: Timestamp::now(),
            last_ts: None,
            down_since: None,
            files: None,
            news: Vec::new(),
        })
    }

    /// Sessions' states received since the last call, oldest first (only when the
    /// selection asked for them).
    pub fn take_session_news(&mut self) -> Vec<SessionNews> {
        std::mem::take(&mut self.news)
    }

    /// Events received within `wait` (all that are ready once the first arrives),
    /// or read from the files while the collector is away, and notices about the
    /// connection for the user.
    pub fn next_batch(&mut self, wait: Duration, notices: &mut Vec<String>) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        let mut next = self.rx.recv_timeout(wait).ok();
        while let Some(m) = next {
            match m {
                Message::Event(ev) => {
                    self.last_ts = self.last_ts.max(Some(ev.ts));
                    out.push(*ev);
                }
                Message::Sessions(news) => self.news.push(news),
                Message::Down(why) => {
                    notices.push(format!(
                        "{why}; following the event files in {} until it is back",
                        self.root.events_dir().display()
                    ));
                    self.down_since = Some(Instant::now());
                }
                Message::Up(what) => {
                    notices.push(what);
                    self.down_since = None;
                    self.files = None;
                }
            }
            next = self.rx.try_recv().ok();
        }
        if self.files.is_none()
            && self
                .down_since
                .is_some_and(|t| t.elapsed() >= FALLBACK_AFTER)
        {
            let from = self.last_ts.unwrap_or(self.started).unix_ms() - FALLBACK_SLACK_MS;
            let since = Selection {
                since: Some(Timestamp::from_unix_ms(from.max(0))),
                ..Selection::default()
            };
            let (files, caught_up) = FileFeed::open(self.root.clone(), &since, None)?;
            out.extend(caught_up);
            self.files = Some(files);
        }
        if let Some(files) = &mut self.files {
            out.extend(files.poll()?);
        }
        Ok(out)
    }
}

/// How one connection ended.
enum StreamEnd {
    /// The follower is gone.
    Closed,
    /// The connection dropped or the collector went away; reconnect.
    Dropped(String),
    /// The viewer fell behind the collector's live ring; reconnect at once and
    /// catch up from the store.
    Lagged,
}

/// What one follower's stream thread asks for and where it sends it.
struct Stream<'a> {
    params: &'a [(&'static str, String)],
    /// Also sessions' states: the list at each connect, then each change.
    states: bool,
    tx: &'a mpsc::Sender<Message>,
    closed: &'a AtomicBool,
}

/// Connects, reads, and reconnects with the last id seen, until the follower is gone.
fn stream_loop(endpoint: &Endpoint, stream: &Stream<'_>, mut last: Option<EventId>) {
    let agent = agent(None);
    // Whether the user has been told the collector is away.
    let mut down = false;
    let mut backoff = Duration::from_millis(50);
    while !stream.closed.load(Ordering::Relaxed) {
        let end = match endpoint.address() {
            None => StreamEnd::Dropped("no collector is running".into()),
            Some(address) => read_stream(&agent, &address, stream, &mut last, &mut down),
        };
        match end {
            StreamEnd::Closed => return,
            StreamEnd::Lagged => continue,
            StreamEnd::Dropped(why) => {
                if !down {
                    let _ = stream.tx.send(Message::Down(why));
                    down = true;
                    backoff = Duration::from_millis(50);
                }
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

fn read_stream(
    agent: &ureq::Agent,
    address: &CollectorAddress,
    stream: &Stream<'_>,
    last: &mut Option<EventId>,
    down: &mut bool,
) -> StreamEnd {
    let url = address.url("/v1/stream");
    let mut req = authorized(agent.get(&url), address).header("accept", "text/event-stream");
    for (k, v) in stream.params {
        req = req.query(*k, v);
    }
    if stream.states {
        req = req.query("states", "1");
    }
    // The backfill also serves a resume whose event the collector no longer has
    // (expired, or a new store): it then sends its newest instead of nothing, and
    // what was already shown is dropped as a repeat.
    req = req.query("n", MAX_BACKFILL.to_string());
    if let Some(id) = last {
        req = req.header("last-event-id", &id.to_string());
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(e) => return StreamEnd::Dropped(format!("cannot reach the collector at {url}: {e}")),
    };
    if resp.status() != 200 {
        return StreamEnd::Dropped(format!("{url} answered HTTP {}", resp.status()));
    }
    if std::mem::take(down) {
        let _ = stream.tx.send(Message::Up(format!(
            "following the collector at {} again",
            address.host_port()
        )));
    }
    // Subscribed first, listed second: a change between the two arrives after the
    // list, so applying news in order leaves each session at its newest state.
    if stream.states {
        let path = format!("/v1/sessions?limit={SESSIONS_LIMIT}");
        let listed = get_json::<SessionsAnswer>(agent, address, &path);
        match listed {
            Ok(a) => {
                if stream
                    .tx
                    .send(Message::Sessions(SessionNews::All(a.sessions)))
                    .is_err()
                {
                    return StreamEnd::Closed;
                }
            }
            Err(e) => return StreamEnd::Dropped(format!("{e:#}")),
        }
    }
    let mut reader = SseReader::new(BufReader::new(resp.into_body().into_reader()));
    loop {
        if stream.closed.load(Ordering::Relaxed) {
            return StreamEnd::Closed;
        }
        let message = match reader.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => {
                return StreamEnd::Dropped(format!(
                    "the collector at {} ended the stream",
                    address.host_port()
                ));
            }
            Err(e) => {
                return StreamEnd::Dropped(format!(
                    "the stream from {} broke: {e}",
                    address.host_port()
                ));
            }
        };
        let sent = match message {
            SseMessage::Lagged => return StreamEnd::Lagged,
            SseMessage::Event(ev) => {
                *last = Some(ev.id);
                stream.tx.send(Message::Event(ev))
            }
            SseMessage::Session(s) => stream.tx.send(Message::Sessions(SessionNews::One(s))),
        };
        if sent.is_err() {
            return StreamEnd::Closed;
        }
    }
}

/// One message of the collector's stream that matters to a follower.
#[derive(Debug)]
enum SseMessage {
    /// An event.
    Event(Box<Event>),
    /// A session whose state moved.
    Session(Box<Session>),
    /// The viewer fell behind and missed events.
    Lagged,
}

/// Reads Server-Sent Events messages: `event:` and `data:` lines up to a blank line.
struct SseReader<R> {
    lines: R,
    line: String,
}

impl<R: BufRead> SseReader<R> {
    fn new(lines: R) -> Self {
        Self {
            lines,
            line: String::new(),
        }
    }

    /// The next event or lag notice, skipping keep-alives and data that is not an
    /// event; `None` at the end of the stream.
    fn next_message(&mut self) -> std::io::Result<Option<SseMessage>> {
        let (mut kind, mut data) = (String::new(), String::new());
        loop {
            self.line.clear();
            if self.lines.read_line(&mut self.line)? == 0 {
                return Ok(None);
            }
            let l = self.line.trim_end_matches(['\r', '\n']);
            if !l.is_empty() {
                if let Some(v) = l.strip_prefix("event:") {
                    kind = v.trim_start().to_owned();
                } else if let Some(v) = l.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
                // `id:` repeats the event's own id; comments (`:`) are keep-alives.
                continue;
            }
            // A blank line ends a message.
            if kind == "lagged" {
                return Ok(Some(SseMessage::Lagged));
            }
            if kind == "session" {
                if let Ok(s) = serde_json::from_str::<Session>(&data) {
                    return Ok(Some(SseMessage::Session(Box::new(s))));
                }
            } else if let Ok(ev) = Event::from_json(&data) {
                return Ok(Some(SseMessage::Event(Box::new(ev))));
            }
            kind.clear();
            data.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::Kind;

    #[test]
    fn sse_messages_are_parsed_and_noise_skipped() {
        let ev = Event::new("api", Kind::Log, "hello");
        let json = ev.to_json_line();
        let stream = format!(
            ": keep-alive\n\nid: {id}\nevent: log\ndata: {j}\n\nevent: log\ndata: not json\n\n\
             event: lagged\ndata: {{\"missed\":3}}\n\nid: {id}\r\ndata: {j}\r\n\r\npartial",
            id = ev.id,
            j = json.trim_end()
        );
        let mut r = SseReader::new(stream.as_bytes());
        match r.next_message().unwrap() {
            Some(SseMessage::Event(got)) => assert_eq!(*got, ev),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.next_message().unwrap(),
            Some(SseMessage::Lagged)
        ));
        match r.next_message().unwrap() {
            Some(SseMessage::Event(got)) => assert_eq!(got.id, ev.id),
            other => panic!("{other:?}"),
        }
        // A message cut off by the end of the stream is not an event.
        assert!(r.next_message().unwrap().is_none());
    }
}
