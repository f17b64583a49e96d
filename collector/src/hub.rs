//! Live fan-out: every newly stored event goes to one broadcast ring. Each viewer
//! reads at its own pace; one that falls more than the ring behind is told how many
//! events it missed, and the writer and other viewers never wait for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use tokio::sync::broadcast;

use swarm_obs::Event;

use crate::api::SessionSummary;

/// An event as stored: its insertion sequence number, the event, and its JSON.
#[derive(Debug)]
pub struct Stored {
    /// Insertion order, unique and increasing.
    pub seq: i64,
    /// The event.
    pub event: Event,
    /// The event as compact JSON, serialised once for every viewer.
    pub json: String,
    /// Its SSE and WebSocket messages, made by the first viewer to send it and
    /// shared by every other (50 viewers cost one serialisation, not 50).
    frames: OnceLock<Frames>,
}

impl Stored {
    /// A stored event whose JSON is `json`.
    pub fn new(seq: i64, event: Event, json: String) -> Self {
        Self {
            seq,
            event,
            json,
            frames: OnceLock::new(),
        }
    }

    /// The event's messages on each live transport.
    pub fn frames(&self) -> &Frames {
        self.frames.get_or_init(|| {
            let (ev, json) = (&self.event, &self.json);
            // Compact JSON holds no newline, so it is one `data:` line.
            Frames {
                sse: Bytes::from(format!(
                    "id: {}\nevent: {}\ndata: {json}\n\n",
                    ev.id, ev.kind
                )),
                ws: Utf8Bytes::from(format!(
                    "{{\"type\":\"event\",\"event\":\"{}\",\"data\":{json},\"timestamp\":\"{}\"}}",
                    ev.kind, ev.ts
                )),
            }
        })
    }
}

/// One live message, serialised once and shared by every viewer that sends it.
#[derive(Debug)]
pub struct Frames {
    /// The Server-Sent Events message, blank line included.
    pub sse: Bytes,
    /// The WebSocket text message.
    pub ws: Utf8Bytes,
}

/// A session's new state as it goes out on the live stream.
#[derive(Debug)]
pub struct SessionNews {
    /// The session after the change.
    pub summary: SessionSummary,
    frames: OnceLock<Frames>,
}

impl SessionNews {
    /// News of `summary`.
    pub fn new(summary: SessionSummary) -> Self {
        Self {
            summary,
            frames: OnceLock::new(),
        }
    }

    /// The news on each live transport.
    pub fn frames(&self) -> &Frames {
        self.frames.get_or_init(|| {
            let json = serde_json::to_string(&self.summary).unwrap_or_default();
            // No `id:`: a state message must not move an SSE viewer's resume point.
            Frames {
                sse: Bytes::from(format!("event: session\ndata: {json}\n\n")),
                ws: Utf8Bytes::from(format!("{{\"type\":\"session\",\"data\":{json}}}")),
            }
        })
    }
}

/// What goes out on the live stream: a stored event, or a session whose state
/// moved (so viewers need not poll `/v1/sessions`).
#[derive(Clone, Debug)]
pub enum Live {
    /// A newly stored event.
    Event(Arc<Stored>),
    /// A session after its state, its since or its current tool changed.
    Session(Arc<SessionNews>),
}

/// Live viewers (SSE and WebSocket) connected at once at most.
pub const MAX_VIEWERS: u64 = 1024;
/// Live viewers one client (a local user, or a remote address) may hold at once.
pub const MAX_VIEWERS_PER_CLIENT: u64 = MAX_VIEWERS / 4;

/// Counters behind `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    ingested: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    viewers: AtomicU64,
    lagged: AtomicU64,
    store_failures: AtomicU64,
    invalid_lines: AtomicU64,
    // Whether the last commit failed, and why: checked by every queued POST, so a
    // flag to read and the reason behind a lock taken only when it is set.
    store_failing: std::sync::atomic::AtomicBool,
    store_failure: std::sync::Mutex<String>,
    exported: AtomicU64,
    export_failures: AtomicU64,
    export_skipped: AtomicU64,
    export_lag: AtomicU64,
}

