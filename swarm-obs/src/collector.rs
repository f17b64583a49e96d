//! Finding the local collector and posting events to it.
//!
//! The running collector writes `collector.json` in the state root; hooks and
//! workers read it (or `SWARM_OBS_COLLECTOR`, or `[collector] address` in
//! `config.toml`) to learn where to post. Posting is best effort within a time
//! budget: the event log on disk is the spool, and the collector catches up from it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Config, Event, StateRoot, Timestamp};

/// Environment variable naming the collector (`host:port`, `http://host:port`, or
/// `off` to post nowhere).
pub const COLLECTOR_ENV: &str = "SWARM_OBS_COLLECTOR";

/// Environment variable holding the collector's bearer token.
pub const TOKEN_ENV: &str = "SWARM_OBS_TOKEN";

/// The port the collector listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 4780;

/// The contents of `collector.json`: where the running collector listens.
///
/// ```
/// use swarm_obs::CollectorInfo;
/// let info: CollectorInfo = serde_json::from_str(
///     r#"{"addr":"127.0.0.1:4780","pid":42,"started_at":"2026-01-05T14:32:15.000Z"}"#,
/// ).unwrap();
/// assert_eq!(info.addr, "127.0.0.1:4780");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorInfo {
    /// `host:port` the collector's HTTP server is bound to.
    pub addr: String,
    /// The collector's process id.
    pub pid: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// The token clients must send, when the collector requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The backend the collector shows notifications with (`desktop`, `command`),
    /// when it shows any: hooks then hand it theirs (`POST /v1/notify`) instead of
    /// starting a delivery process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<String>,
    /// The Unix socket the collector also serves on (`collector.sock` in the state
    /// root), when it has one: local clients connect there first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

impl CollectorInfo {
    /// Reads `collector.json`; `None` when it is missing, unreadable, or could
    /// have been written by another user (it says where events and the token go).
    pub fn read(path: &Path) -> Option<Self> {
        crate::check_trusted(path, "collector file").ok()?;
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Where to post events, and with which token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorAddress {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:4780`.
    pub base_url: String,
    /// Bearer token, if the collector requires one.
    pub token: Option<String>,
    /// Whether the collector shows notifications handed to it, per its
    /// `collector.json` (an address from the environment or config says nothing).
    pub shows_notifications: bool,
    /// The collector's Unix socket, per its `collector.json`: tried before the TCP
    /// address, which stays the fallback and the requests' `Host`.
    pub socket: Option<PathBuf>,
}

/// A collector address could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid collector address {0:?}: expected host:port or http://host:port")]
pub struct AddressError(String);

impl CollectorAddress {
    /// Parses `host:port`, `http://host:port` or `http://host:port/`.
    ///
    /// ```
    /// use swarm_obs::CollectorAddress;
    /// let a = CollectorAddress::parse("127.0.0.1:4780").unwrap();
    /// assert_eq!(a.base_url, "http://127.0.0.1:4780");
    /// assert!(CollectorAddress::parse("https://x:1").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let s = s.trim();
        let hostport = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
        let valid = !hostport.is_empty()
            && !hostport.contains(['/', ' ', '@', '?', '#'])
            && hostport
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid {
            return Err(AddressError(s.chars().take(100).collect()));
        }
        Ok(Self {
            base_url: format!("http://{hostport}"),
            token: None,
            shows_notifications: false,
            socket: None,
        })
    }

    /// Finds the collector: `SWARM_OBS_COLLECTOR` (where `off` or empty means none),
    /// else `collector.json` in the state root, else `[collector] address` in the
    /// config. The token comes from `SWARM_OBS_TOKEN`, `collector.json` or the config.
    pub fn discover(root: &StateRoot, config: &Config) -> Option<Self> {
        let env_token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
        let mut found = match std::env::var(COLLECTOR_ENV) {
            Ok(v) if v.is_empty() || v.eq_ignore_ascii_case("off") => return None,
            Ok(v) => Self::parse(&v).ok()?,
            Err(_) => match CollectorInfo::read(&root.collector_file()) {
                Some(info) => {
                    let mut a = Self::parse(&info.addr).ok()?;
                    a.token = info.token;
                    a.shows_notifications = info.notifications.is_some();
                    a.socket = info.socket;
                    a
                }
                None => Self::parse(config.collector.address.as_deref()?).ok()?,
            },
        };
        found.token = env_token
            .or(found.token)
            .or_else(|| config.collector.token.clone());
        Some(found)
    }

    /// `host:port`, as it appears in the base URL.
    pub fn host_port(&self) -> &str {
        self.base_url
            .strip_prefix("http://")
            .unwrap_or(&self.base_url)
    }

    /// The URL of an endpoint path such as `/v1/events`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Where requests go: the Unix socket first, if there is one.
    fn target(&self) -> crate::http_post::Target<'_> {
        crate::http_post::Target {
            host: self.host_port(),
            socket: self.socket.as_deref(),
        }
    }
}

