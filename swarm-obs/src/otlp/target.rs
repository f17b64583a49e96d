//! Where OTLP goes: protocol, endpoint URLs, headers and timeout, from explicit
//! settings, the standard `OTEL_EXPORTER_OTLP_*` variables, or the `[otlp]` table of
//! `config.toml`, in that order.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{OtlpConfig, OtlpSignalConfig};
use crate::tls::TlsOptions;

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

/// How request bodies travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// As they are.
    #[default]
    None,
    /// gzip (`Content-Encoding: gzip`, or `grpc-encoding: gzip`).
    Gzip,
}

impl Compression {
    fn parse(s: &str) -> Result<Self, OtlpTargetError> {
        match s.trim() {
            "gzip" => Ok(Self::Gzip),
            "none" | "" => Ok(Self::None),
            other => Err(OtlpTargetError(format!(
                "compression {other:?} is not supported; use gzip or none"
            ))),
        }
    }
}

/// Where one signal goes: its URL and the TLS settings for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalTarget {
    /// Full URL (`…/v1/logs` for OTLP/HTTP; `scheme://host:port` for gRPC).
    /// `https://` means TLS.
    pub url: String,
    /// CA file and client certificate; defaults trust the system's roots.
    pub tls: TlsOptions,
}

impl SignalTarget {
    fn plain(url: String) -> Self {
        Self {
            url,
            tls: TlsOptions::default(),
        }
    }
}

/// An OTLP receiver: where each signal goes, the protocol, extra headers, a
/// request timeout, compression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpTarget {
    /// How requests travel.
    pub protocol: OtlpProtocol,
    /// Where logs go; `None`: logs are not exported.
    pub logs: Option<SignalTarget>,
    /// Where metrics go; `None`: metrics are not exported.
    pub metrics: Option<SignalTarget>,
    /// Headers sent with every request (`authorization`, API keys, …).
    pub headers: Vec<(String, String)>,
    /// Time one request may take, name resolution to answer.
    pub timeout: Duration,
    /// Whether request bodies are gzipped.
    pub compression: Compression,
}

/// The OTLP settings are unusable; the message says which and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("OTLP export: {0}")]
pub struct OtlpTargetError(String);

fn check_url(what: &str, url: &str) -> Result<(), OtlpTargetError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(OtlpTargetError(format!(
            "{what} {url:?} is not an http:// or https:// URL (expected something like http://127.0.0.1:4318 or https://otlp.example.com)"
        )));
    }
    if crate::url::authority(url).is_none() {
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

/// One TLS file setting for one signal: the flag's, the signal's variable
/// (`OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE`), the general one
/// (`OTEL_EXPORTER_OTLP_CERTIFICATE`), then the config's `[otlp.logs]` and `[otlp]`.
struct TlsFiles<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
    flags: &'a OtlpConfig,
    config: &'a OtlpConfig,
}

impl TlsFiles<'_> {
    fn options(&self, signal: &str) -> TlsOptions {
        let sig = |c: &'_ OtlpConfig| -> OtlpSignalConfig {
            if signal == "LOGS" {
                c.logs.clone()
            } else {
                c.metrics.clone()
            }
        };
        let (flag_sig, config_sig) = (sig(self.flags), sig(self.config));
        let pick = |suffix: &str,
                    of_sig: fn(&OtlpSignalConfig) -> &Option<PathBuf>,
                    of_all: fn(&OtlpConfig) -> &Option<PathBuf>|
         -> Option<PathBuf> {
            of_sig(&flag_sig)
                .clone()
                .or_else(|| of_all(self.flags).clone())
                .or_else(|| {
                    (self.var)(&format!("OTEL_EXPORTER_OTLP_{signal}_{suffix}")).map(PathBuf::from)
                })
                .or_else(|| (self.var)(&format!("OTEL_EXPORTER_OTLP_{suffix}")).map(PathBuf::from))
                .or_else(|| of_sig(&config_sig).clone())
                .or_else(|| of_all(self.config).clone())
        };
        TlsOptions {
            ca_file: pick("CERTIFICATE", |s| &s.certificate, |c| &c.certificate),
            client_certificate: pick(
                "CLIENT_CERTIFICATE",
                |s| &s.client_certificate,
                |c| &c.client_certificate,
            ),
            client_key: pick("CLIENT_KEY", |s| &s.client_key, |c| &c.client_key),
            insecure: false,
        }
    }
}

