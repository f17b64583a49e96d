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
//! | `GET /v1/sessions/{id}/conversation` | the conversation of the session's main agent (or `agent=<subagent id>`), read from its Claude Code transcript on request, redacted: `turns` (`seq`, `ts`, `role`, `kind` prompt/text/tool_use/tool_result, `text` cut at 2 KiB, `tool`, `tool_use_id`, `is_error`) in transcript order; the newest `limit` (≤ 200, default 50), or those `before`/`after` a turn's `seq`, with `next_before`, `next_after`, `total`; `truncated`, `skipped_lines`, `oversized_lines`; `lags` (with `lag`, `newest_turn`, `last_event`) when the events report a turn the file lacks. 404 for an unknown session or agent or a missing file, 403 for a path outside the transcript roots or not the collector's user's (see [`crate::transcript`]) |
//! | `POST /v1/heartbeats`, `GET /v1/workers` | heartbeats from other hosts; every worker with its verdict |
//! | `GET /v1/activity` | events per minute by kind over the last `minutes` (1–1440, default 15), every minute listed; the filters below apply |
//! | `GET /v1/probes` | every health probe: state, last check, transitions, hourly healthy ratio |
//! | `POST /v1/logs`, `POST /v1/metrics` | OTLP/HTTP ingest (`application/x-protobuf` or `application/json`, uncompressed or `Content-Encoding: gzip` with the body cap applied to the decoded size), e.g. Claude Code's own telemetry; each log record and gauge or sum data point becomes an event; 400/413/415 like `/v1/events` |
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

pub(crate) mod conn;
mod conversation;
pub(crate) mod guard;
mod ingest;
mod live;
pub(crate) mod peer;
mod queries;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::heartbeats::Watch;
use crate::hub::Hub;
use crate::store::Store;

use ingest::*;
use live::*;
use queries::*;

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
    /// Host names and origins allowed to reach any endpoint.
    pub allowed: Arc<guard::Allowed>,
    /// Connections open, shed and refused at the cap.
    pub connections: Arc<conn::ConnMetrics>,
    /// KiB of request bodies that may be in memory at once, shared by all.
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Its size, for messages.
    pub body_budget_kib: usize,
    /// Where session transcripts may be read from, for `/conversation`.
    pub transcripts: Arc<crate::transcript::Transcripts>,
}

/// What handlers are given: one pointer, so extracting it per request and per
/// middleware costs one count, not one per field.
pub(crate) type Shared = Arc<AppState>;

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    let state: Shared = Arc::new(state);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/events", get(query_events).post(post_events))
        .route("/v1/sources", get(sources))
        .route("/v1/sessions", get(sessions))
        .route(
            "/v1/sessions/{id}/conversation",
            get(conversation::conversation),
        )
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
        // Outermost: a foreign Host or Origin reaches no handler, the page included.
        .layer(middleware::from_fn_with_state(
            state.allowed.clone(),
            guard::check,
        ))
        .with_state(state)
}

pub(super) fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "error": message.into() });
    (status, axum::Json(body)).into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timing.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) async fn auth(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<peer::Peer>().copied();
    if st.token.is_none()
        && let Some(p) = peer.filter(peer::Peer::other_user)
    {
        // Loopback is open to every local user; without a token only the user
        // who runs the collector (and root) may read or write its events.
        return error(
            403,
            format!(
                "this collector serves only its own user (uid {}), and this connection is uid {}; \
                 to share it, start it with --token (or SWARM_OBS_TOKEN) and send that token",
                peer::own_uid(),
                p.uid.unwrap_or_default()
            ),
        );
    }
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
pub(super) async fn close_after_refused_body(req: Request, next: Next) -> Response {
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

pub(super) async fn healthz() -> Response {
    axum::Json(serde_json::json!({
        "status": "ok",
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

pub(super) async fn metrics(State(st): State<Shared>) -> Response {
    let [ingested, duplicates, rejected, viewers, lagged] = st.hub.metrics.snapshot();
    let [open_conns, shed_conns, refused_conns, unix_conns] = st.connections.snapshot();
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
            "swarm_obs_connections",
            "gauge",
            "HTTP connections open (WebSocket viewers are counted as viewers once upgraded).",
            open_conns,
        ),
        (
            "swarm_obs_connections_shed_total",
            "counter",
            "Idle connections closed to make room at the connection cap.",
            shed_conns,
        ),
        (
            "swarm_obs_connections_refused_total",
            "counter",
            "Connections refused at the cap because every open one was busy.",
            refused_conns,
        ),
        (
            "swarm_obs_unix_connections_total",
            "counter",
            "Connections accepted on the Unix socket (local hooks and workers); the rest came over TCP.",
            unix_conns,
        ),
        (
            "swarm_obs_store_failing",
            "gauge",
            "1 while the last commit failed: queued POSTs are refused with 503 until one succeeds.",
            u64::from(st.hub.metrics.store_failing().is_some()),
        ),
        (
            "swarm_obs_catchup_invalid_lines_total",
            "counter",
            "Lines of the event files that catch-up skipped because they are not events.",
            st.hub.metrics.invalid_lines(),
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
