//! Live fan-out: every newly stored event goes to one broadcast ring. Each viewer
//! reads at its own pace; one that falls more than the ring behind is told how many
//! events it missed, and the writer and other viewers never wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use crate::store::Stored;

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
    tx: broadcast::Sender<Arc<Stored>>,
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

    /// Sends a stored event to every viewer; never blocks.
    pub fn publish(&self, stored: Arc<Stored>) {
        // No viewers is fine: the event is in the store.
        let _ = self.tx.send(stored);
    }

    /// A new viewer's receiver and the guard that counts it; `None` when
    /// [`MAX_VIEWERS`] are already connected.
    pub fn subscribe(&self) -> Option<(broadcast::Receiver<Arc<Stored>>, ViewerGuard)> {
        let before = self.metrics.viewers.fetch_add(1, Ordering::Relaxed);
        let guard = ViewerGuard(self.metrics.clone());
        (before < MAX_VIEWERS).then(|| (self.tx.subscribe(), guard))
    }
}
