//! OTLP export: every stored event goes to an OpenTelemetry receiver as a log
//! record, and worker verdicts and collector counters as metrics.
//!
//! OTLP/HTTP (protobuf) by default, OTLP/gRPC when the target says so. Logs are
//! sent at least once, in store order, from a cursor persisted in SQLite
//! (`export_cursors`): the cursor advances only after the receiver answers 2xx, so
//! a restart of either side resumes exactly where the receiver last accepted,
//! neither dropping nor re-sending the whole store. 429, 5xx and connection errors
//! are retried with capped exponential backoff, and so are 401, 403, 404 and 407
//! (a wrong token or URL would refuse every batch alike: held, not skipped); any
//! other 4xx means the receiver will never take that batch, so it is logged,
//! counted and skipped. The "queue" is
//! the store itself: bounded by retention, never by memory.
//!
//! Metrics are sent every interval as cumulative sums and gauges; a failed send is
//! not retried, since the next one carries the same totals.

use crate::Stop;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use swarm_obs::otlp::proto::{
    AnyValue, ExportMetricsServiceRequest, Gauge, KeyValue, Metric, NumberDataPoint, Resource,
    ResourceMetrics, ScopeMetrics, Sum, TEMPORALITY_CUMULATIVE, metric, number_data_point,
};
use swarm_obs::otlp::{
    Message, OtlpProtocol, OtlpTarget, PostOutcome, SignalSender, SignalTarget, logs_request, scope,
};
use swarm_obs::{Event, Timestamp};

use crate::grpc::{GrpcClient, Signal};
use crate::heartbeats::Watch;
use crate::hub::Metrics;
use crate::store::{self, Store};

/// Name of the logs cursor in `export_cursors`.
pub const LOGS_CURSOR: &str = "otlp-logs";

/// How export runs.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Where to send.
    pub target: OtlpTarget,
    /// Events per logs request at most.
    pub batch: usize,
    /// How often the store is checked for new events when export has caught up.
    pub poll: Duration,
    /// First wait after a failed send; doubles per failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// How often metrics are sent.
    pub metrics_interval: Duration,
}

impl ExportOptions {
    /// Defaults: batches of 512 events, polled every 100 ms, backoff 100 ms to
    /// 30 s, metrics every 10 s.
    pub fn new(target: OtlpTarget) -> Self {
        Self {
            target,
            batch: 512,
            poll: Duration::from_millis(100),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            metrics_interval: Duration::from_secs(10),
        }
    }
}

/// How requests travel: OTLP/HTTP (the one HTTP client, a sender per signal) or
/// OTLP/gRPC (one HTTP/2 connection, kept).
enum Transport {
    Http {
        logs: Option<SignalSender>,
        metrics: Option<SignalSender>,
    },
    Grpc(GrpcClient),
}

impl Transport {
    /// The transport `target` asks for; fails when its TLS files cannot be used.
    fn new(target: &OtlpTarget) -> Result<Self, String> {
        match target.protocol {
            OtlpProtocol::HttpProtobuf => {
                let sender = |s: &Option<SignalTarget>| {
                    s.as_ref()
                        .map(|s| SignalSender::new(target, s))
                        .transpose()
                        .map_err(|e| e.to_string())
                };
                Ok(Self::Http {
                    logs: sender(&target.logs)?,
                    metrics: sender(&target.metrics)?,
                })
            }
            OtlpProtocol::Grpc => GrpcClient::new(target).map(Self::Grpc),
        }
    }

    fn send(&mut self, signal: Signal, body: &[u8]) -> PostOutcome {
        match self {
            Self::Http { logs, metrics } => {
                let sender = match signal {
                    Signal::Logs => logs,
                    Signal::Metrics => metrics,
                };
                sender
                    .as_ref()
                    .map_or(PostOutcome::Accepted, |s| s.send(body))
            }
            Self::Grpc(client) => client.export(signal, body),
        }
    }
}

/// What the exporter needs from the running collector.
pub(crate) struct Exporter {
    pub(crate) options: ExportOptions,
    pub(crate) store: Store,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) watch: Arc<Watch>,
    pub(crate) stop: Stop,
}

