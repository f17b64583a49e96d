//! Who may talk to the collector at all, checked before any handler runs.
//!
//! A loopback server is still reachable from every web page the user opens. Two
//! checks keep pages of other sites out:
//! - **Host** (DNS rebinding): a page of `http://evil.example:4780` whose name
//!   resolves to 127.0.0.1 sends `Host: evil.example:4780`. Only names of the
//!   bound address are accepted: `127.0.0.1`, `localhost`, `[::1]`, the address
//!   it listens on, and names given with `--allow-host`; with the bound port or
//!   none. A collector bound to every address (`0.0.0.0`, which needs a token)
//!   also accepts IP literals, which no rebinding can forge.
//! - **Origin** (cross-site requests, WebSocket hijacking): a request that carries
//!   an `Origin` must come from the collector's own origin (`http://` and the Host
//!   it was sent to) or one given with `--allow-origin`. `Origin: null` (a
//!   `file://` page, a sandboxed frame) is refused.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::error;

/// The Host names and Origins the collector answers.
#[derive(Clone, Debug)]
pub struct Allowed {
    port: u16,
    names: Vec<String>,
    any_ip: bool,
    origins: Vec<String>,
}

impl Allowed {
    /// For a collector bound to `local`, with extra host names and origins.
    pub fn new(local: SocketAddr, hosts: &[String], origins: &[String]) -> Self {
        let mut names: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        names.push(match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        });
        names.extend(hosts.iter().map(|h| h.trim().to_ascii_lowercase()));
        Self {
            port: local.port(),
            names,
            any_ip: local.ip().is_unspecified(),
            origins: origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a `Host` header value names this collector.
    pub fn host_ok(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let (name, port) = match host.rsplit_once(':') {
            // `[::1]:4780`, `localhost:4780`; a bare `[::1]` has its colon inside brackets.
            Some((n, p)) if !p.contains(']') => (n.to_owned(), Some(p)),
            _ => (host.clone(), None),
        };
        if let Some(p) = port
            && p.parse::<u16>().ok() != Some(self.port)
        {
            return false;
        }
        if self.names.contains(&name) {
            return true;
        }
        self.any_ip && name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
    }

    /// Whether an `Origin` may send requests here, given the request's Host.
    pub fn origin_ok(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        origin == format!("http://{}", host.trim().to_ascii_lowercase())
            || self.origins.contains(&origin)
    }
}

/// The middleware: 421 for a Host that names another server, 403 for a foreign
/// Origin, before any handler (the dashboard's page included) runs.
pub async fn check(State(allowed): State<Arc<Allowed>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !allowed.host_ok(host) {
        return error(
            421,
            format!(
                "this collector does not answer for host {:?}; open it as http://127.0.0.1:{} (or allow the name with serve --allow-host)",
                host.chars().take(100).collect::<String>(),
                allowed.port
            ),
        );
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin.to_str().is_ok_and(|o| allowed.origin_ok(o, host));
        if !ok {
            return error(
                403,
                "requests from pages of other origins are refused (allow one with serve --allow-origin)",
            );
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Allowed {
        Allowed::new(
            "127.0.0.1:4780".parse().unwrap(),
            &["dev.box".into()],
            &["http://ui.example:3000".into()],
        )
    }

    #[test]
    fn only_names_of_the_bound_address_are_hosts() {
        let a = loopback();
        for ok in [
            "127.0.0.1:4780",
            "localhost:4780",
            "LOCALHOST:4780",
            "[::1]:4780",
            "127.0.0.1",
            "dev.box:4780",
        ] {
            assert!(a.host_ok(ok), "{ok}");
        }
        for bad in [
            "evil.example:4780",
            "127.0.0.1:4781",
            "localhost.evil.example:4780",
            "",
            "127.0.0.1:",
            "127.0.0.2:4780",
            "localhost:4780:4780",
            "\u{1b}[2J",
        ] {
            assert!(!a.host_ok(bad), "{bad:?}");
        }
        let any = Allowed::new("0.0.0.0:4780".parse().unwrap(), &[], &[]);
        assert!(any.host_ok("192.168.1.20:4780"));
        assert!(!any.host_ok("evil.example:4780"));
    }

    #[test]
    fn only_the_own_origin_and_allowed_ones_pass() {
        let a = loopback();
        assert!(a.origin_ok("http://127.0.0.1:4780", "127.0.0.1:4780"));
        assert!(a.origin_ok("http://ui.example:3000/", "127.0.0.1:4780"));
        for bad in [
            "http://evil.example:4780",
            "null",
            "file://",
            "https://127.0.0.1:4780",
            "http://localhost:4780",
        ] {
            assert!(!a.origin_ok(bad, "127.0.0.1:4780"), "{bad}");
        }
    }
}
