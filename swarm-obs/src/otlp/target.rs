//! Where OTLP goes: protocol, endpoint URLs, headers and timeout, from explicit
//! settings, the standard `OTEL_EXPORTER_OTLP_*` variables, or the `[otlp]` table of
//! `config.toml`, in that order.

use std::time::Duration;

use crate::config::OtlpConfig;

/// Default request timeout (the OpenTelemetry SDKs' default too).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How OTLP travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`, usually port 4318).
    #[default]
    HttpProtobuf,
    /// OTLP/gRPC (`grpc`, usually port 4317); the collector's exporter speaks it,
    /// a worker's [`OtlpSink`](super::OtlpSink) does not.
    Grpc,
}

impl OtlpProtocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpProtobuf => "http/protobuf",
            Self::Grpc => "grpc",
        }
    }

    fn parse(s: &str) -> Result<Self, OtlpTargetError> {
        match s.trim() {
            // OTLP/HTTP receivers take protobuf and JSON bodies on the same URLs, so
            // a setting made for a JSON sender (Claude Code, say) still works.
            "http/protobuf" | "http/json" => Ok(Self::HttpProtobuf),
            "grpc" => Ok(Self::Grpc),
            other => Err(OtlpTargetError(format!(
                "protocol {other:?} is not supported; use http/protobuf (OTLP/HTTP, usually port 4318) or grpc (usually port 4317)"
            ))),
        }
    }
}

/// An OTLP receiver: one URL per signal, the protocol, extra headers, a request
/// timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpTarget {
    /// How requests travel.
    pub protocol: OtlpProtocol,
    /// Full URL logs are posted to (`…/v1/logs`); `None`: logs are not exported.
    pub logs_url: Option<String>,
    /// Full URL metrics are posted to (`…/v1/metrics`); `None`: metrics are not
    /// exported.
    pub metrics_url: Option<String>,
    /// Headers sent with every request (`authorization`, API keys, …).
    pub headers: Vec<(String, String)>,
    /// Time one request may take, connect to response.
    pub timeout: Duration,
}

/// The OTLP settings are unusable; the message says which and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("OTLP export: {0}")]
pub struct OtlpTargetError(String);

fn check_url(what: &str, url: &str) -> Result<(), OtlpTargetError> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(OtlpTargetError(format!(
            "{what} {url:?} uses https, which this build does not speak; send to a local OpenTelemetry Collector over http:// and let it forward with TLS"
        )));
    } else {
        return Err(OtlpTargetError(format!(
            "{what} {url:?} is not an http:// URL (expected something like http://127.0.0.1:4318)"
        )));
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(OtlpTargetError(format!("{what} {url:?} names no host")));
    }
    Ok(())
}

/// `base` + `/v1/<signal>`, as the OpenTelemetry spec builds signal URLs from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn signal_url(base: &str, signal: &str) -> String {
    format!("{}/v1/{signal}", base.trim_end_matches('/'))
}

