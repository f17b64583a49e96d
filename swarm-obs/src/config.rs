//! `config.toml`: optional settings shared by every part of swarm-obs.
//!
//! ```toml
//! [collector]
//! address = "127.0.0.1:4780"   # where hooks and workers post events
//! token = "…"                  # sent as a bearer token when set
//!
//! [redaction]
//! max_string_bytes = 4096
//! max_payload_bytes = 65536
//! secret_keys = ["pin"]
//! token_prefixes = ["glpat-"]
//!
//! [hook]
//! stdin_timeout_ms = 1000
//! post_budget_ms = 50
//!
//! [[probe]]                    # health probes the collector runs; see ProbeConfig
//! name = "api"
//! http = "http://127.0.0.1:8080/health"
//! [otlp]                       # `swarm-obs serve` exports here (OTEL_EXPORTER_OTLP_* win)
//! endpoint = "http://otel-collector:4318"
//! headers = { "x-api-key" = "…" }
//! timeout_ms = 10000
//!
//! [transcripts]                # more directories a session's conversation may be read from
//! roots = ["~/claude-work"]    # (besides $CLAUDE_CONFIG_DIR, else ~/.claude)
//! ```
//!
//! Unknown keys are errors, so a typo is reported with its line instead of being
//! silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::RedactConfig;

/// The whole configuration file. Every table and key is optional.
///
/// ```
/// let cfg = swarm_obs::Config::parse("[hook]\npost_budget_ms = 20\n").unwrap();
/// assert_eq!(cfg.hook.post_budget_ms, 20);
/// assert_eq!(cfg.hook.stdin_timeout_ms, 1000);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the collector is.
    pub collector: CollectorConfig,
    /// Redaction patterns and size caps.
    pub redaction: RedactConfig,
    /// The Claude Code hook's time budgets.
    pub hook: HookConfig,
    /// Desktop notifications and sound rules.
    pub notify: crate::notify::NotifyConfig,
    /// Health probes the collector runs (`[[probe]]` tables).
    #[serde(rename = "probe")]
    pub probes: Vec<crate::ProbeConfig>,
    /// OpenTelemetry export.
    pub otlp: OtlpConfig,
    /// Where the collector may read Claude Code transcripts.
    pub transcripts: TranscriptsConfig,
}

/// The `[transcripts]` table: directories besides Claude Code's configuration
/// directory (`$CLAUDE_CONFIG_DIR`, else `~/.claude`) whose transcripts the
/// collector may read to show a session's conversation.
///
/// ```
/// let cfg = swarm_obs::Config::parse("[transcripts]\nroots = [\"~/claude-b\"]\n").unwrap();
/// assert_eq!(cfg.transcripts.roots, [std::path::PathBuf::from("~/claude-b")]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscriptsConfig {
    /// Absolute directories, or `~/…` for the home directory.
    pub roots: Vec<PathBuf>,
}

/// The `[otlp]` table: where the collector (or a worker built with the `otlp`
/// feature) exports events and metrics over OTLP, plain or over TLS. The standard
/// `OTEL_EXPORTER_OTLP_*` variables take precedence over it.
///
/// ```toml
/// [otlp]
/// endpoint = "https://otlp.example.com"     # /v1/logs, /v1/metrics appended
/// headers = { authorization = "Bearer …" }
/// certificate = "/etc/otel/ca.pem"          # trust this CA, not the system's
/// client_certificate = "/etc/otel/me.pem"   # mutual TLS
/// client_key = "/etc/otel/me.key"
/// compression = "gzip"
///
/// [otlp.metrics]                            # per signal, over the above
/// endpoint = "https://metrics.example.com/v1/metrics"
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Base URL of an OTLP/HTTP receiver (`http://host:4318`); `/v1/logs` and
    /// `/v1/metrics` are appended.
    pub endpoint: Option<String>,
    /// Headers sent with every export request.
    pub headers: std::collections::BTreeMap<String, String>,
    /// Time one export request may take, in milliseconds (default 10 000).
    #[serde(deserialize_with = "crate::duration::millis_opt")]
    pub timeout_ms: Option<u64>,
    /// `http/protobuf` (the default) or `grpc`.
    pub protocol: Option<String>,
    /// PEM file of the CA(s) to trust instead of the system's roots.
    pub certificate: Option<PathBuf>,
    /// PEM file of a client certificate, for mutual TLS.
    pub client_certificate: Option<PathBuf>,
    /// PEM file of the client certificate's key.
    pub client_key: Option<PathBuf>,
    /// `gzip` to compress requests, `none` (the default) not to.
    pub compression: Option<String>,
    /// Settings for logs only, over the ones above.
    pub logs: OtlpSignalConfig,
    /// Settings for metrics only, over the ones above.
    pub metrics: OtlpSignalConfig,
}

/// `[otlp.logs]` or `[otlp.metrics]`: one signal's own endpoint and TLS files,
/// like `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` and its kin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpSignalConfig {
    /// Full URL of this signal (used as given, nothing appended).
    pub endpoint: Option<String>,
    /// PEM file of the CA(s) to trust for this signal.
    pub certificate: Option<PathBuf>,
    /// PEM file of this signal's client certificate.
    pub client_certificate: Option<PathBuf>,
    /// PEM file of its key.
    pub client_key: Option<PathBuf>,
}

