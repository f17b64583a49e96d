//! Live fan-out: every newly stored event goes to one broadcast ring. Each viewer
//! reads at its own pace; one that falls more than the ring behind is told how many
//! events it missed, and the writer and other viewers never wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

/// What goes out on the live stream: a stored event, or a session whose state
/// moved (so viewers need not poll `/v1/sessions`).
#[derive(Clone, Debug)]
pub enum Live {
    /// A newly stored event.
    Event(Arc<Stored>),
    /// A session after its state, its since or its current tool changed.
    Session(Arc<SessionSummary>),
}

/// Live viewers (SSE and WebSocket) connected at once at most.
pub const MAX_VIEWERS: u64 = 1024;

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
    /// Shared counters.
    pub metrics: Arc<Metrics>,
}

/// Counts a connected viewer for as long as it lives.
pub struct ViewerGuard(Arc<Metrics>);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    /// A hub whose viewers may fall up to `queue` events behind before lagging.
    pub fn new(queue: usize) -> Self {
        let (tx, _) = broadcast::channel(queue.max(16));
        Self {
            tx,
            metrics: Arc::default(),
        }
    }

    /// Sends a stored event or a session's new state to every viewer; never blocks.
    pub fn publish(&self, item: Live) {
        // No viewers is fine: the event is in the store.
        let _ = self.tx.send(item);
    }

    /// A new viewer's receiver and the guard that counts it; `None` when
    /// [`MAX_VIEWERS`] are already connected.
    pub fn subscribe(&self) -> Option<(broadcast::Receiver<Live>, ViewerGuard)> {
        let before = self.metrics.viewers.fetch_add(1, Ordering::Relaxed);
        let guard = ViewerGuard(self.metrics.clone());
        (before < MAX_VIEWERS).then(|| (self.tx.subscribe(), guard))
    }
}
