//! The HTTP surface: ingest, queries, live streams (SSE and WebSocket), health and
//! metrics, behind an optional bearer-token check.
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /v1/events` | one event, a JSON array or NDJSON (`application/json`, `application/x-ndjson`); `202 {"accepted":n,"duplicates":m}` once committed, or `202 {"queued":n}` with `?ack=queued` (for events already in the event log); 400 names the event and line, 413 over the body cap, 415 for other content types |
//! | `POST /v1/notify` | a notification the sender's sound rules and gate already let through (`{"show":{…}}` or `{"summary_at":ms}`), shown by the collector's notifier; `202` once queued, `503` when this collector shows no notifications (`notifications` is absent from its `collector.json`) or its queue is full |
//! | `GET /v1/events` | stored events, newest first; filters below, `limit` (≤ 1000, default 100), `cursor` (the previous page's `next_cursor`) |
//! | `GET /v1/stream` | Server-Sent Events: `id` = event id, `event` = kind, `data` = the event; backfill `n` (≤ 1000, default 100), resume with `Last-Event-ID` (or `?last_event_id=`); `event: lagged` with `{"missed":n}` when the viewer fell behind (resume to get the missed events from the store); the stream opens with `retry: 1000` and a comment |
//! | `GET /v1/ws` | WebSocket: send `{"type":"subscribe"\|"unsubscribe","channels":["all","source:<name>","session:<id>","kind:<kind>"]}`; receive `{"type":"event","event":<kind>,"data":<event>,"timestamp":<ts>}` |
//! | `GET /v1/sources`, `GET /v1/sessions` | per source; per Claude Code session with agents, tool counts, errors, first/last seen, duration |
//! | `POST /v1/heartbeats`, `GET /v1/workers` | heartbeats from other hosts; every worker with its verdict |
//! | `GET /v1/activity` | events per minute by kind over the last `minutes` (1–1440, default 15), every minute listed; the filters below apply |
//! | `GET /v1/probes` | every health probe: state, last check, transitions, hourly healthy ratio |
//! | `POST /v1/logs`, `POST /v1/metrics` | OTLP/HTTP ingest (`application/x-protobuf` or `application/json`, uncompressed), e.g. Claude Code's own telemetry; each log record and gauge or sum data point becomes an event; 400/413/415 like `/v1/events` |
//! | `GET /healthz`, `GET /metrics` | liveness; Prometheus text |
//! | `GET /`, `GET /assets/…` | the web dashboard (see [`crate::dashboard`]) |
//!
//! Filters (queries, activity and SSE): `source`, `session`, `agent` (`main` = the
//! main agent), `kind`, `level` (minimum), `q` (regex over message, source and tool),
//! `since`, `until` (RFC 3339).
//!
//! With a token, every request but the dashboard's page and assets needs
//! `Authorization: Bearer <token>`. A GET may carry it as `?access_token=` instead,
//! because a browser cannot set headers on `EventSource` or WebSocket. The trade-off:
//! a token in a URL can end up in logs and history, so it is accepted on GET only
//! (reads, never ingest) and the dashboard keeps it out of its own address bar.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use swarm_obs::Kind;
use tokio::sync::{broadcast, watch};

use crate::api::{SessionsAnswer, SourcesAnswer};
use crate::filter::Filter;
use crate::heartbeats::{MAX_HEARTBEAT_BYTES, Watch};
use crate::hub::{Hub, MAX_VIEWERS, Metrics, ViewerGuard};
use crate::hub::{Live, Stored};
use crate::ingest::{Refusal, check_content_type, parse_events};
use crate::otlp_ingest::{self, Encoding, Signal};
use crate::store::{self, PageCursor, Store};

/// Backfill sent to a new viewer unless it asks otherwise.
const DEFAULT_BACKFILL: usize = 100;
/// Backfill a viewer may ask for at most.
const MAX_BACKFILL: usize = 1000;
/// Events one query returns at most.
const MAX_QUERY_LIMIT: usize = 1000;
/// Rows read from the store per page while a resumed viewer catches up.
const RESUME_PAGE: usize = 1000;
/// Channels one WebSocket may subscribe to at most.
const MAX_CHANNELS: usize = 256;
/// How long a client may take to send a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Live fan-out and metrics.
    pub hub: Hub,
    /// Heartbeats and worker verdicts.
    pub watch: Arc<Watch>,
    /// The state root, whose heartbeat files `/v1/workers` re-reads.
    pub root: swarm_obs::StateRoot,
    /// Health probes and their states.
    pub probes: Arc<crate::probes::Probes>,
    /// Bearer token every request must carry, when set.
    pub token: Option<Arc<str>>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Applied to records ingested over OTLP.
    pub redactor: Arc<swarm_obs::Redactor>,
    /// Shows the notifications handed over on `/v1/notify`; `None` when this
    /// collector shows none (its backend is off).
    pub notify: Option<swarm_obs::notify::NotifyHandle>,
    /// Rows a regex filter scans at most per page.
    pub scan_limit: usize,
    /// Quiet time after which a live session nobody can check is `stale`.
    pub stale_after_ms: i64,
    /// Turns true when the collector is shutting down; streams end then.
    pub shutdown: watch::Receiver<bool>,
}

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/events", get(query_events).post(post_events))
        .route("/v1/sources", get(sources))
        .route("/v1/sessions", get(sessions))
        .route("/v1/stream", get(stream))
        .route("/v1/ws", get(ws))
        .route("/v1/heartbeats", axum::routing::post(post_heartbeat))
        .route("/v1/notify", axum::routing::post(post_notify))
        .route("/v1/logs", axum::routing::post(post_otlp_logs))
        .route("/v1/metrics", axum::routing::post(post_otlp_metrics))
        .route("/v1/workers", get(workers))
        .route("/v1/activity", get(activity))
        .route("/v1/probes", get(probes))
        .fallback(|| async {
            error(
                404,
                "no such endpoint; see /v1/events, /v1/stream, /v1/ws, /v1/workers, /healthz, /metrics",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn(close_after_refused_body))
        // Added after the token check: the page and its assets hold no data, and the
        // page is what asks for the token.
        .merge(crate::dashboard::router())
        .with_state(state)
}

fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "error": message.into() });
    (status, axum::Json(body)).into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &st.token {
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        // Browsers cannot set headers on EventSource or WebSocket: a GET may carry
        // `?access_token=` (reads only, so a leaked URL cannot inject events).
        let query = (req.method() == Method::GET)
            .then(|| Query::<HashMap<String, String>>::try_from_uri(req.uri()).ok())
            .flatten()
            .and_then(|Query(mut p)| p.remove("access_token"));
        let ok = bearer.is_some_and(|t| same(t.as_bytes(), token.as_bytes()))
            || query.is_some_and(|t| same(t.as_bytes(), token.as_bytes()));
        if !ok {
            return error(
                401,
                "missing or wrong bearer token: send `Authorization: Bearer <token>`, or `?access_token=<token>` on a GET (the token is in collector.json)",
            );
        }
    }
    next.run(req).await
}

/// A request refused with its body maybe unread (401 before reading, 413 on the
/// declared length) leaves that body on the connection, so the server cannot reuse
/// it: say so with `connection: close`, or a keep-alive client sends its next request
/// into a socket about to close and sees it cut off.
async fn close_after_refused_body(req: Request, next: Next) -> Response {
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut res = next.run(req).await;
    if has_body && res.status().is_client_error() {
        res.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    res
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({
        "status": "ok",
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn metrics(State(st): State<AppState>) -> Response {
    let [ingested, duplicates, rejected, viewers, lagged] = st.hub.metrics.snapshot();
    let [exported, export_failures, export_skipped, export_lag] = st.hub.metrics.export_snapshot();
    let size = st.store.size_bytes();
    let mut out = String::new();
    for (name, kind, help, value) in [
        (
            "swarm_obs_events_ingested_total",
            "counter",
            "Events stored.",
            ingested,
        ),
        (
            "swarm_obs_events_duplicate_total",
            "counter",
            "Events ignored because their id was already stored.",
            duplicates,
        ),
        (
            "swarm_obs_requests_rejected_total",
            "counter",
            "Ingest requests refused with a 4xx status.",
            rejected,
        ),
        (
            "swarm_obs_viewers",
            "gauge",
            "Live viewers connected (SSE and WebSocket).",
            viewers,
        ),
        (
            "swarm_obs_viewer_lagged_events_total",
            "counter",
            "Events live viewers missed by falling behind.",
            lagged,
        ),
        (
            "swarm_obs_store_failures_total",
            "counter",
            "Batches the store failed to commit (disk full, say); their events were not stored.",
            st.hub.metrics.store_failures(),
        ),
        (
            "swarm_obs_store_bytes",
            "gauge",
            "Size of the SQLite store on disk, write-ahead log included.",
            size,
        ),
        (
            "swarm_obs_otlp_exported_total",
            "counter",
            "Events the OTLP receiver accepted.",
            exported,
        ),
        (
            "swarm_obs_otlp_export_failures_total",
            "counter",
            "OTLP export requests that failed (retried, or skipped on a 4xx).",
            export_failures,
        ),
        (
            "swarm_obs_otlp_export_skipped_total",
            "counter",
            "Events the OTLP receiver refused with a 4xx other than 429, skipped.",
            export_skipped,
        ),
        (
            "swarm_obs_otlp_export_lag",
            "gauge",
            "Stored events the OTLP receiver has not accepted yet.",
            export_lag,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    let probes = st.probes.views();
    if !probes.is_empty() {
        out.push_str(
            "# HELP swarm_obs_probe_healthy Whether the probe's last check passed (1) or not (0).\n# TYPE swarm_obs_probe_healthy gauge\n",
        );
        for p in probes.iter().filter(|p| p.last_check.is_some()) {
            // Label values escape backslash, quote and newline.
            let name = p
                .name
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let healthy = p.last_check.as_ref().is_some_and(|c| c.healthy);
            out.push_str(&format!(
                "swarm_obs_probe_healthy{{probe=\"{name}\"}} {}\n",
                u8::from(healthy)
            ));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Reads a request body within the body cap and time limit.
async fn read_body(st: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    read_capped(headers, body, st.body_limit, "; send smaller batches").await
}

/// Reads a whole body of at most `limit` bytes: one declared bigger is refused at
/// once, one that grows bigger as soon as it does, and a slow one after
/// [`BODY_TIMEOUT`]. `advice` ends the 413 message.
async fn read_capped(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    advice: &str,
) -> Result<Bytes, Refusal> {
    let too_big = || Refusal {
        status: 413,
        message: format!("request body over the {limit} byte cap{advice}"),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) if e.to_string().contains("length limit") => Err(too_big()),
        Ok(Err(e)) => Err(Refusal {
            status: 400,
            message: format!("cannot read the request body: {e}"),
        }),
        Err(_) => Err(Refusal {
            status: 400,
            message: format!("request body not received within {BODY_TIMEOUT:?}"),
        }),
    }
}

/// Runs `parse` on the body, off the executor for large bodies so they cannot
/// stall live streams.
async fn parse_off_executor<T: Send + 'static>(
    bytes: Bytes,
    parse: impl FnOnce(&[u8]) -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    if bytes.len() > 64 << 10 {
        match tokio::task::spawn_blocking(move || parse(&bytes)).await {
            Ok(r) => r,
            Err(e) => Err(Refusal {
                status: 500,
                message: format!("parsing the body failed: {e}"),
            }),
        }
    } else {
        parse(&bytes)
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// When `POST /v1/events` answers: once the events are committed (`ack=stored`, the
/// default), or once they are queued for the store (`ack=queued`), for clients whose
/// events are already in the event log, which catch-up reads if the collector dies
/// before the commit. The hook uses `queued`: it saves it two thread wake-ups and a
/// commit per event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ack {
    Stored,
    Queued,
}

impl Ack {
    fn from_query(q: Option<&str>) -> Result<Self, Refusal> {
        let mut ack = Ack::Stored;
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key != "ack" {
                continue;
            }
            ack = match value {
                "stored" => Ack::Stored,
                "queued" => Ack::Queued,
                other => {
                    return Err(Refusal {
                        status: 400,
                        message: format!(
                            "unknown `ack={other}` (expected `stored`, the default, or `queued`)"
                        ),
                    });
                }
            };
        }
        Ok(ack)
    }
}

async fn post_events(
    State(st): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let refuse = |r: Refusal| {
        st.hub.metrics.add_rejected();
        error(r.status, r.message)
    };
    let ack = match Ack::from_query(query.as_deref()) {
        Ok(a) => a,
        Err(r) => return refuse(r),
    };
    if let Err(r) = check_content_type(header_str(&headers, header::CONTENT_TYPE)) {
        return refuse(r);
    }
    let bytes = match read_body(&st, &headers, body).await {
        Ok(b) => b,
        Err(r) => return refuse(r),
    };
    let events = match parse_off_executor(bytes, parse_events).await {
        Ok(ev) => ev,
        Err(r) => return refuse(r),
    };
    if ack == Ack::Queued {
        return match st.store.insert_queued(events).await {
            Ok(n) => (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({ "queued": n })),
            )
                .into_response(),
            Err(e) => error(503, format!("{e}; the events are not stored, retry later")),
        };
    }
    match st.store.insert(events).await {
        Ok(ins) => (StatusCode::ACCEPTED, axum::Json(ins)).into_response(),
        Err(e) => error(503, format!("{e}; the events are not stored, retry later")),
    }
}

async fn post_otlp_logs(st: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    post_otlp(st, headers, body, Signal::Logs).await
}

async fn post_otlp_metrics(st: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    post_otlp(st, headers, body, Signal::Metrics).await
}

/// OTLP/HTTP ingest: every record becomes an event; the answer is an empty
/// `Export…ServiceResponse` in the request's encoding (full success).
async fn post_otlp(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
    signal: Signal,
) -> Response {
    let refuse = |r: Refusal| {
        st.hub.metrics.add_rejected();
        error(r.status, r.message)
    };
    let encoding = match otlp_ingest::encoding(
        header_str(&headers, header::CONTENT_TYPE),
        header_str(&headers, header::CONTENT_ENCODING),
    ) {
        Ok(e) => e,
        Err(r) => return refuse(r),
    };
    let bytes = match read_body(&st, &headers, body).await {
        Ok(b) => b,
        Err(r) => return refuse(r),
    };
    let events = match parse_off_executor(bytes, {
        let redactor = st.redactor.clone();
        move |b| otlp_ingest::parse(signal, encoding, b, &redactor)
    })
    .await
    {
        Ok(ev) => ev,
        Err(r) => return refuse(r),
    };
    if !events.is_empty()
        && let Err(e) = st.store.insert(events).await
    {
        // 503 is retryable for OTLP senders.
        return error(503, format!("{e}; the records are not stored, retry later"));
    }
    match encoding {
        Encoding::Protobuf => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::new(),
        )
            .into_response(),
        Encoding::Json => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
    }
}

async fn post_heartbeat(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Err(r) = check_content_type(ctype) {
        return error(r.status, r.message);
    }
    let bytes = match read_capped(&headers, body, MAX_HEARTBEAT_BYTES, "").await {
        Ok(b) => b,
        Err(r) => return error(r.status, r.message),
    };
    match st.watch.record(&bytes) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error(400, e),
    }
}

/// Largest notification job accepted on `/v1/notify`.
const MAX_NOTIFY_BYTES: usize = 64 << 10;

/// A hook hands over a notification it has decided to show, so it need not start a
/// delivery process of its own; on any refusal it starts one.
async fn post_notify(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let refuse = |status: u16, message: String| {
        st.hub.metrics.add_rejected();
        error(status, message)
    };
    if let Err(r) = check_content_type(header_str(&headers, header::CONTENT_TYPE)) {
        return refuse(r.status, r.message);
    }
    let Some(notify) = &st.notify else {
        return refuse(
            503,
            "this collector shows no notifications (its notification backend is off); show it yourself".to_owned(),
        );
    };
    let bytes = match read_capped(&headers, body, MAX_NOTIFY_BYTES, "").await {
        Ok(b) => b,
        Err(r) => return refuse(r.status, r.message),
    };
    let job: swarm_obs::notify::Delivery = match serde_json::from_slice(&bytes) {
        Ok(j) => j,
        Err(e) => {
            return refuse(
                400,
                format!(
                    "not a notification job: {e} (expected {{\"show\":{{\"kind\":…,\"title\":…,\"body\":…}}}} or {{\"summary_at\":<unix ms>}})"
                ),
            );
        }
    };
    if notify.deliver(job) {
        StatusCode::ACCEPTED.into_response()
    } else {
        refuse(
            503,
            "the notification queue is full; show it yourself".to_owned(),
        )
    }
}

async fn workers(State(st): State<AppState>) -> Response {
    // Fresh files, not the last periodic scan's: a beat written since that scan
    // would otherwise read as up to one watch interval older than it is.
    let watch = st.watch.clone();
    let root = st.root.clone();
    let workers = tokio::task::spawn_blocking(move || {
        watch.scan_files(&root);
        watch.workers(swarm_obs::Timestamp::now())
    })
    .await
    .unwrap_or_default();
    axum::Json(serde_json::json!({ "workers": workers })).into_response()
}

/// Hours of rollup `GET /v1/probes` returns.
const PROBE_ROLLUP_HOURS: i64 = 24;

/// Every probe: state, last check, last transition, the recent transitions and the
/// hourly healthy-ratio rollup of the last day.
async fn probes(State(st): State<AppState>) -> Response {
    let views = st.probes.views();
    let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
    let since = swarm_obs::Timestamp::now().unix_ms() - PROBE_ROLLUP_HOURS * 3_600_000;
    let stored = read(&st.store, move |c| {
        let mut rollup = store::probe_rollup(c, since)?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let transitions = store::probe_transitions(c, &name, 20)?;
            out.push((rollup.remove(&name).unwrap_or_default(), transitions));
        }
        Ok(out)
    })
    .await;
    let stored = match stored {
        Ok(s) => s,
        Err(r) => return r,
    };
    let probes: Vec<serde_json::Value> = views
        .into_iter()
        .zip(stored)
        .map(|(view, (rollup, transitions))| {
            let (checks, healthy) = rollup
                .iter()
                .fold((0, 0), |(c, h), r| (c + r.checks, h + r.healthy));
            let mut v = serde_json::to_value(view).unwrap_or_default();
            v["rollup"] = serde_json::json!(rollup);
            v["transitions"] = serde_json::json!(transitions);
            v["healthy_ratio"] = if checks > 0 {
                serde_json::json!(healthy as f64 / checks as f64)
            } else {
                serde_json::Value::Null
            };
            v
        })
        .collect();
    axum::Json(serde_json::json!({ "probes": probes })).into_response()
}

/// Runs a blocking store read off the executor.
async fn read<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.read(f)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(500, format!("query failed: {e}"))),
        Err(e) => Err(error(500, format!("query failed: {e}"))),
    }
}

fn count_param(
    p: &HashMap<String, String>,
    names: &[&str],
    default: usize,
    max: usize,
) -> Result<usize, Box<Response>> {
    for name in names {
        if let Some(v) = p.get(*name).filter(|v| !v.is_empty()) {
            return match v.parse::<usize>() {
                Ok(n) => Ok(n.min(max)),
                Err(_) => Err(Box::new(error(
                    400,
                    format!("invalid `{name}` {v:?}: expected a number up to {max}"),
                ))),
            };
        }
    }
    Ok(default)
}

async fn query_events(
    State(st): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let filter = match Filter::from_params(&p) {
        Ok(f) => f,
        Err(e) => return error(400, e.to_string()),
    };
    let limit = match count_param(&p, &["limit"], 100, MAX_QUERY_LIMIT) {
        Ok(n) => n.max(1),
        Err(r) => return *r,
    };
    let filter_has_regex = filter.q.is_some();
    let cursor = match p.get("cursor").filter(|v| !v.is_empty()) {
        None => None,
        Some(c) => match PageCursor::decode(c) {
            Some(c) => Some(c),
            None => {
                return error(
                    400,
                    format!(
                        "invalid `cursor` {:?}: pass back `next_cursor` from the previous page",
                        c.chars().take(100).collect::<String>()
                    ),
                );
            }
        },
    };
    let scan_limit = st.scan_limit;
    let page = match read(&st.store, move |c| {
        store::page(c, &filter, cursor, None, limit, scan_limit)
    })
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    // The stored JSON goes out as it is: no event is parsed and printed again.
    let mut body = String::from("{\"events\":[");
    for (i, s) in page.rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&s.json);
    }
    body.push_str("],\"next_cursor\":");
    match page.next {
        Some(c) => body.push_str(&format!("\"{}\"", c.encode())),
        None => body.push_str("null"),
    }
    if page.partial {
        body.push_str(",\"partial\":true");
    }
    if filter_has_regex {
        body.push_str(&format!(",\"scanned\":{}", page.scanned));
    }
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn sources(State(st): State<AppState>) -> Response {
    match read(&st.store, |c| store::sources(c, 10_000)).await {
        Ok(sources) => axum::Json(SourcesAnswer { sources }).into_response(),
        Err(r) => r,
    }
}

async fn sessions(
    State(st): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let limit = match count_param(&p, &["limit"], 100, 1000) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let one = p.get("session").filter(|s| !s.is_empty()).cloned();
    let rows = read(&st.store, move |c| match one {
        Some(id) => Ok(store::session_row(c, &id)?
            .map(|agg| vec![(id, agg)])
            .unwrap_or_default()),
        None => store::session_rows(c, limit),
    })
    .await;
    let now = swarm_obs::Timestamp::now();
    let stale = st.stale_after_ms;
    match rows {
        Ok(rows) => {
            let sessions = rows
                .iter()
                .map(|(id, agg)| agg.summary(id, now, swarm_obs::hostname(), stale))
                .collect();
            axum::Json(SessionsAnswer { sessions }).into_response()
        }
        Err(r) => r,
    }
}

async fn activity(
    State(st): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let filter = match Filter::from_params(&p) {
        Ok(f) => f,
        Err(e) => return error(400, e.to_string()),
    };
    let minutes = match count_param(&p, &["minutes"], 15, 1440) {
        Ok(n) => n.max(1),
        Err(r) => return *r,
    };
    let now = swarm_obs::Timestamp::now();
    match read(&st.store, move |c| {
        store::activity(c, &filter, minutes, now)
    })
    .await
    {
        Ok(a) => axum::Json(a).into_response(),
        Err(r) => r,
    }
}

/// Resolves once shutdown begins (holding no lock across later awaits).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What a live viewer is sent next.
enum Item {
    Event(Arc<Stored>),
    Session(Arc<crate::api::SessionSummary>),
    Lagged(u64),
}

/// One live viewer's position: events from the store first (backfill or resume),
/// then the broadcast, skipping what the store already gave.
struct Follow {
    store: Store,
    rx: broadcast::Receiver<Live>,
    filter: Filter,
    /// Also send sessions whose state moved (`?states=1`).
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

async fn stream(
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
const SSE_RETRY: Duration = Duration::from_secs(1);

fn sse(events: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static) -> Response {
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

fn sse_event(item: &Item) -> SseEvent {
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

fn too_many_viewers() -> Response {
    error(
        503,
        format!("{MAX_VIEWERS} viewers are connected already; retry later"),
    )
}

async fn ws(State(st): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let Some(viewer) = st.hub.subscribe() else {
        return too_many_viewers();
    };
    upgrade
        .max_message_size(64 << 10)
        .on_upgrade(move |socket| ws_session(st, socket, viewer))
}

/// Whether a viewer's filter lets a session's state message through.
fn session_matches(f: &Filter, s: &crate::api::SessionSummary) -> bool {
    f.session.as_ref().is_none_or(|id| *id == s.session)
        && f.source.as_ref().is_none_or(|src| s.sources.contains(src))
}

/// Whether an event is on any of the subscribed channels.
fn on_channels(channels: &HashSet<String>, ev: &swarm_obs::Event) -> bool {
    channels.contains("all")
        || channels.contains(&format!("source:{}", ev.source))
        || channels.contains(&format!("kind:{}", ev.kind))
        || ev
            .session
            .as_ref()
            .is_some_and(|s| channels.contains(&format!("session:{s}")))
}

fn valid_channel(c: &str) -> bool {
    c == "all"
        || c == "sessions"
        || c.strip_prefix("source:").is_some_and(|s| !s.is_empty())
        || c.strip_prefix("session:").is_some_and(|s| !s.is_empty())
        || c.strip_prefix("kind:")
            .is_some_and(|k| Kind::ALL.iter().any(|x| x.as_str() == k))
}

#[derive(serde::Deserialize)]
struct WsRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    channel: Option<String>,
}

/// Applies one client request to the subscription set and returns the reply.
fn ws_request(channels: &mut HashSet<String>, text: &str) -> String {
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

async fn ws_session(
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
