//! OTLP/gRPC export: unary `Export` calls over one HTTP/2 connection, reopened
//! after a failure. Just the gRPC the exporter needs: a length-prefixed protobuf
//! message out, `grpc-status` back (in the headers of a trailers-only answer, or
//! in the trailers).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use swarm_obs::otlp::{PostOutcome, split_url};

/// The gRPC method logs are exported with.
pub const LOGS_METHOD: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
/// The gRPC method metrics are exported with.
pub const METRICS_METHOD: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// A gRPC client for one exporter thread, with a runtime of its own.
pub(crate) struct GrpcClient {
    runtime: tokio::runtime::Runtime,
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

async fn connect(host: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

impl GrpcClient {
    /// A client; the connection opens on the first call.
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            conn: None,
        })
    }

    /// Calls `method` on the receiver at `url` with the protobuf `message`.
    pub(crate) fn export(
        &mut self,
        url: &str,
        method: &str,
        headers: &[(String, String)],
        message: &[u8],
        timeout: Duration,
    ) -> PostOutcome {
        let Some((host, _)) = split_url(url) else {
            return PostOutcome::Refused(400);
        };
        let Ok(len) = u32::try_from(message.len()) else {
            return PostOutcome::Refused(413);
        };
        // One uncompressed message: flag byte 0, then its length, big-endian.
        let mut framed = Vec::with_capacity(5 + message.len());
        framed.push(0);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(message);
        let mut request = hyper::Request::post(format!("http://{host}{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", format!("{}m", timeout.as_millis().max(1)));
        for (k, v) in headers {
            // gRPC metadata names are lowercase.
            request = request.header(k.to_ascii_lowercase(), v);
        }
        let request = match request.body(Full::new(Bytes::from(framed))) {
            Ok(r) => r,
            Err(e) => return PostOutcome::Retry(format!("cannot build the request: {e}")),
        };
        let reuse = self.conn.take().filter(|(h, _)| *h == host);
        let call = async {
            let mut send = match reuse {
                Some((_, s)) => s,
                None => connect(&host).await?,
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
            Err(_) => PostOutcome::Retry(format!("no answer within {timeout:?}")),
            Ok(Err(e)) => PostOutcome::Retry(e),
            Ok(Ok((send, status, code, message))) => {
                self.conn = Some((host, send));
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
        let mut c = GrpcClient::new().unwrap();
        let out = c.export(
            &format!("http://127.0.0.1:{port}"),
            LOGS_METHOD,
            &[],
            b"",
            Duration::from_secs(5),
        );
        assert!(matches!(out, PostOutcome::Retry(_)), "{out:?}");
    }
}
