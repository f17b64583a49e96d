//! The shipper: a background thread that batches event lines and posts them to the
//! collector, so viewers see a worker's events live.
//!
//! It never blocks the worker: batches are offered to a bounded queue and dropped when
//! it is full, and a batch the collector does not take is dropped too, counted in
//! [`ShipperStats`]. Nothing is lost by that: every event is in the event log first,
//! and the collector catches up from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{CollectorClient, PostError};

/// Where a [`Shipper`] posts its batches of NDJSON event lines: the collector
/// ([`CollectorClient`]), or with the `otlp` feature an OTLP receiver.
pub trait ShipSink: Send + 'static {
    /// Posts one batch of complete NDJSON event lines; an error drops the batch
    /// (counted) and pauses the shipper for [`ShipperConfig::retry_after`].
    fn post_ndjson(&self, body: &[u8]) -> Result<(), PostError>;
}

impl ShipSink for CollectorClient {
    fn post_ndjson(&self, body: &[u8]) -> Result<(), PostError> {
        CollectorClient::post_ndjson(self, body)
    }
}

/// How the shipper batches and backs off.
///
/// ```
/// let cfg = swarm_obs::ShipperConfig::default();
/// assert_eq!(cfg.queue_batches, 256);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipperConfig {
    /// Batches waiting to be posted before new ones are dropped.
    pub queue_batches: usize,
    /// Largest body posted at once, in bytes.
    pub max_post_bytes: usize,
    /// How long a batch waits for more lines before it is posted.
    pub linger: Duration,
    /// After a failed post, how long to drop batches before trying again.
    pub retry_after: Duration,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        Self {
            queue_batches: 256,
            max_post_bytes: 1 << 20,
            linger: Duration::from_millis(100),
            retry_after: Duration::from_secs(2),
        }
    }
}

/// What the shipper did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShipperStats {
    /// Events the collector accepted.
    pub posted: u64,
    /// Events not posted (queue full, collector away or refusing); they stay in the
    /// event log for the collector to catch up.
    pub dropped: u64,
    /// Posts that failed.
    pub failed_posts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    posted: AtomicU64,
    dropped: AtomicU64,
    failed_posts: AtomicU64,
}

enum ShipMsg {
    Lines(Vec<u8>, usize),
    Stop,
}

/// The sending side of a [`Shipper`]: offers NDJSON lines without ever waiting.
#[derive(Clone, Debug)]
pub struct ShipperQueue {
    tx: SyncSender<ShipMsg>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for ShipMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lines(_, n) => write!(f, "Lines({n})"),
            Self::Stop => f.write_str("Stop"),
        }
    }
}

impl ShipperQueue {
    /// Offers `lines` (complete NDJSON lines holding `events` events); dropped and
    /// counted when the queue is full or the shipper has stopped.
    pub fn offer(&self, lines: Vec<u8>, events: usize) {
        if self.tx.try_send(ShipMsg::Lines(lines, events)).is_err() {
            self.counters
                .dropped
                .fetch_add(events as u64, Ordering::Relaxed);
        }
    }
}

/// Posts batches of events to the collector from a background thread; dropping it
/// posts what is queued (one try each) and stops the thread.
///
/// ```no_run
/// use swarm_obs::{CollectorAddress, CollectorClient, Event, Kind, Shipper, ShipperConfig};
/// let addr = CollectorAddress::parse("127.0.0.1:4780").unwrap();
/// let client = CollectorClient::new(addr, std::time::Duration::from_millis(200));
/// let shipper = Shipper::start(client, ShipperConfig::default()).unwrap();
/// let line = Event::new("backend", Kind::Log, "hello").to_json_line();
/// shipper.queue().offer(line.into_bytes(), 1);
/// drop(shipper); // posts it
/// ```
#[derive(Debug)]
pub struct Shipper {
    queue: ShipperQueue,
    thread: Option<JoinHandle<()>>,
}

impl Shipper {
    /// Starts the shipper thread posting to `sink` (a [`CollectorClient`], say).
    pub fn start(sink: impl ShipSink, config: ShipperConfig) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(config.queue_batches.max(1));
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("swarm-obs-shipper".into())
            .spawn(move || ship_loop(&rx, &sink, &config, &thread_counters))?;
        Ok(Self {
            queue: ShipperQueue { tx, counters },
            thread: Some(thread),
        })
    }

    /// The queue to offer lines to.
    pub fn queue(&self) -> &ShipperQueue {
        &self.queue
    }

    /// What was posted and dropped so far.
    pub fn stats(&self) -> ShipperStats {
        let c = &self.queue.counters;
        ShipperStats {
            posted: c.posted.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed_posts: c.failed_posts.load(Ordering::Relaxed),
        }
    }

    /// Posts what is queued and stops the thread; returns the final counts.
    pub fn stop(mut self) -> ShipperStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            // Waits for room: the thread is draining, so there will be some.
            if self.queue.tx.send(ShipMsg::Stop).is_ok() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn ship_loop(
    rx: &Receiver<ShipMsg>,
    client: &impl ShipSink,
    config: &ShipperConfig,
    counters: &Counters,
) {
    let mut body: Vec<u8> = Vec::new();
    let mut events = 0usize;
    let mut first_at = Instant::now();
    let mut paused_until: Option<Instant> = None;
    let mut stopping = false;
    loop {
        let msg = if stopping {
            rx.try_recv().ok()
        } else if body.is_empty() {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        } else {
            let wait = config.linger.saturating_sub(first_at.elapsed());
            match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    stopping = true;
                    None
                }
            }
        };
        let drained = msg.is_none();
        match msg {
            Some(ShipMsg::Lines(lines, n)) => {
                if body.is_empty() {
                    first_at = Instant::now();
                }
                body.extend_from_slice(&lines);
                events += n;
                if body.len() < config.max_post_bytes {
                    continue;
                }
            }
            Some(ShipMsg::Stop) => stopping = true,
            None => {}
        }
        if !body.is_empty() {
            post(client, config, counters, &body, events, &mut paused_until);
            body.clear();
            events = 0;
        }
        if stopping && drained {
            return;
        }
    }
}

fn post(
    client: &impl ShipSink,
    config: &ShipperConfig,
    counters: &Counters,
    body: &[u8],
    events: usize,
    paused_until: &mut Option<Instant>,
) {
    if paused_until.is_some_and(|t| Instant::now() < t) {
        counters.dropped.fetch_add(events as u64, Ordering::Relaxed);
        return;
    }
    match client.post_ndjson(body) {
        Ok(()) => {
            *paused_until = None;
            counters.posted.fetch_add(events as u64, Ordering::Relaxed);
        }
        Err(_) => {
            // The collector is away: stop trying for a while so a dead collector
            // costs one timeout per pause, not one per batch.
            *paused_until = Some(Instant::now() + config.retry_after);
            counters.failed_posts.fetch_add(1, Ordering::Relaxed);
            counters.dropped.fetch_add(events as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CollectorAddress;

    #[test]
    fn an_absent_collector_drops_and_counts() {
        // A port nothing listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = CollectorAddress::parse(&format!("127.0.0.1:{port}")).unwrap();
        let client = CollectorClient::new(addr, Duration::from_millis(200));
        let shipper = Shipper::start(client, ShipperConfig::default()).unwrap();
        for _ in 0..5 {
            shipper.queue().offer(b"{}\n{}\n".to_vec(), 2);
        }
        let stats = shipper.stop();
        assert_eq!(stats.posted, 0);
        assert_eq!(stats.dropped, 10);
        assert!(stats.failed_posts >= 1);
    }
}
