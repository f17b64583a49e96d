//! Live streams: Server-Sent Events and WebSocket, with backfill and resume.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use swarm_obs::Kind;
use tokio::sync::{broadcast, watch};

use crate::filter::Filter;
use crate::hub::{Live, Stored};
use crate::hub::{MAX_VIEWERS, Metrics, ViewerGuard};
use crate::store::{self, Store};

use super::*;

/// Resolves once shutdown begins (holding no lock across later awaits).
pub(super) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What a live viewer is sent next.
pub(super) enum Item {
    Event(Arc<Stored>),
    Session(Arc<crate::api::SessionSummary>),
    Lagged(u64),
}

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
                    Ok(Live::Event(s)) if s.seq <= self.cursor => {}
                    Ok(Live::Event(s)) => {
                        self.cursor = s.seq;
                        if self.filter.matches(&s.event) {
                            return Some(Item::Event(s));
                        }
                    }
                    Ok(Live::Session(s)) => {
                        if self.states && session_matches(&self.filter, &s) {
                            return Some(Item::Session(s));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.metrics.add_lagged(n);
                        return Some(Item::Lagged(n));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = stopped(&mut self.shutdown) => return None,
            }
        }
    }
}

pub(super) async fn stream(
    State(st): State<AppState>,
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
    let Some((rx, guard)) = st.hub.subscribe() else {
        return too_many_viewers();
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
    let events = futures_util::stream::unfold(follow, |mut f| async move {
        let item = f.next().await?;
        Some((Ok::<_, Infallible>(sse_event(&item)), f))
    });
    sse(events)
}

/// How long a browser's EventSource waits before reconnecting.
pub(super) const SSE_RETRY: Duration = Duration::from_secs(1);

pub(super) fn sse(
    events: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
) -> Response {
    // A first message at once, so the response head reaches the viewer now even when
    // there is nothing to send yet (a resume with no news, `n=0`): a browser's
    // EventSource only reports itself open when it sees the head.
    let hello = SseEvent::default()
        .retry(SSE_RETRY)
        .comment("swarm-obs stream");
    let events = futures_util::StreamExt::chain(
        futures_util::stream::once(std::future::ready(Ok(hello))),
        events,
    );
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

pub(super) fn sse_event(item: &Item) -> SseEvent {
    match item {
        Item::Event(s) => SseEvent::default()
            .id(s.event.id.to_string())
            .event(s.event.kind.as_str())
            .data(&s.json),
        // No `id`: a state message must not move the viewer's resume point.
        Item::Session(s) => SseEvent::default()
            .event("session")
            .data(serde_json::to_string(&**s).unwrap_or_default()),
        Item::Lagged(n) => SseEvent::default()
            .event("lagged")
            .data(format!("{{\"missed\":{n}}}")),
    }
}

pub(super) fn too_many_viewers() -> Response {
    error(
        503,
        format!("{MAX_VIEWERS} viewers are connected already; retry later"),
    )
}

pub(super) async fn ws(State(st): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let Some(viewer) = st.hub.subscribe() else {
        return too_many_viewers();
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
    channels.contains("all")
        || channels.contains(&format!("source:{}", ev.source))
        || channels.contains(&format!("kind:{}", ev.kind))
        || ev
            .session
            .as_ref()
            .is_some_and(|s| channels.contains(&format!("session:{s}")))
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

pub(super) async fn ws_session(
    st: AppState,
    mut socket: WebSocket,
    (mut rx, _guard): (broadcast::Receiver<Live>, ViewerGuard),
) {
    let mut shutdown = st.shutdown.clone();
    let mut channels = HashSet::new();
    loop {
        let out = tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => ws_request(&mut channels, t.as_str()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => continue,
            },
            r = rx.recv() => match r {
                Ok(Live::Event(s)) if on_channels(&channels, &s.event) => format!(
                    "{{\"type\":\"event\",\"event\":\"{}\",\"data\":{},\"timestamp\":\"{}\"}}",
                    s.event.kind, s.json, s.event.ts
                ),
                Ok(Live::Session(s)) if channels.contains("sessions")
                    || channels.contains(&format!("session:{}", s.session)) => format!(
                    "{{\"type\":\"session\",\"data\":{}}}",
                    serde_json::to_string(&*s).unwrap_or_default()
                ),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    st.hub.metrics.add_lagged(n);
                    format!("{{\"type\":\"lagged\",\"missed\":{n}}}")
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = stopped(&mut shutdown) => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        };
        if socket.send(Message::Text(out.into())).await.is_err() {
            break;
        }
    }
}

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
