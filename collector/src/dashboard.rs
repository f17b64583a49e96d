//! The web dashboard: a page, its script, style sheet and icon, embedded in the binary
//! and served at `/` and `/assets/<name>` with no build step for users.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles from this
//! origin only, no inline script, no plugins, no framing), `nosniff`, no referrer, and
//! an `ETag` so browsers revalidate cheaply (`no-cache`) and pick up a new binary's
//! assets at once. The page and assets need no token: they hold no data, and the page
//! is what asks for the token (see the `http` module).

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy on every dashboard answer. `connect-src 'self'` covers the
/// EventSource and `fetch` calls to this collector.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../assets/index.html"),
};

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../assets/icon.svg"),
    },
];

/// FNV-1a over the content: a stable validator that changes with the content.
fn etag_of(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// The ETag of the page, then of each asset in [`ASSETS`] order.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::iter::once(&INDEX)
        .chain(ASSETS)
        .map(|a| etag_of(a.body))
        .collect()
});

/// The dashboard's routes; they need no state and no token.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{name}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &ETAGS[0], &headers)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => serve(&ASSETS[i], &ETAGS[i + 1], &headers),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such dashboard asset\n",
        )
            .into_response(),
    }
}

fn serve(asset: &Asset, etag: &str, request: &HeaderMap) -> Response {
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, asset.content_type)],
            asset.body.to_vec(),
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_distinct_and_the_page_loads_no_inline_script() {
        let page = std::str::from_utf8(INDEX.body).unwrap();
        assert!(page.contains(r#"<script src="/assets/app.js""#));
        assert!(!page.contains("<script>"), "inline script breaks the CSP");
        assert!(!page.contains("style=\""), "inline style breaks the CSP");
        let mut tags = ETAGS.clone();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len() + 1);
    }

    #[test]
    fn the_script_never_turns_text_into_markup() {
        let script = std::str::from_utf8(ASSETS[0].body).unwrap();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!script.contains(sink), "app.js uses {sink}");
        }
    }

    #[test]
    fn a_matching_etag_gets_not_modified() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, ETAGS[0].parse().unwrap());
        let resp = serve(&INDEX, &ETAGS[0], &h);
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert!(resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let resp = serve(&INDEX, &ETAGS[0], &HeaderMap::new());
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
    }
}