impl Exporter {
    /// Starts the export thread.
    /// Starts the export thread; fails with what to fix when the target's TLS
    /// files cannot be used or the cursor cannot be read.
    pub(crate) fn spawn(self) -> Result<JoinHandle<()>, String> {
        let cursor = self
            .store
            .read(|c| store::cursor(c, LOGS_CURSOR))
            .map_err(|e| format!("cannot read the export cursor: {e}"))?
            .unwrap_or(0);
        let transport = Transport::new(&self.options.target)?;
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || self.run(cursor, transport))
            .map_err(|e| format!("cannot start its thread: {e}"))
    }

    fn run(self, mut cursor: i64, mut transport: Transport) {
        let started = Timestamp::now();
        let mut backoff = self.options.min_backoff;
        let mut next_metrics = Instant::now();
        let mut last_error = String::new();
        let mut last_metrics_error = String::new();
        while !self.stop.is_set() {
            if Instant::now() >= next_metrics {
                self.send_metrics(started, &mut transport, &mut last_metrics_error);
                next_metrics = Instant::now() + self.options.metrics_interval;
            }
            // `newest`: the store's last event number, which the lag counts to.
            let (rows, newest) = match self.store.read(|c| {
                // One snapshot: a row committed between these reads must not look
                // like an unparsable one.
                let snapshot = c.unchecked_transaction()?;
                let rows = store::rows_after(c, cursor, self.options.batch)?;
                let max = store::max_seq(c)?;
                // Rows that no longer parse (a hand edit, a newer schema) are left
                // out of `rows`; a page of nothing but those must not stall export.
                let skip = if rows.is_empty() && max > cursor {
                    store::last_seq_of_page(c, cursor, self.options.batch)?
                } else {
                    None
                };
                snapshot.finish()?;
                Ok((rows, max, skip))
            }) {
                Ok((rows, max, skip)) => {
                    self.metrics
                        .set_export_lag(max.saturating_sub(cursor).max(0) as u64);
                    if let Some(to) = skip {
                        eprintln!(
                            "swarm-obs serve: OTLP export skips stored rows {}..={to}: they do not parse as events",
                            cursor + 1
                        );
                        cursor = self.advance(to, max);
                        continue;
                    }
                    (rows, max)
                }
                Err(e) => {
                    eprintln!("swarm-obs serve: OTLP export cannot read the store: {e}");
                    self.stop.sleep(self.options.max_backoff);
                    continue;
                }
            };
            let Some(last_seq) = rows.last().map(|r| r.seq) else {
                self.stop.sleep(self.options.poll);
                continue;
            };
            let Some(url) = self.options.target.logs.as_ref().map(|s| &s.url) else {
                // Metrics only: nothing to send, but keep the lag honest.
                cursor = last_seq;
                continue;
            };
            let events: Vec<&Event> = rows.iter().map(|r| &r.event).collect();
            let body = logs_request(events.iter().copied()).encode_to_vec();
            let n = rows.len() as u64;
            let outcome = match transport.send(Signal::Logs, &body) {
                // Credentials or address are wrong: every batch would be refused
                // alike, so hold them until the receiver is configured right.
                PostOutcome::Refused(status @ (401 | 403 | 404 | 407)) => {
                    PostOutcome::Retry(format!(
                        "HTTP {status}: check the endpoint URL and OTEL_EXPORTER_OTLP_HEADERS or [otlp] headers; events are held until it is accepted"
                    ))
                }
                other => other,
            };
            match outcome {
                PostOutcome::Accepted => {
                    if !last_error.is_empty() {
                        eprintln!("swarm-obs serve: OTLP export to {url} resumed");
                        last_error.clear();
                    }
                    backoff = self.options.min_backoff;
                    cursor = self.advance(last_seq, newest);
                    self.metrics.add_exported(n);
                }
                PostOutcome::Retry(why) => {
                    self.metrics.add_export_failure();
                    if why != last_error {
                        eprintln!(
                            "swarm-obs serve: OTLP export to {url} failed ({why}); retrying with backoff up to {:?}",
                            self.options.max_backoff
                        );
                        last_error = why;
                    }
                    self.stop.sleep(backoff);
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
                PostOutcome::Refused(status) => {
                    eprintln!(
                        "swarm-obs serve: OTLP receiver {url} refused a batch of {n} events with status {status}; skipping it (events {}..={last_seq} stay in the store)",
                        rows[0].seq
                    );
                    cursor = self.advance(last_seq, newest);
                    self.metrics.add_export_failure();
                    self.metrics.add_export_skipped(n);
                }
            }
        }
    }

    /// Persists the new cursor; on failure the old one stays in the store, so a
    /// restart re-sends at most this batch (at least once, never lost). The lag
    /// against `newest` (the store's last event when the batch was read) is set
    /// before the caller counts the batch, so the metrics never show a batch
    /// counted but still lagging.
    fn advance(&self, new: i64, newest: i64) -> i64 {
        if let Err(e) = self.store.set_cursor_blocking(LOGS_CURSOR, new) {
            eprintln!("swarm-obs serve: {e}");
        }
        self.metrics
            .set_export_lag(newest.saturating_sub(new).max(0) as u64);
        new
    }

    /// Sends the metrics; a failure is counted, and said once per kind of failure
    /// (`last_error`), so a wrong endpoint or certificate shows in the log at
    /// start even before any event is exported.
    fn send_metrics(&self, started: Timestamp, transport: &mut Transport, last_error: &mut String) {
        let Some(url) = self.options.target.metrics.as_ref().map(|s| &s.url) else {
            return;
        };
        let now = Timestamp::now();
        let request = metrics_request(&self.metrics, &self.watch.workers(now), started, now);
        let body = request.encode_to_vec();
        let why = match transport.send(Signal::Metrics, &body) {
            PostOutcome::Accepted => {
                if !last_error.is_empty() {
                    eprintln!("swarm-obs serve: OTLP metrics export to {url} resumed");
                    last_error.clear();
                }
                return;
            }
            PostOutcome::Retry(why) => why,
            PostOutcome::Refused(status) => format!("HTTP {status}"),
        };
        self.metrics.add_export_failure();
        if why != *last_error {
            eprintln!(
                "swarm-obs serve: OTLP metrics export to {url} failed ({why}); the next interval sends the same totals"
            );
            *last_error = why;
        }
    }
}