/// The `[collector]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// `host:port` or `http://host:port` of the collector, used when neither
    /// `SWARM_OBS_COLLECTOR` nor `collector.json` says otherwise.
    pub address: Option<String>,
    /// Bearer token for a collector that requires one.
    pub token: Option<String>,
}

/// The `[hook]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookConfig {
    /// How long the hook waits with no input arriving before recording an error.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub stdin_timeout_ms: u64,
    /// Total time the hook may spend posting to the collector.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub post_budget_ms: u64,
}

impl Default for HookConfig {
    fn default() -> Self {
        Self {
            stdin_timeout_ms: 1000,
            post_budget_ms: 50,
        }
    }
}

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading the file failed.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a wrong key or value.
    #[error("invalid config file {path}, line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, 0 when unknown.
        line: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// The file, or the directory it is in, could have been written by another user.
    #[error(transparent)]
    Untrusted(#[from] crate::TrustError),
}

impl Config {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_at(text, Path::new("config.toml"))
    }

    fn parse_at(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let error = |line: usize, message: String| ConfigError::Parse {
            path: path.to_owned(),
            line,
            message,
        };
        let config: Self = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            error(line, e.message().trim().to_owned())
        })?;
        config.notify.validate().map_err(|message| {
            // Point at the line holding the offending key: the last dotted part of
            // the first `quoted` name in the message.
            let key = message.split('`').nth(1).unwrap_or("");
            let needle = key.split([' ', '=']).next().unwrap_or("");
            let needle = needle.rsplit('.').next().unwrap_or("");
            let line = text
                .lines()
                .position(|l| !needle.is_empty() && l.contains(needle))
                .map_or(0, |i| i + 1);
            error(line, message)
        })?;
        let mut names = std::collections::HashSet::new();
        for (i, probe) in config.probes.iter().enumerate() {
            let line = nth_probe_line(text, i);
            let spec = probe
                .spec()
                .map_err(|message| error(line, format!("[[probe]] #{}: {message}", i + 1)))?;
            if !names.insert(spec.name.clone()) {
                return Err(error(
                    line,
                    format!(
                        "[[probe]] #{}: a second probe named `{}` (give each a `name`)",
                        i + 1,
                        spec.name
                    ),
                ));
            }
        }
        Ok(config)
    }

    /// The probes, checked (`parse` and `load` have already refused bad ones).
    pub fn probe_specs(&self) -> Vec<crate::ProbeSpec> {
        self.probes.iter().filter_map(|p| p.spec().ok()).collect()
    }

    /// Loads `path`; a missing file is the default configuration. A file another
    /// user owns or could write is refused: it can name commands to run.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        crate::check_trusted(path, "config file")?;
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse_at(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }
}

/// The 1-based line of the `index`-th `[[probe]]` header, 0 when not found.
fn nth_probe_line(text: &str, index: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[probe]]"))
        .nth(index)
        .map_or(0, |(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_parses() {
        let cfg = Config::parse(
            r#"
[collector]
address = "127.0.0.1:9999"
token = "t"
[redaction]
max_string_bytes = 100
secret_keys = ["pin"]
[hook]
stdin_timeout_ms = 100
"#,
        )
        .unwrap();
        assert_eq!(cfg.collector.address.as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(cfg.redaction.max_string_bytes, 100);
        assert_eq!(cfg.redaction.max_payload_bytes, 64 * 1024);
        assert_eq!(cfg.hook.stdin_timeout_ms, 100);
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = Config::parse("[hook]\n\npost_budget = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("post_budget"), "{e}");
        let e = Config::parse("[redaction]\nmax_string_bytes = \"big\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("invalid type"), "{e}");
        let e = Config::parse("[hook\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn probes_parse_and_bad_ones_name_their_line() {
        let cfg = Config::parse(
            "[[probe]]\nname = \"api\"\nhttp = \"http://127.0.0.1:8080/health\"\nexpect_status = 200\n\n[[probe]]\ntcp = \"127.0.0.1:5432\"\ngrace_ms = 3000\n",
        )
        .unwrap();
        let specs = cfg.probe_specs();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "api");
        assert_eq!(specs[1].name, "tcp:127.0.0.1:5432");
        assert_eq!(specs[1].grace.as_millis(), 3000);
        let e = Config::parse("[hook]\n\n[[probe]]\nprocess = \"x\"\ntcp = \"h:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("both `tcp` and `process`")
                || e.contains("both `process` and `tcp`"),
            "{e}"
        );
        let e = Config::parse("[[probe]]\ntcp = \"h:1\"\n[[probe]]\ntcp = \"h:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("second probe named"),
            "{e}"
        );
        let e = Config::parse("[[probe]]\nhttp = \"x\"\ncolour = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("colour"), "{e}");
    }

    #[test]
    fn missing_file_is_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(&dir.path().join("nope.toml")).unwrap(),
            Config::default()
        );
    }
}
