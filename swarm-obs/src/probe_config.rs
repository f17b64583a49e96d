//! Health probes as configured: `[[probe]]` tables of `config.toml`, or the compact
//! `KIND:TARGET key=value…` form of `swarm-obs serve --probe`. The collector runs
//! them; this module only says what to check.
//!
//! ```toml
//! [[probe]]
//! name = "api"                              # default: KIND:TARGET
//! http = "http://127.0.0.1:8080/health"     # exactly one of http, tcp, pidfile,
//! expect_status = 200                       #   process, systemd, systemd_user
//! # for https:// URLs: trust this CA instead of the system's, or
//! # `insecure = true` to accept any certificate (self-signed; said in `status`)
//! ca_file = "/etc/app/ca.pem"
//! interval_ms = 5000                        # time between checks
//! timeout_ms = 2000                         # one check's time limit
//! grace_ms = 10000                          # failing this long: down, and an alert
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// One `[[probe]]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// The probe's source name; default `KIND:TARGET`.
    #[serde(default)]
    pub name: Option<String>,
    /// An `http://` or `https://` URL answered with the expected status.
    #[serde(default)]
    pub http: Option<String>,
    /// For `https://`: a PEM file of the CA(s) to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// For `https://`: accept any certificate (a self-signed service). Anyone on
    /// the path could answer for it; `status` says so.
    #[serde(default)]
    pub insecure: bool,
    /// A `host:port` accepting TCP connections.
    #[serde(default)]
    pub tcp: Option<String>,
    /// A pidfile naming a running process.
    #[serde(default)]
    pub pidfile: Option<String>,
    /// A running process of this name.
    #[serde(default)]
    pub process: Option<String>,
    /// A system unit that `systemctl is-active` calls active.
    #[serde(default)]
    pub systemd: Option<String>,
    /// A user unit that `systemctl --user is-active` calls active.
    #[serde(default)]
    pub systemd_user: Option<String>,
    /// The HTTP status expected (default: any 2xx or 3xx).
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// Time between checks (default 5000).
    #[serde(default = "default_interval_ms")]
    #[serde(deserialize_with = "crate::duration::millis")]
    pub interval_ms: u64,
    /// One check's time limit (default 2000).
    #[serde(default = "default_timeout_ms")]
    #[serde(deserialize_with = "crate::duration::millis")]
    pub timeout_ms: u64,
    /// How long a probe may fail before it is down (default 10000).
    #[serde(default = "default_grace_ms")]
    #[serde(deserialize_with = "crate::duration::millis")]
    pub grace_ms: u64,
}

fn default_interval_ms() -> u64 {
    5_000
}
fn default_timeout_ms() -> u64 {
    2_000
}
fn default_grace_ms() -> u64 {
    10_000
}

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeTarget {
    /// GET this URL: `http://` or `https://`, with the port made explicit.
    Http {
        /// The URL.
        url: String,
    },
    /// Connect to this `host:port`.
    Tcp(String),
    /// The process whose pid this file holds.
    Pidfile(String),
    /// A process with this name.
    Process(String),
    /// A systemd unit, of the user's manager when `user`.
    Systemd {
        /// The unit.
        unit: String,
        /// `systemctl --user`.
        user: bool,
    },
}

impl ProbeTarget {
    /// The kind's name: `http`, `tcp`, `pidfile`, `process`, `systemd`, `systemd-user`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::Tcp(_) => "tcp",
            Self::Pidfile(_) => "pidfile",
            Self::Process(_) => "process",
            Self::Systemd { user: false, .. } => "systemd",
            Self::Systemd { user: true, .. } => "systemd-user",
        }
    }

    fn parse(kind: &str, target: &str) -> Result<Self, String> {
        if target.trim().is_empty() {
            return Err(format!("probe `{kind}` needs a target"));
        }
        let target = target.trim().to_owned();
        Ok(match kind {
            "http" => {
                if !(target.starts_with("http://") || target.starts_with("https://")) {
                    return Err(format!(
                        "probe `http = \"{target}\"` must be an http:// or https:// URL"
                    ));
                }
                let (scheme, authority, path) = crate::url::split(&target)
                    .ok_or_else(|| format!("probe `http = \"{target}\"` has no host"))?;
                Self::Http {
                    url: format!("{scheme}://{authority}{path}"),
                }
            }
            "tcp" => {
                if !target
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                {
                    return Err(format!("probe `tcp = \"{target}\"` must be host:port"));
                }
                Self::Tcp(target)
            }
            "pidfile" => Self::Pidfile(target),
            "process" => Self::Process(target),
            "systemd" | "systemd_user" | "systemd-user" => Self::Systemd {
                unit: target,
                user: kind != "systemd",
            },
            other => {
                return Err(format!(
                    "unknown probe kind `{other}` (expected http, tcp, pidfile, process, systemd or systemd-user)"
                ));
            }
        })
    }
}

