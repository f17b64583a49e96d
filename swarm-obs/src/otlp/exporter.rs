//! Sending to an OTLP/HTTP receiver: one request ([`post`]) classified the way the
//! OTLP spec asks senders to treat answers ([`PostOutcome`]), and [`OtlpSink`], which
//! lets a worker's [`Shipper`](crate::Shipper) send its events straight to a
//! receiver without a collector.

use prost::Message;

use super::logs::logs_request;
use super::{Compression, OtlpTarget, SignalTarget};
use crate::http_client::HttpClient;
use crate::tls::TlsError;
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

/// Gzips `body` (OTLP's one standard compression).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Sends OTLP/HTTP protobuf requests for one signal: its URL, TLS settings,
/// headers, timeout and compression, over the one [`HttpClient`].
///
/// ```no_run
/// use swarm_obs::otlp::{OtlpTarget, SignalSender};
/// let target = OtlpTarget::new("https://otlp.example.com").unwrap();
/// let logs = SignalSender::new(&target, target.logs.as_ref().unwrap()).unwrap();
/// let outcome = logs.send(b"");
/// ```
#[derive(Clone, Debug)]
pub struct SignalSender {
    url: String,
    client: HttpClient,
    headers: Vec<(String, String)>,
    compression: Compression,
}

impl SignalSender {
    /// A sender for `signal` of `target`; fails when its TLS files cannot be used.
    pub fn new(target: &OtlpTarget, signal: &SignalTarget) -> Result<Self, TlsError> {
        let tls = signal.tls.load()?;
        let mut headers = target.headers.clone();
        if target.compression == Compression::Gzip {
            headers.push(("content-encoding".into(), "gzip".into()));
        }
        Ok(Self {
            url: signal.url.clone(),
            client: HttpClient::new(&tls, target.timeout),
            headers,
            compression: target.compression,
        })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts one protobuf `body` (compressed here when the target says so) and
    /// classifies the answer.
    pub fn send(&self, body: &[u8]) -> PostOutcome {
        let zipped;
        let body = match self.compression {
            Compression::Gzip => {
                zipped = gzip(body);
                &zipped[..]
            }
            Compression::None => body,
        };
        match self.client.post(&self.url, &self.headers, PROTOBUF, body) {
            Ok(r) => classify(r.status),
            Err(e) => PostOutcome::Retry(e.to_string()),
        }
    }
}

/// What an OTLP/HTTP status means for the sender.
fn classify(status: u16) -> PostOutcome {
    match status {
        200..=299 => PostOutcome::Accepted,
        429 | 500.. => PostOutcome::Retry(format!("HTTP {status}")),
        s => PostOutcome::Refused(s),
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
    protocol: super::OtlpProtocol,
    logs: Option<SignalSender>,
}

impl OtlpSink {
    /// A sink sending to `target`'s logs URL; fails when its TLS files cannot be
    /// used.
    pub fn new(target: OtlpTarget) -> Result<Self, TlsError> {
        let logs = match &target.logs {
            Some(signal) => Some(SignalSender::new(&target, signal)?),
            None => None,
        };
        Ok(Self {
            protocol: target.protocol,
            logs,
        })
    }
}

impl ShipSink for OtlpSink {
    fn post_ndjson(&self, body: &[u8]) -> Result<(), PostError> {
        let Some(logs) = &self.logs else {
            return Ok(());
        };
        let url = logs.url().to_owned();
        if self.protocol != super::OtlpProtocol::HttpProtobuf {
            return Err(PostError::Unreachable {
                url,
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
        match logs.send(&request) {
            PostOutcome::Accepted => Ok(()),
            PostOutcome::Retry(message) => Err(PostError::Unreachable { url, message }),
            PostOutcome::Refused(status) => Err(PostError::Rejected { url, status }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_otlp_retry_rules() {
        assert_eq!(classify(200), PostOutcome::Accepted);
        assert_eq!(classify(204), PostOutcome::Accepted);
        assert!(matches!(classify(429), PostOutcome::Retry(_)));
        assert!(matches!(classify(503), PostOutcome::Retry(_)));
        assert_eq!(classify(400), PostOutcome::Refused(400));
        assert_eq!(classify(301), PostOutcome::Refused(301));
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = b"a body worth compressing, a body worth compressing".repeat(20);
        let z = gzip(&body);
        assert!(z.len() < body.len() / 4);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn an_absent_receiver_is_retryable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut target = OtlpTarget::new(&format!("http://127.0.0.1:{port}")).unwrap();
        target.timeout = std::time::Duration::from_millis(500);
        let logs = SignalSender::new(&target, target.logs.as_ref().unwrap()).unwrap();
        let out = logs.send(b"");
        assert!(matches!(out, PostOutcome::Retry(_)), "{out:?}");
    }
}
