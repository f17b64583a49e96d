//! Live streams: Server-Sent Events and WebSocket, with backfill and resume.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::http::header;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use swarm_obs::Kind;
use tokio::sync::{broadcast, watch};

use crate::filter::Filter;
use crate::hub::{ClientKey, MAX_VIEWERS, MAX_VIEWERS_PER_CLIENT, Metrics, Refused, ViewerGuard};
use crate::hub::{Live, SessionNews, Stored};

use super::peer::Peer;
use crate::store::{self, Store};

use super::*;

/// Resolves once shutdown begins (holding no lock across later awaits).
pub(super) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What a live viewer is sent next.
pub(super) enum Item {
    Event(Arc<Stored>),
    Session(Arc<SessionNews>),
    Lagged(u64),
}

impl Item {
    /// The item as an SSE message; events and sessions share theirs with every viewer.
    fn sse(&self) -> Bytes {
        match self {
            Item::Event(s) => s.frames().sse.clone(),
            Item::Session(s) => s.frames().sse.clone(),
            Item::Lagged(n) => Bytes::from(format!("event: lagged\ndata: {{\"missed\":{n}}}\n\n")),
        }
    }
}

/// Most bytes of waiting messages written to a viewer at once.
const COALESCE_BYTES: usize = 64 << 10;

/// One live viewer's position: events from the store first (backfill or resume),
/// then the broadcast, skipping what the store already gave.
pub(super) struct Follow {
    store: Store,
    rx: broadcast::Receiver<Live>,
    filter: Filter,
    /// Also send sessions whose state or counts moved (`?states=1`): every
    /// session, whatever the event filter, but for a `session=` one only that one
    /// (a sessions panel lists them all while the timeline is narrowed).
    states: bool,
    pending: VecDeque<Arc<Stored>>,
    /// Highest `seq` already covered; broadcast events at or below it are skipped.
    cursor: i64,
    /// Still paging through the store after `cursor` (a resume).
    catching_up: bool,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    _guard: ViewerGuard,
}

impl Follow {
    /// What this viewer is sent of one broadcast item, if anything.
    fn admit(&mut self, live: Live) -> Option<Item> {
        match live {
            Live::Event(s) if s.seq <= self.cursor => None,
            Live::Event(s) => {
                self.cursor = s.seq;
                self.filter.matches(&s.event).then_some(Item::Event(s))
            }
            Live::Session(s) => (self.states && session_matches(&self.filter, &s.summary))
                .then_some(Item::Session(s)),
        }
    }

    fn lagged(&self, n: u64) -> Item {
        self.metrics.add_lagged(n);
        Item::Lagged(n)
    }

    /// The next item that is ready now, without waiting.
    fn next_ready(&mut self) -> Option<Item> {
        if let Some(s) = self.pending.pop_front() {
            return Some(Item::Event(s));
        }
        if self.catching_up {
            return None;
        }
        loop {
            match self.rx.try_recv() {
                Ok(live) => {
                    if let Some(item) = self.admit(live) {
                        return Some(item);
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(n)) => return Some(self.lagged(n)),
                Err(_) => return None,
            }
        }
    }

    async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(s) = self.pending.pop_front() {
                return Some(Item::Event(s));
            }
            if *self.shutdown.borrow() {
                return None;
            }
            if self.catching_up {
                let after = self.cursor;
                let rows = read(&self.store, move |c| {
                    store::rows_after(c, after, RESUME_PAGE)
                })
                .await
                .ok()?;
                if rows.is_empty() {
                    self.catching_up = false;
                }
                for s in rows {
                    self.cursor = s.seq;
                    if self.filter.matches(&s.event) {
                        self.pending.push_back(Arc::new(s));
                    }
                }
                continue;
            }
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(live) => {
                        if let Some(item) = self.admit(live) {
                            return Some(item);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => return Some(self.lagged(n)),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = stopped(&mut self.shutdown) => return None,
            }
        }
    }

    /// The next item and every other one ready by then, as one write: a viewer
    /// behind by many events gets them in one write, not one write each.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let first = self.next().await?.sse();
        let Some(second) = self.next_ready() else {
            return Some(first);
        };
        let mut chunk = BytesMut::with_capacity(first.len() * 4);
        chunk.extend_from_slice(&first);
        chunk.extend_from_slice(&second.sse());
        while chunk.len() < COALESCE_BYTES
            && let Some(item) = self.next_ready()
        {
            chunk.extend_from_slice(&item.sse());
        }
        Some(chunk.freeze())
    }
}

