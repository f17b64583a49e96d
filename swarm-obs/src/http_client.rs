//! The one HTTP(S) client for outbound calls that are not the hook's hot path:
//! OTLP export over HTTP, HTTP(S) health probes. ureq with rustls underneath; one
//! time budget covers name resolution, connect, TLS, request and answer; errors
//! name the host and, for TLS, what failed. Feature `http-client`.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_obs::http_client::HttpClient;
//! use swarm_obs::tls::TlsOptions;
//! let client = HttpClient::new(&TlsOptions::default().load()?, Duration::from_secs(5));
//! let answer = client.get("https://example.com/health", &[])?;
//! println!("HTTP {}", answer.status);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! (The hook keeps its own few-line client in `http_post`: it pipelines two
//! requests on one loopback connection and can leave without the answer, which
//! is what keeps a hook as cheap as `cat`.)

use std::time::Duration;

use crate::tls::{LoadedTls, describe_tls_failure, rustls_error};
use crate::url::authority;

/// Largest answer body kept; OTLP and health answers are small.
const MAX_BODY: u64 = 64 << 10;

/// A client with its TLS settings and time budget. Cheap to clone; connections
/// are pooled per host.
#[derive(Clone, Debug)]
pub struct HttpClient {
    agent: ureq::Agent,
    timeout: Duration,
}

/// An answer: its status and (the first 64 KiB of) its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body, cut at 64 KiB.
    pub body: Vec<u8>,
}

/// A request got no answer. The message names the host and what failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an `http://` or `https://` URL with a host.
    #[error("{url:?} is not an http:// or https:// URL with a host")]
    BadUrl {
        /// The URL given.
        url: String,
    },
    /// The TLS handshake failed: unknown CA, wrong name, expired, refused.
    #[error("{0}")]
    Tls(String),
    /// No answer within the time budget.
    #[error("no answer from {host} within {timeout:?}")]
    Timeout {
        /// `host:port`.
        host: String,
        /// The budget.
        timeout: Duration,
    },
    /// Anything else: resolution, connection, a malformed answer.
    #[error("{host}: {message}")]
    Transport {
        /// `host:port`.
        host: String,
        /// What failed.
        message: String,
    },
}

impl HttpClient {
    /// A client trusting and showing what `tls` says, each request bounded by
    /// `timeout` from name resolution to the end of the answer. Redirects are not
    /// followed: an OTLP receiver or a health endpoint that redirects is
    /// misconfigured, and its status says so.
    pub fn new(tls: &LoadedTls, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .tls_config(tls.ureq_config())
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("swarm-obs/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.new_agent(),
            timeout,
        }
    }

    /// POSTs `body` as `content_type` with extra `headers`.
    pub fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        content_type: &str,
        body: &[u8],
    ) -> Result<Response, HttpError> {
        let host = authority(url).ok_or_else(|| HttpError::BadUrl { url: url.into() })?;
        let mut request = self.agent.post(url).header("content-type", content_type);
        for (k, v) in headers {
            request = request.header(k.as_str(), v.as_str());
        }
        self.finish(&host, request.send(body))
    }

    /// GETs `url` with extra `headers`.
    pub fn get(&self, url: &str, headers: &[(String, String)]) -> Result<Response, HttpError> {
        let host = authority(url).ok_or_else(|| HttpError::BadUrl { url: url.into() })?;
        let mut request = self.agent.get(url);
        for (k, v) in headers {
            request = request.header(k.as_str(), v.as_str());
        }
        self.finish(&host, request.call())
    }

    fn finish(
        &self,
        host: &str,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response, HttpError> {
        let mut answer = answer.map_err(|e| self.error(host, e))?;
        let status = answer.status().as_u16();
        // A body cut short or over the cap does not change what the status says.
        let body = answer
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .unwrap_or_default();
        Ok(Response { status, body })
    }

    fn error(&self, host: &str, e: ureq::Error) -> HttpError {
        let tls = match &e {
            ureq::Error::Rustls(r) => Some(r),
            ureq::Error::Io(io) => rustls_error(io),
            other => rustls_error(other),
        };
        if let Some(tls) = tls {
            return HttpError::Tls(describe_tls_failure(tls, host));
        }
        match e {
            ureq::Error::Timeout(_) => HttpError::Timeout {
                host: host.into(),
                timeout: self.timeout,
            },
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                HttpError::Timeout {
                    host: host.into(),
                    timeout: self.timeout,
                }
            }
            ureq::Error::Io(io) => HttpError::Transport {
                host: host.into(),
                message: io.to_string(),
            },
            ureq::Error::HostNotFound => HttpError::Transport {
                host: host.into(),
                message: "the name does not resolve".into(),
            },
            ureq::Error::Protocol(p) => HttpError::Transport {
                host: host.into(),
                message: format!("not an HTTP answer ({p})"),
            },
            ureq::Error::LargeResponseHeader(..) => HttpError::Transport {
                host: host.into(),
                message: "not an HTTP answer (its head is too large)".into(),
            },
            ureq::Error::ConnectionFailed => HttpError::Transport {
                host: host.into(),
                message: "cannot connect".into(),
            },
            other => HttpError::Transport {
                host: host.into(),
                message: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::tls::TlsOptions;

    fn client(ms: u64) -> HttpClient {
        HttpClient::new(
            &TlsOptions::default().load().unwrap(),
            Duration::from_millis(ms),
        )
    }

    /// A server that answers each connection once with `answer`.
    fn answering(answer: &'static [u8]) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().take(4) {
                let Ok(mut c) = c else { continue };
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let _ = c.write_all(answer);
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn statuses_and_chunked_bodies_come_back() {
        let url = answering(
            b"HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n4\r\nbusy\r\n0\r\n\r\n",
        );
        let r = client(2000).post(&url, &[], "text/plain", b"x").unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.body, b"busy");
    }

    #[test]
    fn silence_is_a_timeout_and_absence_a_transport_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let e = client(200).get(&url, &[]).unwrap_err();
        assert!(matches!(e, HttpError::Timeout { .. }), "{e:?}");
        drop(l);
        let e = client(2000).get(&url, &[]).unwrap_err();
        assert!(matches!(e, HttpError::Transport { .. }), "{e:?}");
        let e = client(2000).get("ftp://h/", &[]).unwrap_err();
        assert!(matches!(e, HttpError::BadUrl { .. }), "{e:?}");
    }

    #[test]
    fn tls_to_a_plain_server_is_explained() {
        let url =
            answering(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").replace("http:", "https:");
        let e = client(2000).get(&url, &[]).unwrap_err().to_string();
        assert!(e.contains("TLS with 127.0.0.1"), "{e}");
    }
}
