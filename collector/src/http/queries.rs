//! Read endpoints: events pages, sources, sessions, activity, workers, probes.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::api::{SessionsAnswer, SourcesAnswer};
use crate::filter::Filter;
use crate::store::{self, PageCursor, Store};

use super::*;

pub(super) async fn workers(State(st): State<Shared>) -> Response {
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
pub(super) const PROBE_ROLLUP_HOURS: i64 = 24;

/// Every probe: state, last check, last transition, the recent transitions and the
/// hourly healthy-ratio rollup of the last day.
pub(super) async fn probes(State(st): State<Shared>) -> Response {
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
    let probes = views
        .into_iter()
        .zip(stored)
        .map(|(mut view, (rollup, transitions))| {
            let (checks, healthy) = rollup
                .iter()
                .fold((0, 0), |(c, h), r| (c + r.checks, h + r.healthy));
            view.healthy_ratio = (checks > 0).then(|| healthy as f64 / checks as f64);
            view.rollup = rollup;
            view.transitions = transitions;
            view
        })
        .collect();
    axum::Json(crate::api::ProbesAnswer { probes }).into_response()
}

/// Runs a blocking store read off the executor.
pub(super) async fn read<T: Send + 'static>(
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

pub(super) fn count_param(
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

pub(super) async fn query_events(
    State(st): State<Shared>,
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

pub(super) async fn sources(State(st): State<Shared>) -> Response {
    match read(&st.store, |c| store::sources(c, 10_000)).await {
        Ok(sources) => axum::Json(SourcesAnswer { sources }).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn sessions(
    State(st): State<Shared>,
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

pub(super) async fn activity(
    State(st): State<Shared>,
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
