//! OTLP/gRPC export: unary `Export` calls over one HTTP/2 connection (plain, or
//! TLS with ALPN `h2` for an `https://` endpoint), reopened after a failure. Just
//! the gRPC the exporter needs: a length-prefixed protobuf message out (gzipped
//! when the target says so), `grpc-status` back (in the headers of a
//! trailers-only answer, or in the trailers).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use swarm_obs::otlp::{Compression, OtlpTarget, PostOutcome, SignalTarget, gzip};
use swarm_obs::tls::{describe_tls_failure, rustls_error};
use swarm_obs::url::authority;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

/// The gRPC method logs are exported with.
pub const LOGS_METHOD: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
/// The gRPC method metrics are exported with.
pub const METRICS_METHOD: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// Where one signal's calls go.
struct Endpoint {
    /// `host:port`, also the key of the kept connection.
    host: String,
    /// For `https://`: the TLS settings and the name the certificate must carry.
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl Endpoint {
    fn new(signal: &SignalTarget) -> Result<Self, String> {
        let host = authority(&signal.url)
            .ok_or_else(|| format!("{:?} is not an http:// or https:// URL", signal.url))?;
        let tls = if signal.url.starts_with("https://") {
            let config = signal
                .tls
                .load()
                .and_then(|t| t.rustls_config(&[b"h2"]))
                .map_err(|e| e.to_string())?;
            let name = host
                .rsplit_once(':')
                .map_or(host.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let name = rustls::pki_types::ServerName::try_from(name)
                .map_err(|e| format!("{host} is not a name TLS can check: {e}"))?;
            Some((config, name))
        } else {
            None
        };
        Ok(Self { host, tls })
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// A gRPC client for one exporter thread, with a runtime of its own.
pub(crate) struct GrpcClient {
    runtime: tokio::runtime::Runtime,
    logs: Option<Endpoint>,
    metrics: Option<Endpoint>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    compression: Compression,
    /// The open connection and the `host:port` it goes to.
    conn: Option<(String, SendRequest<Full<Bytes>>)>,
}

/// What a gRPC status code means for the sender, per the OTLP spec: retry the
/// transient ones, give up on the rest (reported as the nearest HTTP status).
fn outcome(code: u32, message: &str) -> PostOutcome {
    match code {
        0 => PostOutcome::Accepted,
        // CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE,
        // UNAVAILABLE, DATA_LOSS.
        1 | 4 | 8 | 10 | 11 | 14 | 15 => {
            PostOutcome::Retry(format!("gRPC status {code}: {message}"))
        }
        16 => PostOutcome::Refused(401),
        7 => PostOutcome::Refused(403),
        5 | 12 => PostOutcome::Refused(404),
        _ => PostOutcome::Refused(400),
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

async fn connect(endpoint: &Endpoint) -> Result<SendRequest<Full<Bytes>>, String> {
    let host = &endpoint.host;
    let tcp = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("cannot connect to {host}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match &endpoint.tls {
        None => handshake(tcp).await,
        Some((config, name)) => {
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| match rustls_error(&e) {
                    Some(r) => describe_tls_failure(r, host),
                    None => format!("TLS with {host} failed: {e}"),
                })?;
            handshake(tls).await
        }
    }
}

/// Which signal a call carries.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Signal {
    Logs,
    Metrics,
}

impl GrpcClient {
    /// A client for `target`'s endpoints; the connection opens on the first call.
    /// Fails when a TLS file cannot be used.
    pub(crate) fn new(target: &OtlpTarget) -> Result<Self, String> {
        let endpoint = |s: &Option<SignalTarget>| s.as_ref().map(Endpoint::new).transpose();
        Ok(Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the gRPC client's runtime: {e}"))?,
            logs: endpoint(&target.logs)?,
            metrics: endpoint(&target.metrics)?,
            headers: target.headers.clone(),
            timeout: target.timeout,
            compression: target.compression,
            conn: None,
        })
    }

    /// Exports the protobuf `message` of `signal`.
    pub(crate) fn export(&mut self, signal: Signal, message: &[u8]) -> PostOutcome {
        let (endpoint, method) = match signal {
            Signal::Logs => (&self.logs, LOGS_METHOD),
            Signal::Metrics => (&self.metrics, METRICS_METHOD),
        };
        let Some(endpoint) = endpoint else {
            return PostOutcome::Accepted;
        };
        let timeout = self.timeout;
        let zipped;
        let (flag, message) = match self.compression {
            Compression::Gzip => {
                zipped = gzip(message);
                (1u8, &zipped[..])
            }
            Compression::None => (0u8, message),
        };
        let Ok(len) = u32::try_from(message.len()) else {
            return PostOutcome::Refused(413);
        };
        // One message: the compressed flag, then its length, big-endian.
        let mut framed = Vec::with_capacity(5 + message.len());
        framed.push(flag);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(message);
        let mut request =
            hyper::Request::post(format!("{}://{}{method}", endpoint.scheme(), endpoint.host))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("grpc-timeout", format!("{}m", timeout.as_millis().max(1)));
        if flag == 1 {
            request = request.header("grpc-encoding", "gzip");
        }
        for (k, v) in &self.headers {
            // gRPC metadata names are lowercase.
            request = request.header(k.to_ascii_lowercase(), v);
        }
        let request = match request.body(Full::new(Bytes::from(framed))) {
            Ok(r) => r,
            Err(e) => return PostOutcome::Retry(format!("cannot build the request: {e}")),
        };
        let reuse = self.conn.take().filter(|(h, _)| *h == endpoint.host);
        let call = async {
            let mut send = match reuse {
                Some((_, s)) => s,
                None => connect(endpoint).await?,
            };
            send.ready().await.map_err(|e| e.to_string())?;
            let resp = send
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let in_headers = resp.headers().get("grpc-status").cloned();
            let in_message = resp.headers().get("grpc-message").cloned();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            let trailers = body.trailers();
            let code = in_headers
                .or_else(|| trailers.and_then(|t| t.get("grpc-status").cloned()))
                .and_then(|v| v.to_str().ok()?.trim().parse::<u32>().ok());
            let message = in_message
                .or_else(|| trailers.and_then(|t| t.get("grpc-message").cloned()))
                .and_then(|v| v.to_str().ok().map(str::to_owned))
                .unwrap_or_default();
            Ok::<_, String>((send, status, code, message))
        };
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, call).await });
        match result {
            Err(_) => PostOutcome::Retry(format!(
                "no answer from {} within {timeout:?}",
                endpoint.host
            )),
            Ok(Err(e)) => PostOutcome::Retry(e),
            Ok(Ok((send, status, code, message))) => {
                self.conn = Some((endpoint.host.clone(), send));
                match code {
                    Some(code) => outcome(code, &message),
                    // No gRPC status: not a gRPC server, or a proxy answered.
                    None if status.is_server_error() || status.as_u16() == 429 => {
                        PostOutcome::Retry(format!("HTTP {status}"))
                    }
                    None => PostOutcome::Refused(status.as_u16()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_otlp_retry_rules() {
        assert_eq!(outcome(0, ""), PostOutcome::Accepted);
        assert!(matches!(outcome(14, "down"), PostOutcome::Retry(m) if m.contains("down")));
        assert!(matches!(outcome(8, ""), PostOutcome::Retry(_)));
        assert_eq!(outcome(3, ""), PostOutcome::Refused(400));
        assert_eq!(outcome(16, ""), PostOutcome::Refused(401));
        assert_eq!(outcome(12, ""), PostOutcome::Refused(404));
    }

    #[test]
    fn nobody_listening_is_retryable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut target = OtlpTarget::new(&format!("http://127.0.0.1:{port}")).unwrap();
        target.protocol = swarm_obs::otlp::OtlpProtocol::Grpc;
        for s in [&mut target.logs, &mut target.metrics]
            .into_iter()
            .flatten()
        {
            s.url = format!("http://127.0.0.1:{port}");
        }
        target.timeout = Duration::from_secs(5);
        let mut c = GrpcClient::new(&target).unwrap();
        let out = c.export(Signal::Logs, b"");
        assert!(matches!(out, PostOutcome::Retry(_)), "{out:?}");
    }
}