/// Posting to the collector failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// No answer within the budget, or no connection.
    #[error("collector at {url} unreachable: {message}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// What the transport said.
        message: String,
    },
    /// The collector answered with an error status.
    #[error("collector refused {url}: HTTP {status}")]
    Rejected {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
    },
}

/// Events as NDJSON, one line each.
fn ndjson(events: &[Event]) -> Vec<u8> {
    let mut body = Vec::with_capacity(events.len() * 512);
    for ev in events {
        body.extend_from_slice(ev.to_json_line().as_bytes());
    }
    body
}

/// What [`CollectorClient::post_logged_and_hand`] did.
#[derive(Debug)]
pub struct PostedAndHanded {
    /// Whether the collector queued the events, or, when no job was decided on
    /// and nothing waited for its answer, whether the POST was written whole.
    pub posted: Result<(), PostError>,
    /// The notification job decided on, if any, and whether the collector took it.
    pub job: Option<(crate::notify::Delivery, Result<(), PostError>)>,
}

/// Posts events to a collector over HTTP/1.1 with a total time budget per request.
///
/// The client speaks just enough HTTP for a loopback collector — one request per
/// connection, the status line read back — on plain std sockets: no resolver
/// thread, no connection pool, so a one-shot hook pays only for the connect and
/// the round trip, and the budget bounds everything from connect to status line.
///
/// ```no_run
/// use std::time::Duration;
/// use swarm_obs::{CollectorAddress, CollectorClient, Event, Kind};
/// let addr = CollectorAddress::parse("127.0.0.1:4780").unwrap();
/// let client = CollectorClient::new(addr, Duration::from_millis(50));
/// client.post(&[Event::new("backend", Kind::Log, "hello")]).ok();
/// ```
#[derive(Debug)]
pub struct CollectorClient {
    address: CollectorAddress,
    budget: Duration,
    /// The events posted as logged are not in the log after all: wait for the commit.
    not_logged: bool,
}

/// Where logged events go: answered once queued, since the log backs them.
const EVENTS_QUEUED: &str = "/v1/events?ack=queued";
/// Where other events go: answered once committed.
const EVENTS_COMMITTED: &str = "/v1/events";

impl CollectorClient {
    /// A client whose every request, connect to status line, takes at most `budget`.
    pub fn new(address: CollectorAddress, budget: Duration) -> Self {
        Self {
            address,
            budget,
            not_logged: false,
        }
    }

    /// For a caller whose append to the event log failed: the `post_logged*`
    /// calls then wait for the collector's commit, since no log backs the events.
    #[must_use]
    pub fn not_logged(mut self) -> Self {
        self.not_logged = true;
        self
    }