pub(super) async fn stream(
    State(st): State<Shared>,
    peer: Option<Extension<Peer>>,
    Query(p): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let filter = match Filter::from_params(&p) {
        Ok(f) => f,
        Err(e) => return error(400, e.to_string()),
    };
    let n = match count_param(&p, &["n", "backfill"], DEFAULT_BACKFILL, MAX_BACKFILL) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| p.get("last_event_id").cloned())
        .filter(|v| !v.is_empty());
    // Subscribe before reading the store, so nothing committed in between is lost.
    let (rx, guard) = match st.hub.subscribe(client_of(peer)) {
        Ok(v) => v,
        Err(why) => return too_many_viewers(why),
    };
    let resume_from = match last_id {
        Some(id) => match read(&st.store, move |c| store::seq_of(c, &id)).await {
            Ok(seq) => seq,
            Err(r) => return r,
        },
        None => None,
    };
    let mut follow = Follow {
        store: st.store.clone(),
        rx,
        filter,
        states: p.get("states").is_some_and(|v| v == "1" || v == "true"),
        pending: VecDeque::new(),
        cursor: 0,
        catching_up: false,
        shutdown: st.shutdown.clone(),
        metrics: st.hub.metrics.clone(),
        _guard: guard,
    };
    if let Some(seq) = resume_from {
        follow.cursor = seq;
        follow.catching_up = true;
    } else {
        // An unknown Last-Event-ID (expired by retention, say) falls back to backfill.
        let filter = follow.filter.clone();
        let scan_limit = st.scan_limit;
        let backfill = read(&st.store, move |c| {
            let max = store::max_seq(c)?;
            let rows = if n == 0 {
                Vec::new()
            } else {
                store::page(c, &filter, None, Some(max), n, scan_limit)?.rows
            };
            Ok((max, rows))
        })
        .await;
        let (max, rows) = match backfill {
            Ok(b) => b,
            Err(r) => return r,
        };
        follow.cursor = max;
        follow.pending = rows.into_iter().rev().map(Arc::new).collect();
    }
    sse(follow)
}

/// How long a browser's EventSource waits before reconnecting.
pub(super) const SSE_RETRY: Duration = Duration::from_secs(1);
/// A comment sent on a quiet stream this often, so proxies and clients see it alive.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `text/event-stream` response that follows `follow`.
pub(super) fn sse(follow: Follow) -> Response {
    // A first message at once, so the response head reaches the viewer now even when
    // there is nothing to send yet (a resume with no news, `n=0`): a browser's
    // EventSource only reports itself open when it sees the head.
    let hello = Bytes::from(format!(
        "retry: {}\n: swarm-obs stream\n\n",
        SSE_RETRY.as_millis()
    ));
    let body = futures_util::stream::unfold((follow, Some(hello)), |(mut f, hello)| async move {
        if let Some(h) = hello {
            return Some((Ok::<_, Infallible>(h), (f, None)));
        }
        // Waiting for the next item is cancel-safe: a page read from the store
        // that is cut short is read again.
        let chunk = match tokio::time::timeout(SSE_KEEP_ALIVE, f.next_chunk()).await {
            Ok(chunk) => chunk?,
            Err(_) => Bytes::from_static(b":\n\n"),
        };
        Some((Ok(chunk), (f, None)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| error(500, "could not start the stream".to_owned()))
}

pub(super) fn too_many_viewers(why: Refused) -> Response {
    match why {
        Refused::Full => error(
            503,
            format!("{MAX_VIEWERS} viewers are connected already; retry later"),
        ),
        Refused::ClientFull => error(
            429,
            format!(
                "this client has {MAX_VIEWERS_PER_CLIENT} live viewers open already; close one first"
            ),
        ),
    }
}

/// The key a request's viewers are counted under (none for a request that did
/// not come through the accept loop).
fn client_of(peer: Option<Extension<Peer>>) -> Option<ClientKey> {
    peer.map(|Extension(p)| p.key())
}

pub(super) async fn ws(
    State(st): State<Shared>,
    peer: Option<Extension<Peer>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let viewer = match st.hub.subscribe(client_of(peer)) {
        Ok(v) => v,
        Err(why) => return too_many_viewers(why),
    };
    upgrade
        .max_message_size(64 << 10)
        .on_upgrade(move |socket| ws_session(st, socket, viewer))
}

/// Whether a viewer's filter lets a session's state message through: only a
/// filter on a session narrows them.
pub(super) fn session_matches(f: &Filter, s: &crate::api::SessionSummary) -> bool {
    f.session.as_ref().is_none_or(|id| *id == s.session)
}

/// Whether an event is on any of the subscribed channels.
pub(super) fn on_channels(channels: &HashSet<String>, ev: &swarm_obs::Event) -> bool {
    channels.iter().any(|c| match c.split_once(':') {
        None => c == "all",
        Some(("source", s)) => s == ev.source,
        Some(("kind", k)) => k == ev.kind.as_str(),
        Some(("session", s)) => ev.session.as_deref() == Some(s),
        Some(_) => false,
    })
}

pub(super) fn valid_channel(c: &str) -> bool {
    c == "all"
        || c == "sessions"
        || c.strip_prefix("source:").is_some_and(|s| !s.is_empty())
        || c.strip_prefix("session:").is_some_and(|s| !s.is_empty())
        || c.strip_prefix("kind:")
            .is_some_and(|k| Kind::ALL.iter().any(|x| x.as_str() == k))
}

#[derive(serde::Deserialize)]
pub(super) struct WsRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    channel: Option<String>,
}

/// Applies one client request to the subscription set and returns the reply.
pub(super) fn ws_request(channels: &mut HashSet<String>, text: &str) -> String {
    let err = |m: String| serde_json::json!({ "type": "error", "message": m }).to_string();
    let req: WsRequest = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            return err(format!(
                "invalid request ({e}); send {{\"type\":\"subscribe\",\"channels\":[\"all\"]}}"
            ));
        }
    };
    let mut names = req.channels;
    names.extend(req.channel);
    if let Some(bad) = names.iter().find(|c| !valid_channel(c)) {
        return err(format!(
            "unknown channel {:?}; use all, source:<name>, session:<id> or kind:<kind>",
            bad.chars().take(100).collect::<String>()
        ));
    }
    let reply = match req.kind.as_str() {
        "subscribe" => {
            if channels.len() + names.len() > MAX_CHANNELS {
                return err(format!("at most {MAX_CHANNELS} channels per connection"));
            }
            channels.extend(names);
            "subscribed"
        }
        "unsubscribe" => {
            for n in &names {
                channels.remove(n);
            }
            "unsubscribed"
        }
        other => {
            return err(format!(
                "unknown request type {:?}; use subscribe or unsubscribe",
                other.chars().take(100).collect::<String>()
            ));
        }
    };
    let mut list: Vec<&String> = channels.iter().collect();
    list.sort();
    serde_json::json!({ "type": reply, "channels": list }).to_string()
}