impl Metrics {
    pub(crate) fn add_ingested(&self, n: u64) {
        self.ingested.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_duplicates(&self, n: u64) {
        self.duplicates.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_store_failure(&self, why: &str) {
        self.store_failures.fetch_add(1, Ordering::Relaxed);
        *self.store_failure.lock().unwrap_or_else(|p| p.into_inner()) = why.to_owned();
        self.store_failing.store(true, Ordering::Release);
    }
    pub(crate) fn add_invalid_lines(&self, n: u64) {
        self.invalid_lines.fetch_add(n, Ordering::Relaxed);
    }
    /// Lines of the event files that catch-up skipped as not events.
    pub fn invalid_lines(&self) -> u64 {
        self.invalid_lines.load(Ordering::Relaxed)
    }
    pub(crate) fn store_recovered(&self) {
        if self.store_failing.load(Ordering::Relaxed) {
            self.store_failing.store(false, Ordering::Release);
        }
    }
    /// Why the last commit failed, while the store has not committed since.
    pub fn store_failing(&self) -> Option<String> {
        self.store_failing.load(Ordering::Acquire).then(|| {
            self.store_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
    }
    /// Batches the store failed to commit (disk full, say).
    pub fn store_failures(&self) -> u64 {
        self.store_failures.load(Ordering::Relaxed)
    }
    pub(crate) fn add_lagged(&self, n: u64) {
        self.lagged.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_exported(&self, n: u64) {
        self.exported.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_export_failure(&self) {
        self.export_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_export_skipped(&self, n: u64) {
        self.export_skipped.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn set_export_lag(&self, n: u64) {
        self.export_lag.store(n, Ordering::Relaxed);
    }

    /// OTLP export: events accepted by the receiver, failed requests, events the
    /// receiver refused for good, and stored events not yet exported.
    pub fn export_snapshot(&self) -> [u64; 4] {
        [
            &self.exported,
            &self.export_failures,
            &self.export_skipped,
            &self.export_lag,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }

    /// Events stored, duplicates ignored, requests rejected, viewers connected now,
    /// and events viewers missed by lagging.
    pub fn snapshot(&self) -> [u64; 5] {
        [
            &self.ingested,
            &self.duplicates,
            &self.rejected,
            &self.viewers,
            &self.lagged,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

/// The broadcast side of live streams, plus the metrics every part updates.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Live>,
    clients: Arc<Mutex<HashMap<ClientKey, u64>>>,
    /// Shared counters.
    pub metrics: Arc<Metrics>,
}

/// Who counts as one client for the per-client viewer limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A local user, by uid (every loopback client shares one address).
    User(u32),
    /// A client known only by its address.
    Addr(std::net::IpAddr),
}

/// Why a viewer was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// [`MAX_VIEWERS`] are connected.
    Full,
    /// This client has [`MAX_VIEWERS_PER_CLIENT`] connected.
    ClientFull,
}

/// Counts a connected viewer for as long as it lives.
pub struct ViewerGuard {
    metrics: Arc<Metrics>,
    clients: Arc<Mutex<HashMap<ClientKey, u64>>>,
    client: Option<ClientKey>,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.metrics.viewers.fetch_sub(1, Ordering::Relaxed);
        if let Some(key) = self.client {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = clients.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    clients.remove(&key);
                }
            }
        }
    }
}

impl Hub {
    /// A hub whose viewers may fall up to `queue` events behind before lagging.
    pub fn new(queue: usize) -> Self {
        let (tx, _) = broadcast::channel(queue.max(16));
        Self {
            tx,
            clients: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Sends a stored event or a session's new state to every viewer; never blocks.
    pub fn publish(&self, item: Live) {
        // No viewers is fine: the event is in the store.
        let _ = self.tx.send(item);
    }

    /// A new viewer's receiver and the guard that counts it, unless
    /// [`MAX_VIEWERS`] are connected or `client` has [`MAX_VIEWERS_PER_CLIENT`]
    /// (so one client cannot lock every other out with idle streams).
    pub fn subscribe(
        &self,
        client: Option<ClientKey>,
    ) -> Result<(broadcast::Receiver<Live>, ViewerGuard), Refused> {
        if let Some(key) = client {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            let n = clients.entry(key).or_insert(0);
            if *n >= MAX_VIEWERS_PER_CLIENT {
                return Err(Refused::ClientFull);
            }
            *n += 1;
        }
        let before = self.metrics.viewers.fetch_add(1, Ordering::Relaxed);
        let guard = ViewerGuard {
            metrics: self.metrics.clone(),
            clients: self.clients.clone(),
            client,
        };
        if before >= MAX_VIEWERS {
            return Err(Refused::Full);
        }
        Ok((self.tx.subscribe(), guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_cannot_take_every_viewer_place() {
        let hub = Hub::new(16);
        let greedy = Some(ClientKey::User(65534));
        let mut held = Vec::new();
        for _ in 0..MAX_VIEWERS_PER_CLIENT {
            held.push(hub.subscribe(greedy).expect("under its share"));
        }
        assert!(matches!(hub.subscribe(greedy), Err(Refused::ClientFull)));
        // Another client, and one of unknown origin, still get in.
        let own = hub
            .subscribe(Some(ClientKey::User(1000)))
            .expect("own user");
        let unknown = hub.subscribe(None).expect("unknown client");
        assert_eq!(hub.metrics.snapshot()[3], MAX_VIEWERS_PER_CLIENT + 2);
        // A viewer gone frees its place for the same client.
        held.pop();
        assert!(hub.subscribe(greedy).is_ok());
        drop((own, unknown, held));
        assert_eq!(hub.metrics.snapshot()[3], 0);
        assert!(hub.clients.lock().unwrap().is_empty());
    }

    #[test]
    fn the_global_cap_holds_across_clients() {
        let hub = Hub::new(16);
        let mut held = Vec::new();
        for i in 0..MAX_VIEWERS {
            let key = ClientKey::User(u32::try_from(i % 8).unwrap());
            held.push(hub.subscribe(Some(key)).expect("under the cap"));
        }
        assert!(matches!(
            hub.subscribe(Some(ClientKey::User(99))),
            Err(Refused::Full)
        ));
        drop(held);
        assert!(hub.clients.lock().unwrap().is_empty());
    }
}