impl OtlpTarget {
    /// A target sending both signals under `endpoint` (`http://host:4318` or
    /// `https://…`), trusting the system's roots.
    pub fn new(endpoint: &str) -> Result<Self, OtlpTargetError> {
        check_url("endpoint", endpoint)?;
        Ok(Self {
            protocol: OtlpProtocol::HttpProtobuf,
            logs: Some(SignalTarget::plain(signal_url(endpoint, "logs"))),
            metrics: Some(SignalTarget::plain(signal_url(endpoint, "metrics"))),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            compression: Compression::None,
        })
    }

    /// Every URL this target sends to.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        [&self.logs, &self.metrics]
            .into_iter()
            .flatten()
            .map(|s| s.url.as_str())
    }

    /// Resolves the target: `flags` (command-line options, say) first, then the
    /// `OTEL_EXPORTER_OTLP_*` variables `env` returns, then `config`. `None` when
    /// none of them names an endpoint: export is off.
    ///
    /// Honoured variables: `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`
    /// (used as given), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`
    /// (milliseconds), `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` or
    /// `grpc`; `http/json` is sent as protobuf, which OTLP/HTTP receivers take on
    /// the same URLs), `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip` or `none`), and the
    /// TLS files `OTEL_EXPORTER_OTLP_CERTIFICATE`,
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_KEY`
    /// with their `_LOGS_` and `_METRICS_` variants. With gRPC the endpoint is used
    /// as given for both signals; `https://` means TLS for either protocol.
    ///
    /// ```
    /// use swarm_obs::otlp::OtlpTarget;
    /// let env = |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://otel:4318".to_owned());
    /// let none = Default::default();
    /// let t = OtlpTarget::resolve(&none, &env, &none).unwrap().unwrap();
    /// assert_eq!(t.logs.unwrap().url, "http://otel:4318/v1/logs");
    /// ```
    pub fn resolve(
        flags: &OtlpConfig,
        env: &dyn Fn(&str) -> Option<String>,
        config: &OtlpConfig,
    ) -> Result<Option<Self>, OtlpTargetError> {
        let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let flag_endpoint = flags.endpoint.as_deref();
        let env_base = var("OTEL_EXPORTER_OTLP_ENDPOINT");
        let any_endpoint = flag_endpoint.is_some()
            || env_base.is_some()
            || var("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_some()
            || config.endpoint.is_some()
            || config.logs.endpoint.is_some()
            || config.metrics.endpoint.is_some();
        if !any_endpoint {
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
        let signal = |name: &str, sig: &str, of_config: &OtlpSignalConfig| -> Option<String> {
            if let Some(e) = flag_endpoint {
                return Some(from_base(e, sig));
            }
            var(name)
                .or_else(|| env_base.as_deref().map(|b| from_base(b, sig)))
                .or_else(|| of_config.endpoint.clone())
                .or_else(|| config.endpoint.as_deref().map(|b| from_base(b, sig)))
        };
        let logs = signal("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "logs", &config.logs);
        let metrics = signal(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "metrics",
            &config.metrics,
        );
        // Only a signal with an endpoint of its own (or from the base) is exported.
        for (what, url) in [("logs endpoint", &logs), ("metrics endpoint", &metrics)] {
            if let Some(u) = url {
                check_url(what, u)?;
            }
        }
        let tls = TlsFiles {
            var: &var,
            flags,
            config,
        };
        let logs = logs.map(|url| SignalTarget {
            url,
            tls: tls.options("LOGS"),
        });
        let metrics = metrics.map(|url| SignalTarget {
            url,
            tls: tls.options("METRICS"),
        });
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
        let compression = match flags
            .compression
            .clone()
            .or_else(|| var("OTEL_EXPORTER_OTLP_COMPRESSION"))
            .or_else(|| config.compression.clone())
        {
            Some(c) => Compression::parse(&c)?,
            None => Compression::None,
        };
        Ok(Some(Self {
            protocol,
            logs,
            metrics,
            headers,
            timeout: timeout.max(Duration::from_millis(1)),
            compression,
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
        assert_eq!(t.logs.unwrap().url, "http://from-config:4318/v1/logs");
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://from-env:4318/")]);
        let t = OtlpTarget::resolve(&no_flags, &e, &cfg).unwrap().unwrap();
        assert_eq!(t.metrics.unwrap().url, "http://from-env:4318/v1/metrics");
        let t = OtlpTarget::resolve(&flag("http://flag:1"), &e, &cfg)
            .unwrap()
            .unwrap();
        assert_eq!(t.logs.unwrap().url, "http://flag:1/v1/logs");
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
        assert_eq!(
            t.logs.as_ref().map(|s| s.url.as_str()),
            Some("http://h:4317")
        );
        assert_eq!(
            t.metrics.as_ref().map(|s| s.url.as_str()),
            Some("http://h:4317")
        );
        // A flag wins over the environment.
        let mut flags = flag("http://h:4318");
        flags.protocol = Some("http/protobuf".into());
        let t = OtlpTarget::resolve(&flags, &e, &cfg).unwrap().unwrap();
        assert_eq!(t.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(
            t.logs.as_ref().map(|s| s.url.as_str()),
            Some("http://h:4318/v1/logs")
        );
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
        assert_eq!(
            t.logs.as_ref().map(|s| s.url.as_str()),
            Some("http://h:1/custom/logs")
        );
        assert_eq!(t.metrics, None);
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
        assert_eq!(
            t.logs.as_ref().map(|s| s.url.as_str()),
            Some("http://h:4318/v1/logs")
        );
        let t = OtlpTarget::resolve(&flag("https://h"), &env(&[]), &cfg).unwrap();
        assert_eq!(t.unwrap().logs.unwrap().url, "https://h/v1/logs");
        let gz = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
        ]);
        let err = OtlpTarget::resolve(&cfg, &gz, &cfg).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
        let err = OtlpTarget::resolve(&flag("h:4318"), &env(&[]), &cfg).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        let bad = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ]);
        assert!(OtlpTarget::resolve(&cfg, &bad, &cfg).is_err());
    }

    #[test]
    fn tls_files_and_compression_per_signal() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://h"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/env/ca.pem"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
                "/env/metrics-ca.pem",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ]);
        let cfg: OtlpConfig = toml::from_str(
            r#"
            client_certificate = "/cfg/me.pem"
            client_key = "/cfg/me.key"
            [logs]
            client_key = "/cfg/logs.key"
            "#,
        )
        .unwrap();
        let t = OtlpTarget::resolve(&OtlpConfig::default(), &e, &cfg)
            .unwrap()
            .unwrap();
        assert_eq!(t.compression, Compression::Gzip);
        let logs = t.logs.unwrap().tls;
        let metrics = t.metrics.unwrap().tls;
        assert_eq!(logs.ca_file, Some("/env/ca.pem".into()));
        assert_eq!(metrics.ca_file, Some("/env/metrics-ca.pem".into()));
        assert_eq!(logs.client_key, Some("/cfg/logs.key".into()));
        assert_eq!(metrics.client_key, Some("/cfg/me.key".into()));
        assert_eq!(metrics.client_certificate, Some("/cfg/me.pem".into()));
        // A signal's endpoint from the config alone turns export on for it only.
        let only_metrics: OtlpConfig =
            toml::from_str("[metrics]\nendpoint = \"https://m/v1/metrics\"").unwrap();
        let t = OtlpTarget::resolve(&OtlpConfig::default(), &env(&[]), &only_metrics)
            .unwrap()
            .unwrap();
        assert_eq!(t.logs, None);
        assert_eq!(t.metrics.unwrap().url, "https://m/v1/metrics");
    }
}