/// What a WebSocket viewer subscribed to `channels` is sent of one broadcast item.
fn ws_message(channels: &HashSet<String>, live: &Live) -> Option<Message> {
    match live {
        Live::Event(s) if on_channels(channels, &s.event) => {
            Some(Message::Text(s.frames().ws.clone()))
        }
        Live::Session(s)
            if channels.iter().any(|c| {
                c == "sessions" || c.strip_prefix("session:") == Some(s.summary.session.as_str())
            }) =>
        {
            Some(Message::Text(s.frames().ws.clone()))
        }
        _ => None,
    }
}

fn ws_lagged(metrics: &Metrics, n: u64) -> Message {
    metrics.add_lagged(n);
    Message::Text(format!("{{\"type\":\"lagged\",\"missed\":{n}}}").into())
}

pub(super) async fn ws_session(
    st: Shared,
    mut socket: WebSocket,
    (mut rx, _guard): (broadcast::Receiver<Live>, ViewerGuard),
) {
    let mut shutdown = st.shutdown.clone();
    let mut channels = HashSet::new();
    let metrics = &st.hub.metrics;
    loop {
        let first = tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => Message::Text(ws_request(&mut channels, t.as_str()).into()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => continue,
            },
            r = rx.recv() => match r {
                Ok(live) => match ws_message(&channels, &live) {
                    Some(m) => m,
                    None => continue,
                },
                Err(broadcast::error::RecvError::Lagged(n)) => ws_lagged(metrics, n),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = stopped(&mut shutdown) => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        };
        if socket.feed(first).await.is_err() {
            break;
        }
        // Every other message already waiting goes out with the same flush.
        let mut fed = 1;
        while fed < WS_COALESCE {
            let m = match rx.try_recv() {
                Ok(live) => match ws_message(&channels, &live) {
                    Some(m) => m,
                    None => continue,
                },
                Err(broadcast::error::TryRecvError::Lagged(n)) => ws_lagged(metrics, n),
                Err(_) => break,
            };
            if socket.feed(m).await.is_err() {
                return;
            }
            fed += 1;
        }
        if socket.flush().await.is_err() {
            break;
        }
    }
}

/// Most waiting messages sent to a WebSocket viewer with one flush.
const WS_COALESCE: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_requests_validate_channels() {
        let mut ch = HashSet::new();
        let r = ws_request(
            &mut ch,
            r#"{"type":"subscribe","channels":["all","kind:error"]}"#,
        );
        assert!(r.contains("subscribed") && r.contains("kind:error"), "{r}");
        let r = ws_request(&mut ch, r#"{"type":"subscribe","channel":"kind:nope"}"#);
        assert!(r.contains("unknown channel"), "{r}");
        let r = ws_request(&mut ch, r#"{"type":"unsubscribe","channel":"all"}"#);
        assert!(r.contains("unsubscribed") && !r.contains("\"all\""), "{r}");
        assert!(ws_request(&mut ch, "garbage").contains("invalid request"));
    }
}