    fn logged_events_path(&self) -> &'static str {
        if self.not_logged {
            EVENTS_COMMITTED
        } else {
            EVENTS_QUEUED
        }
    }

    /// The address posted to.
    pub fn address(&self) -> &CollectorAddress {
        &self.address
    }

    /// Posts a batch of events as NDJSON to `/v1/events`.
    pub fn post(&self, events: &[Event]) -> Result<(), PostError> {
        self.post_ndjson(&ndjson(events))
    }

    /// Posts events that are already in this host's event log, and returns once the
    /// collector has queued them rather than stored them: if it dies before its
    /// commit, it reads them from the log when it starts again (ids dedupe). This is
    /// the hook's path: it appends every event to the log before any network.
    pub fn post_logged(&self, events: &[Event]) -> Result<(), PostError> {
        self.post_body(
            self.logged_events_path(),
            "application/x-ndjson",
            &ndjson(events),
        )
    }

    /// Sends events that are already in this host's event log, as
    /// [`post_logged`](Self::post_logged) does, and returns as soon as the request is
    /// written, without waiting for the answer: nothing the answer could say changes
    /// what the caller does, since a POST the collector never takes is read from the
    /// log by its catch-up (ids dedupe). `Ok` means the whole request is in the
    /// kernel's hands, which deliver it after the caller exits. For a client made
    /// [`not_logged`](Self::not_logged) the answer does decide (no log backs the
    /// events), so this waits for the commit as `post_logged` does.
    ///
    /// This is the hook's path: Claude Code waits for the hook's exit, so the hook
    /// waits for nothing it does not need.
    pub fn send_logged(&self, events: &[Event]) -> Result<(), PostError> {
        if self.not_logged {
            return self.post_logged(events);
        }
        let auth = self.authorization();
        crate::http_post::send_unanswered(
            self.address.target(),
            "POST",
            EVENTS_QUEUED,
            "application/x-ndjson",
            &auth_headers(auth.as_deref()),
            &ndjson(events),
            self.budget,
        )
        .map_err(|e| PostError::Unreachable {
            url: self.address.url(EVENTS_QUEUED),
            message: e.to_string(),
        })
    }

    /// Hands a notification that already passed the sound rules and the gate to the
    /// collector to show (`POST /v1/notify`). Worth it only when
    /// [`CollectorAddress::shows_notifications`]; on an error, show it yourself.
    pub fn hand_notification(&self, job: &crate::notify::Delivery) -> Result<(), PostError> {
        // A Delivery holds only strings and numbers: it always serialises.
        let body = serde_json::to_vec(job).unwrap_or_default();
        self.post_body("/v1/notify", "application/json", &body)
    }

    /// Posts events already in the event log, as [`post_logged`](Self::post_logged)
    /// does, and on the same connection, while the collector works on them, hands
    /// it the notification `decide` returns, if any (see
    /// [`hand_notification`](Self::hand_notification)). The caller's work in
    /// `decide` (the notification gate) overlaps the collector's, for one connect
    /// and no second thread. `decide` runs exactly once, whatever the network does.
    ///
    /// A job is sent again on a new connection if the collector closed the first
    /// after the POST; one it did not take is the caller's to show. When `decide`
    /// returns no job, nothing waits for the POST's answer (see
    /// [`send_logged`](Self::send_logged)), unless the client is
    /// [`not_logged`](Self::not_logged).
    pub fn post_logged_and_hand(
        &self,
        events: &[Event],
        decide: impl FnOnce() -> Option<crate::notify::Delivery>,
    ) -> PostedAndHanded {
        let events_path = self.logged_events_path();
        const NOTIFY: &str = "/v1/notify";
        let auth = self.authorization();
        let headers = auth_headers(auth.as_deref());
        let unreachable = |path: &str, e: &std::io::Error| PostError::Unreachable {
            url: self.address.url(path),
            message: e.to_string(),
        };
        let mut conn = match crate::http_post::Pipeline::connect(self.address.target(), self.budget)
            .and_then(|mut c| {
                c.send(
                    "POST",
                    events_path,
                    "application/x-ndjson",
                    &headers,
                    &ndjson(events),
                    false,
                )
                .map(|()| c)
            }) {
            Ok(c) => c,
            Err(e) => {
                return PostedAndHanded {
                    job: decide().map(|j| (j, Err(unreachable(NOTIFY, &e)))),
                    posted: Err(unreachable(events_path, &e)),
                };
            }
        };
        let job = decide();
        if job.is_none() && !self.not_logged {
            // No answer decides anything: leave with the POST written.
            return PostedAndHanded {
                posted: conn.leave().map_err(|e| unreachable(events_path, &e)),
                job: None,
            };
        }
        // A Delivery holds only strings and numbers: it always serialises.
        let sent = job.as_ref().map(|j| {
            let body = serde_json::to_vec(j).unwrap_or_default();
            conn.send("POST", NOTIFY, "application/json", &headers, &body, true)
        });
        let posted = self.judge(events_path, conn.status());
        let handed = match (&job, sent) {
            (Some(job), _) if conn.closing() => Some(self.hand_notification(job)),
            (_, Some(Err(e))) => Some(Err(unreachable(NOTIFY, &e))),
            (_, Some(Ok(()))) => Some(self.judge(NOTIFY, conn.status())),
            (_, None) => None,
        };
        PostedAndHanded {
            posted,
            job: job.zip(handed),
        }
    }

    /// Posts already-serialised NDJSON lines to `/v1/events`.
    pub fn post_ndjson(&self, body: &[u8]) -> Result<(), PostError> {
        self.post_body("/v1/events", "application/x-ndjson", body)
    }

    /// POSTs `body` to `path`; any 2xx is success.
    fn post_body(&self, path: &str, content_type: &str, body: &[u8]) -> Result<(), PostError> {
        self.judge(path, self.request("POST", path, content_type, body))
    }

    /// What the answer to a request to `path` means: any 2xx is success.
    fn judge(&self, path: &str, answer: std::io::Result<u16>) -> Result<(), PostError> {
        match answer {
            Ok(status) if (200..300).contains(&status) => Ok(()),
            Ok(status) => Err(PostError::Rejected {
                url: self.address.url(path),
                status,
            }),
            Err(e) => Err(PostError::Unreachable {
                url: self.address.url(path),
                message: e.to_string(),
            }),
        }
    }

    /// Sends one request and returns the response status.
    fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> io::Result<u16> {
        let auth = self.authorization();
        crate::http_post::send(
            self.address.target(),
            method,
            path,
            content_type,
            &auth_headers(auth.as_deref()),
            body,
            self.budget,
        )
    }

    /// The `authorization` value for this collector's token, if it has one.
    fn authorization(&self) -> Option<String> {
        self.address.token.as_ref().map(|t| format!("Bearer {t}"))
    }
}

/// The headers carrying `authorization`, if any.
fn auth_headers(authorization: Option<&str>) -> Vec<(&'static str, &str)> {
    authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect()
}

/// Writes `collector.json` atomically (temp file, then rename), mode 0600 because
/// it may hold the token.
pub fn write_collector_info(path: &Path, info: &CollectorInfo) -> std::io::Result<PathBuf> {
    let json = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    crate::write_atomic(path, &json)?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_strictly() {
        for ok in [
            "127.0.0.1:4780",
            "http://127.0.0.1:4780/",
            "localhost:1",
            "[::1]:4780",
        ] {
            assert!(CollectorAddress::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "https://h:1",
            "h:1/x",
            ":80",
        ] {
            assert!(CollectorAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn collector_json_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let info = CollectorInfo {
            addr: "127.0.0.1:4781".into(),
            pid: 7,
            started_at: Timestamp::now(),
            token: Some("t0k".into()),
            notifications: Some("desktop".into()),
            socket: Some(root.socket_file()),
        };
        write_collector_info(&root.collector_file(), &info).unwrap();
        assert_eq!(CollectorInfo::read(&root.collector_file()), Some(info));
    }
}