/// `k1=v1,k2=v2` with percent-encoded values, as in `OTEL_EXPORTER_OTLP_HEADERS`.
fn parse_headers(s: &str) -> Result<Vec<(String, String)>, OtlpTargetError> {
    s.split(',')
        .map(str::trim)
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                OtlpTargetError(format!(
                    "header {kv:?} in OTEL_EXPORTER_OTLP_HEADERS is not key=value"
                ))
            })?;
            Ok((k.trim().to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl OtlpTarget {
    /// A target sending both signals under `endpoint` (`http://host:4318`).
    pub fn new(endpoint: &str) -> Result<Self, OtlpTargetError> {
        check_url("endpoint", endpoint)?;
        Ok(Self {
            protocol: OtlpProtocol::HttpProtobuf,
            logs_url: Some(signal_url(endpoint, "logs")),
            metrics_url: Some(signal_url(endpoint, "metrics")),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Resolves the target: `flags` (command-line options, say) first, then the
    /// `OTEL_EXPORTER_OTLP_*` variables `env` returns, then `config`. `None` when
    /// none of them names an endpoint: export is off.
    ///
    /// Honoured variables: `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`
    /// (used as given), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`
    /// (milliseconds) and `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` or
    /// `grpc`; `http/json` is sent as protobuf, which OTLP/HTTP receivers take on
    /// the same URLs). With gRPC the endpoint is used as given for both signals.
    ///
    /// ```
    /// use swarm_obs::otlp::OtlpTarget;
    /// let env = |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://otel:4318".to_owned());
    /// let none = Default::default();
    /// let t = OtlpTarget::resolve(&none, &env, &none).unwrap().unwrap();
    /// assert_eq!(t.logs_url.as_deref(), Some("http://otel:4318/v1/logs"));
    /// ```
    pub fn resolve(
        flags: &OtlpConfig,
        env: &dyn Fn(&str) -> Option<String>,
        config: &OtlpConfig,
    ) -> Result<Option<Self>, OtlpTargetError> {
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let endpoint = flags.endpoint.as_deref();
        let base = endpoint
            .map(str::to_owned)
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .or_else(|| config.endpoint.clone());
        let any_signal = [
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        ]
        .iter()
        .any(|k| var(k).is_some());
        if base.is_none() && !any_signal {
            // Export is off; other OTLP settings (made for another program) do not matter.
            return Ok(None);
        }
        let protocol = match flags
            .protocol
            .clone()
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .or_else(|| config.protocol.clone())
        {
            Some(p) => OtlpProtocol::parse(&p)?,
            None => OtlpProtocol::default(),
        };
        // OTLP/HTTP appends the signal path to the base; gRPC has fixed service paths.
        let from_base = |b: &str, sig: &str| match protocol {
            OtlpProtocol::HttpProtobuf => signal_url(b, sig),
            OtlpProtocol::Grpc => b.to_owned(),
        };
        let signal = |name: &str, sig: &str| -> Option<String> {
            if let Some(e) = endpoint {
                return Some(from_base(e, sig));
            }
            var(name).or_else(|| base.as_deref().map(|b| from_base(b, sig)))
        };
        let logs = signal("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "logs");
        let metrics = signal("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "metrics");
        if logs.is_none() && metrics.is_none() {
            return Ok(None);
        }
        // Only a signal with an endpoint of its own (or from the base) is exported.
        for (what, url) in [("logs endpoint", &logs), ("metrics endpoint", &metrics)] {
            if let Some(u) = url {
                check_url(what, u)?;
            }
        }
        let mut headers: Vec<(String, String)> = config
            .headers
            .iter()
            .chain(&flags.headers)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(h) = var("OTEL_EXPORTER_OTLP_HEADERS") {
            headers.extend(parse_headers(&h)?);
        }
        let timeout = match flags
            .timeout_ms
            .map(|t| t.to_string())
            .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        {
            Some(t) => Duration::from_millis(t.trim().parse().map_err(|_| {
                OtlpTargetError(format!(
                    "OTEL_EXPORTER_OTLP_TIMEOUT {t:?} is not a number of milliseconds"
                ))
            })?),
            None => config
                .timeout_ms
                .map_or(DEFAULT_TIMEOUT, Duration::from_millis),
        };
        Ok(Some(Self {
            protocol,
            logs_url: logs,
            metrics_url: metrics,
            headers,
            timeout: timeout.max(Duration::from_millis(1)),
        }))
    }

    /// Like [`resolve`](Self::resolve), reading the process environment.
    pub fn from_env(
        flags: &OtlpConfig,
        config: &OtlpConfig,
    ) -> Result<Option<Self>, OtlpTargetError> {
        Self::resolve(flags, &|k| std::env::var(k).ok(), config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn precedence_flag_env_config() {
        let cfg = OtlpConfig {
            endpoint: Some("http://from-config:4318".into()),
            ..OtlpConfig::default()
        };
        let none = env(&[]);
        let no_flags = OtlpConfig::default();
        let t = OtlpTarget::resolve(&no_flags, &none, &cfg)
            .unwrap()
            .unwrap();
        assert_eq!(t.logs_url.unwrap(), "http://from-config:4318/v1/logs");
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://from-env:4318/")]);
        let t = OtlpTarget::resolve(&no_flags, &e, &cfg).unwrap().unwrap();
        assert_eq!(t.metrics_url.unwrap(), "http://from-env:4318/v1/metrics");
        let t = OtlpTarget::resolve(&flag("http://flag:1"), &e, &cfg)
            .unwrap()
            .unwrap();
        assert_eq!(t.logs_url.unwrap(), "http://flag:1/v1/logs");
        assert_eq!(
            OtlpTarget::resolve(&no_flags, &none, &OtlpConfig::default()).unwrap(),
            None
        );
    }

    fn flag(endpoint: &str) -> OtlpConfig {
        OtlpConfig {
            endpoint: Some(endpoint.into()),
            ..OtlpConfig::default()
        }
    }

    #[test]
    fn grpc_uses_the_endpoint_as_given() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"),
        ]);
        let cfg = OtlpConfig::default();
        let t = OtlpTarget::resolve(&cfg, &e, &cfg).unwrap().unwrap();
        assert_eq!(t.protocol, OtlpProtocol::Grpc);
        assert_eq!(t.logs_url.as_deref(), Some("http://h:4317"));
        assert_eq!(t.metrics_url.as_deref(), Some("http://h:4317"));
        // A flag wins over the environment.
        let mut flags = flag("http://h:4318");
        flags.protocol = Some("http/protobuf".into());
        let t = OtlpTarget::resolve(&flags, &e, &cfg).unwrap().unwrap();
        assert_eq!(t.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(t.logs_url.as_deref(), Some("http://h:4318/v1/logs"));
    }

    #[test]
    fn signal_endpoints_headers_timeout() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://h:1/custom/logs"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, x=y"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]);
        let cfg = OtlpConfig::default();
        let t = OtlpTarget::resolve(&cfg, &e, &cfg).unwrap().unwrap();
        assert_eq!(t.logs_url.as_deref(), Some("http://h:1/custom/logs"));
        assert_eq!(t.metrics_url, None);
        assert_eq!(
            t.headers,
            [("api-key".into(), "a b".into()), ("x".into(), "y".into())]
        );
        assert_eq!(t.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_settings_say_what_to_do() {
        let cfg = OtlpConfig::default();
        let odd = env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
        ]);
        let err = OtlpTarget::resolve(&cfg, &odd, &cfg).unwrap_err();
        assert!(err.to_string().contains("http/protobuf"), "{err}");
        // Without an endpoint, a protocol set for another program is no error.
        let only_protocol = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")]);
        assert_eq!(OtlpTarget::resolve(&cfg, &only_protocol, &cfg), Ok(None));
        // http/json (Claude Code's choice) is sent as protobuf to the same URLs.
        let json = env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
        ]);
        let t = OtlpTarget::resolve(&cfg, &json, &cfg).unwrap().unwrap();
        assert_eq!(t.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(t.logs_url.as_deref(), Some("http://h:4318/v1/logs"));
        let err = OtlpTarget::resolve(&flag("https://h"), &env(&[]), &cfg).unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        let err = OtlpTarget::resolve(&flag("h:4318"), &env(&[]), &cfg).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        let bad = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ]);
        assert!(OtlpTarget::resolve(&cfg, &bad, &cfg).is_err());
    }
}
