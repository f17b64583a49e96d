//! Ingest endpoints: events, OTLP logs and metrics, heartbeats, notifications.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::heartbeats::MAX_HEARTBEAT_BYTES;
use crate::ingest::{Refusal, admit, check_content_type, parse_events};
use crate::otlp_ingest::{self, Compression, Encoding, Signal};

use super::*;

/// A body being read or worked on, holding its share of the memory budget for
/// bodies until the request is answered.
pub(super) struct HeldBody {
    pub bytes: Bytes,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for HeldBody {
    fn drop(&mut self) {
        // glibc keeps what large bodies freed; give it back, so a burst of big
        // POSTs does not leave the collector's memory at its peak for good.
        // Trimming walks the heap: off the async workers, which serve everyone.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if self.bytes.len() >= TRIM_AFTER_BYTES
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            // SAFETY: malloc_trim only releases free memory of the allocator.
            rt.spawn_blocking(|| unsafe { libc::malloc_trim(0) });
        }
    }
}

/// Bodies at least this big give freed memory back to the system when done.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_AFTER_BYTES: usize = 1 << 20;

/// Reads a request body within the body cap, the time limit and the memory
/// budget shared by all bodies in flight: a body waits for its share (its
/// declared length, else the cap) up to the time limit, then is refused with 503.
pub(super) async fn read_body(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<HeldBody, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(st.body_limit)
        .min(st.body_limit);
    let kib = u32::try_from(declared.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let budget = st.body_budget.clone();
    let permit = match tokio::time::timeout(BODY_TIMEOUT, budget.acquire_many_owned(kib)).await {
        Ok(Ok(p)) => p,
        _ => {
            return Err(Refusal {
                status: 503,
                message: format!(
                    "the collector is holding its whole body budget ({} MiB) for other requests; retry later",
                    st.body_budget_kib / 1024
                ),
            });
        }
    };
    let bytes = read_capped(headers, body, st.body_limit, "; send smaller batches").await?;
    Ok(HeldBody {
        bytes,
        _budget: permit,
    })
}

/// Reads a whole body of at most `limit` bytes: one declared bigger is refused at
/// once, one that grows bigger as soon as it does, and a slow one after
/// [`BODY_TIMEOUT`]. `advice` ends the 413 message.
pub(super) async fn read_capped(
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
pub(super) async fn parse_off_executor<T: Send + 'static>(
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

pub(super) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// When `POST /v1/events` answers: once the events are committed (`ack=stored`, the
/// default), or once they are queued for the store (`ack=queued`), for clients whose
/// events are already in the event log, which catch-up reads if the collector dies
/// before the commit. The hook uses `queued`: it saves it two thread wake-ups and a
/// commit per event.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ack {
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

pub(super) async fn post_events(
    State(st): State<Shared>,
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
    let held = match read_body(&st, &headers, body).await {
        Ok(b) => b,
        Err(r) => return refuse(r),
    };
    let bytes = held.bytes.clone();
    let redactor = st.redactor.clone();
    let admitted = move |b: &[u8]| {
        let mut events = parse_events(b)?;
        let now = swarm_obs::Timestamp::now();
        for ev in &mut events {
            admit(ev, &redactor, now);
        }
        Ok(events)
    };
    let events = match parse_off_executor(bytes, admitted).await {
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

pub(super) async fn post_otlp_logs(st: State<Shared>, headers: HeaderMap, body: Body) -> Response {
    post_otlp(st, headers, body, Signal::Logs).await
}

pub(super) async fn post_otlp_metrics(
    st: State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    post_otlp(st, headers, body, Signal::Metrics).await
}

/// OTLP/HTTP ingest: every record becomes an event; the answer is an empty
/// `Export…ServiceResponse` in the request's encoding (full success).
pub(super) async fn post_otlp(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Body,
    signal: Signal,
) -> Response {
    let refuse = |r: Refusal| {
        st.hub.metrics.add_rejected();
        error(r.status, r.message)
    };
    let (encoding, compression) = match otlp_ingest::encoding(
        header_str(&headers, header::CONTENT_TYPE),
        header_str(&headers, header::CONTENT_ENCODING),
    ) {
        Ok(e) => e,
        Err(r) => return refuse(r),
    };
    let held = match read_body(&st, &headers, body).await {
        Ok(b) => b,
        Err(r) => return refuse(r),
    };
    let redactor = st.redactor.clone();
    let parsed = match compression {
        Compression::None => {
            parse_off_executor(held.bytes.clone(), move |b| {
                otlp_ingest::parse(signal, encoding, b, &redactor)
            })
            .await
        }
        // Inflating is work a small body can ask for: always off the executor,
        // holding a share of the body budget for what it may decode to.
        Compression::Gzip => {
            let kib = u32::try_from(st.body_limit.div_ceil(1024)).unwrap_or(u32::MAX);
            let Ok(Ok(_decoded)) =
                tokio::time::timeout(BODY_TIMEOUT, st.body_budget.clone().acquire_many_owned(kib))
                    .await
            else {
                return refuse(Refusal {
                    status: 503,
                    message: "the collector is holding its whole body budget for other requests; retry later".to_owned(),
                });
            };
            let (bytes, limit) = (held.bytes.clone(), st.body_limit);
            match tokio::task::spawn_blocking(move || {
                let raw = otlp_ingest::gunzip(&bytes, limit)?;
                otlp_ingest::parse(signal, encoding, &raw, &redactor)
            })
            .await
            {
                Ok(r) => r,
                Err(e) => Err(Refusal {
                    status: 500,
                    message: format!("decoding the body failed: {e}"),
                }),
            }
        }
    };
    let events = match parsed {
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

pub(super) async fn post_heartbeat(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
pub(super) const MAX_NOTIFY_BYTES: usize = 64 << 10;

/// A hook hands over a notification it has decided to show, so it need not start a
/// delivery process of its own; on any refusal it starts one.
pub(super) async fn post_notify(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
