//! Sending to an OTLP/HTTP receiver: one request ([`post`]) classified the way the
//! OTLP spec asks senders to treat answers ([`PostOutcome`]), and [`OtlpSink`], which
//! lets a worker's [`Shipper`](crate::Shipper) send its events straight to a
//! receiver without a collector.

use std::time::Duration;

use prost::Message;

use super::OtlpTarget;
use super::logs::logs_request;
use crate::{Event, PostError, ShipSink};

/// Content type of OTLP/HTTP protobuf bodies.
pub const PROTOBUF: &str = "application/x-protobuf";

/// What an OTLP receiver made of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// 2xx: the data is the receiver's now.
    Accepted,
    /// Worth retrying later: no connection, a timeout, 429, 502, 503 or 504 (the
    /// retryable statuses of the OTLP spec) or another 5xx.
    Retry(String),
    /// Any other 4xx: the receiver will never take this body; do not retry it.
    Refused(u16),
}

/// Splits `http://host:port/path` into `host:port` (port 80 when absent) and
/// `/path`; `None` for anything but a plain `http://` URL with a host.
pub fn split_url(url: &str) -> Option<(String, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return None;
    }
    // `[::1]:4318` and `h:4318` carry a port; `h` and `[::1]` do not.
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.ends_with(':') && !p.contains(']'));
    let host = if has_port {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    Some((host, path))
}

/// Posts one OTLP/HTTP protobuf body to `url` within `timeout`.
pub fn post(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> PostOutcome {
    let Some((host, path)) = split_url(url) else {
        return PostOutcome::Refused(400);
    };
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match crate::http_post::send(&host, "POST", path, PROTOBUF, &headers, body, timeout) {
        Ok(s) if (200..300).contains(&s) => PostOutcome::Accepted,
        Ok(s) if s == 429 || s >= 500 => PostOutcome::Retry(format!("HTTP {s}")),
        Ok(s) => PostOutcome::Refused(s),
        Err(e) => PostOutcome::Retry(e.to_string()),
    }
}

/// A [`ShipSink`] that sends a worker's events to an OTLP receiver as log records,
/// so a worker can export without a collector.
///
/// Like posting to the collector, this is best effort: a batch the receiver does
/// not take is dropped and counted in the shipper's stats, while the event log on
/// disk keeps every event. For at-least-once delivery, run `swarm-obs serve
/// --otlp-endpoint` instead, which exports from a persisted cursor.
///
/// ```no_run
/// use swarm_obs::otlp::{OtlpSink, OtlpTarget};
/// let target = OtlpTarget::new("http://127.0.0.1:4318").unwrap();
/// let _guard = swarm_obs::init("backend").otlp(target).install().unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OtlpSink {
    target: OtlpTarget,
}

impl OtlpSink {
    /// A sink sending to `target`'s logs URL.
    pub fn new(target: OtlpTarget) -> Self {
        Self { target }
    }
}

impl ShipSink for OtlpSink {
    fn post_ndjson(&self, body: &[u8]) -> Result<(), PostError> {
        let Some(url) = &self.target.logs_url else {
            return Ok(());
        };
        if self.target.protocol != super::OtlpProtocol::HttpProtobuf {
            return Err(PostError::Unreachable {
                url: url.clone(),
                message: "a worker exports over http/protobuf only; use port 4318 or run the collector for gRPC".into(),
            });
        }
        // The lines were written by this process, so each one parses; one that does
        // not (a newer schema) is left out rather than failing the batch.
        let events: Vec<Event> = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| std::str::from_utf8(l).ok())
            .filter_map(|l| Event::from_json(l).ok())
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        let request = logs_request(&events).encode_to_vec();
        match post(url, &self.target.headers, &request, self.target.timeout) {
            PostOutcome::Accepted => Ok(()),
            PostOutcome::Retry(message) => Err(PostError::Unreachable {
                url: url.clone(),
                message,
            }),
            PostOutcome::Refused(status) => Err(PostError::Rejected {
                url: url.clone(),
                status,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            split_url("http://h:4318/v1/logs"),
            Some(("h:4318".into(), "/v1/logs"))
        );
        assert_eq!(
            split_url("http://h/v1/logs"),
            Some(("h:80".into(), "/v1/logs"))
        );
        assert_eq!(
            split_url("http://[::1]:1/x"),
            Some(("[::1]:1".into(), "/x"))
        );
        assert_eq!(split_url("http://[::1]/x"), Some(("[::1]:80".into(), "/x")));
        assert_eq!(split_url("http://h:1"), Some(("h:1".into(), "/")));
        assert_eq!(split_url("https://h:1"), None);
        assert_eq!(split_url("http:///x"), None);
    }

    #[test]
    fn an_absent_receiver_is_retryable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = post(
            &format!("http://127.0.0.1:{port}/v1/logs"),
            &[],
            b"",
            Duration::from_millis(500),
        );
        assert!(matches!(out, PostOutcome::Retry(_)), "{out:?}");
    }
}