impl fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A URL says its kind itself.
            Self::Http { url } => f.write_str(url),
            Self::Tcp(t) | Self::Pidfile(t) | Self::Process(t) => write!(f, "{}:{t}", self.kind()),
            Self::Systemd { unit, .. } => write!(f, "{}:{unit}", self.kind()),
        }
    }
}

/// A checked probe, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    /// Its source name.
    pub name: String,
    /// What it checks.
    pub target: ProbeTarget,
    /// The HTTP status expected; `None`: any 2xx or 3xx.
    pub expect_status: Option<u16>,
    /// Time between checks.
    pub interval: Duration,
    /// One check's time limit.
    pub timeout: Duration,
    /// How long it may fail before it is down.
    pub grace: Duration,
    /// For `https://`: the CA file to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// For `https://`: any certificate is accepted.
    pub insecure: bool,
}

impl ProbeSpec {
    /// Whether this probe speaks TLS.
    pub fn is_https(&self) -> bool {
        matches!(&self.target, ProbeTarget::Http { url } if url.starts_with("https://"))
    }
}

impl ProbeConfig {
    /// Checks the table: exactly one target, sensible numbers.
    pub fn spec(&self) -> Result<ProbeSpec, String> {
        let targets: Vec<(&str, &String)> = [
            ("http", &self.http),
            ("tcp", &self.tcp),
            ("pidfile", &self.pidfile),
            ("process", &self.process),
            ("systemd", &self.systemd),
            ("systemd_user", &self.systemd_user),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let (kind, value) = match targets.as_slice() {
            [one] => *one,
            [] => {
                return Err(
                    "probe needs one of `http`, `tcp`, `pidfile`, `process`, `systemd`, `systemd_user`"
                        .to_owned(),
                );
            }
            [(a, _), (b, _), ..] => {
                return Err(format!(
                    "probe has both `{a}` and `{b}`: give one target per [[probe]]"
                ));
            }
        };
        let target = ProbeTarget::parse(kind, value)?;
        let https = target.to_string().starts_with("https://");
        for (key, set) in [
            ("ca_file", self.ca_file.is_some()),
            ("insecure", self.insecure),
        ] {
            if set && !https {
                return Err(format!(
                    "probe `{key}` only applies to https:// probes, not `{target}`"
                ));
            }
        }
        if self.ca_file.is_some() && self.insecure {
            return Err(
                "probe has both `ca_file` and `insecure = true`: a CA file is checked, insecure checks nothing; give one".to_owned(),
            );
        }
        if self.expect_status.is_some() && kind != "http" {
            return Err(format!(
                "probe `expect_status` only applies to http probes, not `{kind}`"
            ));
        }
        if let Some(s) = self.expect_status
            && !(100..=599).contains(&s)
        {
            return Err(format!("probe `expect_status = {s}` is not an HTTP status"));
        }
        for (key, v) in [
            ("interval_ms", self.interval_ms),
            ("timeout_ms", self.timeout_ms),
        ] {
            if v == 0 {
                return Err(format!("probe `{key} = 0`: must be at least 1"));
            }
        }
        let name = match &self.name {
            Some(n) if n.trim().is_empty() => {
                return Err("probe `name` must not be empty".to_owned());
            }
            Some(n) => n.clone(),
            None => target.to_string(),
        };
        Ok(ProbeSpec {
            name,
            target,
            expect_status: self.expect_status,
            interval: Duration::from_millis(self.interval_ms),
            timeout: Duration::from_millis(self.timeout_ms),
            grace: Duration::from_millis(self.grace_ms),
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
        })
    }

    /// Parses the compact form `KIND:TARGET [key=value …]`, with the keys of
    /// `[[probe]]` (`name`, `expect_status`, `interval_ms`, `timeout_ms`,
    /// `grace_ms`, `ca_file`, `insecure`) after the target, separated by spaces.
    ///
    /// ```
    /// use swarm_obs::ProbeConfig;
    /// let p = ProbeConfig::parse_compact("tcp:127.0.0.1:5432 interval_ms=1000").unwrap();
    /// assert_eq!(p.tcp.as_deref(), Some("127.0.0.1:5432"));
    /// assert_eq!(p.spec().unwrap().name, "tcp:127.0.0.1:5432");
    /// // A URL alone is an http probe, named by the URL.
    /// let p = ProbeConfig::parse_compact("http://127.0.0.1:8080/health").unwrap();
    /// assert_eq!(p.spec().unwrap().name, "http://127.0.0.1:8080/health");
    /// ```
    pub fn parse_compact(text: &str) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or("");
        // A bare URL is an http probe: `http://127.0.0.1:8080/health`.
        let split = if first.starts_with("http://") || first.starts_with("https://") {
            Some(("http", first))
        } else {
            first.split_once(':')
        };
        let Some((kind, target)) = split else {
            return Err(format!(
                "probe {text:?} must look like KIND:TARGET or a URL, e.g. http://127.0.0.1:8080/health, tcp:127.0.0.1:5432, pidfile:/run/x.pid, process:nginx, systemd:nginx.service, systemd-user:app.service"
            ));
        };
        let mut config = Self {
            name: None,
            http: None,
            ca_file: None,
            insecure: false,
            tcp: None,
            pidfile: None,
            process: None,
            systemd: None,
            systemd_user: None,
            expect_status: None,
            interval_ms: default_interval_ms(),
            timeout_ms: default_timeout_ms(),
            grace_ms: default_grace_ms(),
        };
        let slot = match kind {
            "http" => &mut config.http,
            "tcp" => &mut config.tcp,
            "pidfile" => &mut config.pidfile,
            "process" => &mut config.process,
            "systemd" => &mut config.systemd,
            "systemd-user" | "systemd_user" => &mut config.systemd_user,
            other => {
                return Err(format!(
                    "unknown probe kind `{other}` in {text:?} (expected http, tcp, pidfile, process, systemd or systemd-user)"
                ));
            }
        };
        *slot = Some(target.to_owned());
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                return Err(format!(
                    "probe option {word:?} in {text:?} must be key=value"
                ));
            };
            let number = |what: &str| -> Result<u64, String> {
                value
                    .parse()
                    .map_err(|_| format!("probe option `{key}={value}`: {what} expected"))
            };
            match key {
                "name" => config.name = Some(value.to_owned()),
                "expect_status" => {
                    config.expect_status =
                        Some(value.parse().map_err(|_| {
                            format!("probe option `{key}={value}`: a status expected")
                        })?);
                }
                "interval_ms" => config.interval_ms = number("milliseconds")?,
                "timeout_ms" => config.timeout_ms = number("milliseconds")?,
                "grace_ms" => config.grace_ms = number("milliseconds")?,
                "ca_file" => config.ca_file = Some(PathBuf::from(value)),
                "insecure" => {
                    config.insecure = value.parse().map_err(|_| {
                        format!("probe option `{key}={value}`: true or false expected")
                    })?;
                }
                other => {
                    return Err(format!(
                        "unknown probe option `{other}` in {text:?} (expected name, expect_status, interval_ms, timeout_ms, grace_ms, ca_file or insecure)"
                    ));
                }
            }
        }
        config.spec()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms() {
        let p = ProbeConfig::parse_compact(
            "http:http://127.0.0.1:8080/health expect_status=204 interval_ms=100 grace_ms=300 name=api",
        )
        .unwrap()
        .spec()
        .unwrap();
        assert_eq!(p.name, "api");
        assert_eq!(
            p.target,
            ProbeTarget::Http {
                url: "http://127.0.0.1:8080/health".into()
            }
        );
        let tls = ProbeConfig::parse_compact("https://localhost/h ca_file=/ca.pem")
            .unwrap()
            .spec()
            .unwrap();
        assert_eq!(tls.name, "https://localhost:443/h");
        assert!(tls.is_https());
        assert_eq!(tls.ca_file, Some("/ca.pem".into()));
        let insecure = ProbeConfig::parse_compact("https://[::1]:8443 insecure=true")
            .unwrap()
            .spec()
            .unwrap();
        assert!(insecure.insecure);
        assert_eq!(
            (p.expect_status, p.interval, p.grace),
            (
                Some(204),
                Duration::from_millis(100),
                Duration::from_millis(300)
            )
        );
        let p = ProbeConfig::parse_compact("http:http://localhost")
            .unwrap()
            .spec()
            .unwrap();
        assert_eq!(p.name, "http://localhost:80/");
        for (text, kind) in [
            ("pidfile:/run/x.pid", "pidfile"),
            ("process:nginx", "process"),
            ("systemd:nginx.service", "systemd"),
            ("systemd-user:app.service", "systemd-user"),
        ] {
            let spec = ProbeConfig::parse_compact(text).unwrap().spec().unwrap();
            assert_eq!((spec.target.kind(), spec.name.as_str()), (kind, text));
        }
    }

    #[test]
    fn bad_probes_say_what_is_wrong() {
        for (text, want) in [
            ("", "KIND:TARGET"),
            ("nginx", "KIND:TARGET"),
            ("ftp:x", "unknown probe kind `ftp`"),
            ("http:ftp://x/", "http:// or https:// URL"),
            ("http://x/ insecure=true", "only applies to https://"),
            ("tcp:127.0.0.1:1 ca_file=/x", "only applies to https://"),
            ("https://x/ insecure=yes", "true or false"),
            ("https://x/ insecure=true ca_file=/x", "give one"),
            ("http:http:///x", "no host"),
            ("tcp:localhost", "host:port"),
            ("tcp:127.0.0.1:99999", "host:port"),
            ("tcp:127.0.0.1:1 interval_ms=0", "interval_ms = 0"),
            ("tcp:127.0.0.1:1 interval_ms=soon", "milliseconds expected"),
            ("tcp:127.0.0.1:1 expect_status=200", "only applies to http"),
            ("http:http://x/ expect_status=42", "not an HTTP status"),
            ("tcp:127.0.0.1:1 color=red", "unknown probe option `color`"),
            ("tcp:127.0.0.1:1 loud", "key=value"),
            ("process:", "needs a target"),
        ] {
            let e = ProbeConfig::parse_compact(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