fn nanos(ts: Timestamp) -> u64 {
    (ts.unix_ms().max(0) as u64).saturating_mul(1_000_000)
}

fn point(attrs: Vec<KeyValue>, start: Timestamp, now: Timestamp, value: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: nanos(start),
        time_unix_nano: nanos(now),
        value: Some(number_data_point::Value::AsInt(value)),
        flags: 0,
    }
}

fn gauge(name: &str, unit: &str, description: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        unit: unit.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
    }
}

fn counter(name: &str, unit: &str, description: &str, point: NumberDataPoint) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        unit: unit.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![point],
            aggregation_temporality: TEMPORALITY_CUMULATIVE,
            is_monotonic: true,
        })),
    }
}

fn clamp(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// The metrics request: worker verdicts (`swarm_obs.workers` by state,
/// `swarm_obs.worker.up` per worker) and the collector's counters and gauges.
pub(crate) fn metrics_request(
    metrics: &Metrics,
    workers: &[crate::heartbeats::WorkerView],
    started: Timestamp,
    now: Timestamp,
) -> ExportMetricsServiceRequest {
    let [ingested, duplicates, rejected, viewers, lagged] = metrics.snapshot();
    let [exported, failures, skipped, lag] = metrics.export_snapshot();
    let mut by_state: BTreeMap<&str, i64> = BTreeMap::new();
    let mut up = Vec::with_capacity(workers.len());
    for w in workers {
        *by_state.entry(w.state.as_str()).or_default() += 1;
        up.push(point(
            vec![
                KeyValue::new("swarm_obs.worker", AnyValue::string(w.worker.clone())),
                KeyValue::new("host.name", AnyValue::string(w.host.clone())),
                KeyValue::new("swarm_obs.worker.state", AnyValue::string(w.state.as_str())),
            ],
            started,
            now,
            i64::from(w.state == swarm_obs::WorkerState::Alive),
        ));
    }
    let states = by_state
        .into_iter()
        .map(|(state, n)| {
            point(
                vec![KeyValue::new(
                    "swarm_obs.worker.state",
                    AnyValue::string(state),
                )],
                started,
                now,
                n,
            )
        })
        .collect();
    let p = |v: u64| point(Vec::new(), started, now, clamp(v));
    let metrics = vec![
        gauge(
            "swarm_obs.workers",
            "{worker}",
            "Workers by heartbeat verdict.",
            states,
        ),
        gauge(
            "swarm_obs.worker.up",
            "1",
            "1 while a worker's heartbeat is on time, else 0.",
            up,
        ),
        counter(
            "swarm_obs.events.ingested",
            "{event}",
            "Events stored.",
            p(ingested),
        ),
        counter(
            "swarm_obs.events.duplicate",
            "{event}",
            "Events ignored as already stored.",
            p(duplicates),
        ),
        counter(
            "swarm_obs.requests.rejected",
            "{request}",
            "Ingest requests refused.",
            p(rejected),
        ),
        counter(
            "swarm_obs.viewer.lagged",
            "{event}",
            "Events live viewers missed by falling behind.",
            p(lagged),
        ),
        counter(
            "swarm_obs.export.exported",
            "{event}",
            "Events the OTLP receiver accepted.",
            p(exported),
        ),
        counter(
            "swarm_obs.export.failures",
            "{request}",
            "OTLP export requests that failed.",
            p(failures),
        ),
        counter(
            "swarm_obs.export.skipped",
            "{event}",
            "Events the OTLP receiver refused for good.",
            p(skipped),
        ),
        gauge(
            "swarm_obs.viewers",
            "{viewer}",
            "Live viewers connected.",
            vec![p(viewers)],
        ),
        gauge(
            "swarm_obs.export.lag",
            "{event}",
            "Stored events not yet accepted by the OTLP receiver.",
            vec![p(lag)],
        ),
    ];
    let resource = Resource {
        attributes: vec![
            KeyValue::new("service.name", AnyValue::string("swarm-obs-collector")),
            KeyValue::new("host.name", AnyValue::string(swarm_obs::hostname())),
            KeyValue::new("process.pid", AnyValue::int(i64::from(std::process::id()))),
        ],
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;

    use swarm_obs::Kind;

    use super::*;
    use crate::hub::Hub;

    /// A receiver answering 200 to every request, counting them.
    fn receiver() -> (String, Arc<std::sync::atomic::AtomicU64>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().take(100) {
                let Ok(mut conn) = conn else { continue };
                let mut buf = vec![0u8; 1 << 16];
                let mut got = Vec::new();
                // Head, then as much body as content-length says.
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                seen.fetch_add(1, Ordering::Relaxed);
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            }
        });
        (addr, count)
    }

    #[test]
    fn a_page_of_unparsable_rows_does_not_stall_export() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("collector.db");
        let hub = Hub::new(16);
        let store = Store::open(&db, hub.clone()).unwrap();
        let events: Vec<Event> = (0..3)
            .map(|i| Event::new("w", Kind::Log, format!("e{i}")))
            .collect();
        store.insert_blocking(events, None).unwrap();
        let raw = rusqlite::Connection::open(&db).unwrap();
        raw.execute("UPDATE events SET json = 'garbage' WHERE seq <= 2", [])
            .unwrap();

        let (addr, requests) = receiver();
        let mut options = ExportOptions::new(OtlpTarget::new(&format!("http://{addr}")).unwrap());
        options.target.metrics = None;
        options.batch = 2;
        options.poll = Duration::from_millis(10);
        let stop = Stop::default();
        let thread = Exporter {
            options,
            store: store.clone(),
            metrics: hub.metrics.clone(),
            watch: Arc::new(Watch::new(None)),
            stop: stop.clone(),
        }
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while hub.metrics.export_snapshot()[0] < 1 {
            assert!(
                Instant::now() < deadline,
                "export stalled on unparsable rows"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.set();
        thread.join().unwrap();
        assert_eq!(
            hub.metrics.export_snapshot()[0],
            1,
            "only the parsable event"
        );
        assert_eq!(requests.load(Ordering::Relaxed), 1);
        let cursor = store.read(|c| store::cursor(c, LOGS_CURSOR)).unwrap();
        assert_eq!(cursor, Some(3));
        store.close();
    }
}
