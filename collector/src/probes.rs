//! Health probes: HTTP(S) endpoints, TCP ports, pidfiles, processes by name and
//! systemd units, each checked on its own thread and judged like a worker's
//! heartbeat. HTTP(S) goes through the one outbound client (`swarm_obs::http_client`).
//!
//! A probe is `alive` while its checks pass, `late` from its first failed check, and
//! `down` once it has failed for its grace: the drift between "expected running" and
//! "actually down". Every change of state is stored and announced as an `alert`
//! through the collector's one alert path; every check counts in an hourly rollup
//! of the healthy ratio.

use crate::Stop;
use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use swarm_obs::http_client::HttpClient;
use swarm_obs::tls::TlsOptions;
use swarm_obs::{
    Event, Kind, Level, LocalProcesses, ProbeSpec, ProbeTarget, ProcessStatus, ProcessTable,
    Timestamp, WorkerState,
};

use crate::Alerts;
use crate::api::{ProbeCheck, ProbeLastTransition, ProbeSummary};
use crate::store::{ProbeRecord, Store, StoreError};

/// Bytes of a pidfile read.
const MAX_PIDFILE: u64 = 64;

#[derive(Debug, Default)]
struct Status {
    state: Option<WorkerState>,
    failing_since: Option<Timestamp>,
    last_check: Option<ProbeCheck>,
    last_transition: Option<ProbeLastTransition>,
}

/// One probe and what it has seen.
#[derive(Debug)]
struct Entry {
    spec: ProbeSpec,
    status: Mutex<Status>,
    /// For HTTP(S) probes: the client, with the probe's TLS settings and timeout.
    client: Option<HttpClient>,
}

impl Entry {
    /// The probe of `spec`; fails when its CA file cannot be used.
    fn new(spec: ProbeSpec) -> Result<Self, String> {
        let client = match &spec.target {
            ProbeTarget::Http { .. } => {
                let tls = TlsOptions {
                    ca_file: spec.ca_file.clone(),
                    insecure: spec.insecure,
                    ..TlsOptions::default()
                }
                .load()
                .map_err(|e| format!("probe {}: {e}", spec.name))?;
                Some(HttpClient::new(&tls, spec.timeout))
            }
            _ => None,
        };
        Ok(Self {
            spec,
            status: Mutex::default(),
            client,
        })
    }
}

/// Every configured probe.
#[derive(Debug, Default)]
pub struct Probes {
    entries: Vec<Arc<Entry>>,
}

impl Probes {
    /// Probes for these specs, none checked yet; fails when a probe's CA file
    /// cannot be used.
    pub fn new(specs: Vec<ProbeSpec>) -> Result<Self, String> {
        Ok(Self {
            entries: specs
                .into_iter()
                .map(|spec| Entry::new(spec).map(Arc::new))
                .collect::<Result<_, _>>()?,
        })
    }

    /// How each probe stands now, in configuration order.
    pub fn views(&self) -> Vec<ProbeSummary> {
        self.entries
            .iter()
            .map(|e| {
                let st = e.status.lock().unwrap_or_else(|p| p.into_inner());
                ProbeSummary {
                    name: e.spec.name.clone(),
                    kind: e.spec.target.kind().to_owned(),
                    target: e.spec.target.to_string(),
                    state: st.state,
                    interval_ms: millis(e.spec.interval),
                    grace_ms: millis(e.spec.grace),
                    insecure: e.spec.insecure,
                    failing_since: st.failing_since,
                    last_check: st.last_check.clone(),
                    last_transition: st.last_transition.clone(),
                    // Added from the store by `GET /v1/probes`.
                    ..ProbeSummary::default()
                }
            })
            .collect()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The state after a check: `alive` when it passed; else `late`, or `down` once the
/// failures began at least `grace` ago. Returns the state and when failing began.
pub fn next_state(
    failing_since: Option<Timestamp>,
    healthy: bool,
    now: Timestamp,
    grace: Duration,
) -> (WorkerState, Option<Timestamp>) {
    if healthy {
        return (WorkerState::Alive, None);
    }
    let since = failing_since.unwrap_or(now);
    if since.until(now) >= grace {
        (WorkerState::Down, Some(since))
    } else {
        (WorkerState::Late, Some(since))
    }
}

impl Entry {
    /// Takes in a check; returns the store record and the alert for a change of
    /// state (none for a first sight that is healthy).
    fn apply(&self, check: ProbeCheck) -> (ProbeRecord, Option<Event>) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let previous = st.state;
        let (state, since) = next_state(st.failing_since, check.healthy, check.ts, self.spec.grace);
        st.state = Some(state);
        st.failing_since = since;
        let mut record = ProbeRecord {
            probe: self.spec.name.clone(),
            ts: check.ts,
            healthy: check.healthy,
            transition: None,
        };
        let mut alert = None;
        if previous != Some(state) {
            record.transition = Some((
                previous.map(|p| p.as_str().to_owned()),
                state.as_str().to_owned(),
                check.detail.clone(),
            ));
            st.last_transition = Some(ProbeLastTransition {
                ts: check.ts,
                from: previous,
                to: state,
                detail: check.detail.clone(),
            });
            if previous.is_some() || state != WorkerState::Alive {
                alert = Some(self.alert(previous, state, since, &check));
            }
        }
        st.last_check = Some(check);
        (record, alert)
    }

    fn alert(
        &self,
        previous: Option<WorkerState>,
        state: WorkerState,
        since: Option<Timestamp>,
        check: &ProbeCheck,
    ) -> Event {
        let name = &self.spec.name;
        let failing_ms = since.map(|s| millis(s.until(check.ts)));
        let msg = match state {
            WorkerState::Alive => format!("probe {name} recovered: {}", check.detail),
            WorkerState::Down => format!(
                "probe {name} is down: failing for {:.1} s: {}",
                failing_ms.unwrap_or(0) as f64 / 1000.0,
                check.detail
            ),
            _ => format!("probe {name} is failing: {}", check.detail),
        };
        let level = match state {
            WorkerState::Alive | WorkerState::Stopped => Level::Info,
            WorkerState::Late => Level::Warn,
            WorkerState::Down | WorkerState::Dead | WorkerState::Failed => Level::Error,
        };
        let mut ev = Event::new(name.clone(), Kind::Alert, msg).with_level(level);
        ev.fields
            .insert("probe".into(), json!(self.spec.target.kind()));
        ev.fields
            .insert("target".into(), json!(self.spec.target.to_string()));
        ev.fields.insert("state".into(), json!(state.as_str()));
        if let Some(p) = previous {
            ev.fields.insert("previous".into(), json!(p.as_str()));
        }
        ev.fields.insert(
            "recovered".into(),
            json!(state == WorkerState::Alive && previous.is_some()),
        );
        ev.fields.insert("detail".into(), json!(check.detail));
        if let Some(ms) = failing_ms {
            ev.fields.insert("failing_ms".into(), json!(ms));
        }
        ev
    }

    /// Time to the next check: the interval, or sooner while failing so that `down`
    /// comes when the grace ends rather than up to an interval later.
    fn next_wait(&self) -> Duration {
        let st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let interval = self.spec.interval;
        match (st.state, st.failing_since) {
            (Some(WorkerState::Late), Some(since)) => {
                let left = self
                    .spec
                    .grace
                    .saturating_sub(since.until(Timestamp::now()));
                interval.min(left).max(Duration::from_millis(10))
            }
            _ => interval,
        }
    }
}

/// Starts one thread per probe; each stops when `stop` is set or the store closes.
pub(crate) fn spawn(
    probes: &Probes,
    store: Store,
    alerts: Arc<Alerts>,
    stop: Stop,
) -> Vec<JoinHandle<()>> {
    probes
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let name = entry.spec.name.clone();
            let (entry, store, alerts, stop) =
                (entry.clone(), store.clone(), alerts.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("probe-{i}"))
                .spawn(move || {
                    while !stop.is_set() {
                        let (record, alert) = entry.apply(entry.check());
                        match store.record_probe(record) {
                            Err(StoreError::Closed) => return,
                            Err(e) => eprintln!("swarm-obs serve: probe {}: {e}", entry.spec.name),
                            Ok(()) => {}
                        }
                        if let Some(alert) = alert
                            && !alerts.emit(vec![alert])
                        {
                            return;
                        }
                        stop.sleep(entry.next_wait());
                    }
                });
            match spawned {
                Ok(handle) => Some(handle),
                Err(e) => {
                    eprintln!("swarm-obs serve: cannot start probe {name}: {e}");
                    None
                }
            }
        })
        .collect()
}

impl Entry {
    /// Runs one check (blocking, bounded by the probe's timeout).
    fn check(&self) -> ProbeCheck {
        let spec = &self.spec;
        let started = Instant::now();
        let outcome = match (&spec.target, &self.client) {
            (ProbeTarget::Http { url }, Some(client)) => {
                check_http(client, url, spec.expect_status)
            }
            (ProbeTarget::Http { .. }, None) => Err("no HTTP client".to_owned()),
            (ProbeTarget::Tcp(addr), _) => {
                connect(addr, spec.timeout).map(|_| "port open".to_owned())
            }
            (ProbeTarget::Pidfile(path), _) => check_pidfile(path),
            (ProbeTarget::Process(name), _) => check_process(name),
            (ProbeTarget::Systemd { unit, user }, _) => check_systemd(unit, *user, spec.timeout),
        };
        let (healthy, detail) = match outcome {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        ProbeCheck {
            ts: Timestamp::now(),
            healthy,
            detail,
            latency_ms: millis(started.elapsed()),
        }
    }
}

/// Connects to the first address of `addr` that answers within `timeout`.
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .collect();
    let mut last = format!("{addr} resolves to no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// GETs `url` and compares the status with `expect` (default: 2xx or 3xx).
fn check_http(client: &HttpClient, url: &str, expect: Option<u16>) -> Result<String, String> {
    let headers = [("accept".to_owned(), "*/*".to_owned())];
    let status = client.get(url, &headers).map_err(|e| e.to_string())?.status;
    let good = match expect {
        Some(want) => status == want,
        None => (200..400).contains(&status),
    };
    let detail = match expect {
        Some(want) if !good => format!("HTTP {status} (expected {want})"),
        _ => format!("HTTP {status}"),
    };
    if good { Ok(detail) } else { Err(detail) }
}

fn check_pidfile(path: &str) -> Result<String, String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PIDFILE).read_to_string(&mut text))
        .map_err(|e| format!("cannot read pidfile {path}: {e}"))?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("pidfile {path} holds no pid: {:?}", text.trim()))?;
    match LocalProcesses.status(pid) {
        ProcessStatus::Running { .. } => Ok(format!("process {pid} runs")),
        ProcessStatus::Gone => Err(format!("process {pid} from {path} is gone")),
        ProcessStatus::Unknown => Err(format!("cannot tell whether process {pid} runs here")),
    }
}

/// A process whose name (`/proc/<pid>/comm`) or program file name is `name`.
fn check_process(name: &str) -> Result<String, String> {
    let dir = std::fs::read_dir("/proc")
        .map_err(|e| format!("cannot list processes in /proc: {e} (process probes need procfs)"))?;
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let program = std::fs::read(path.join("cmdline")).unwrap_or_default();
        let argv0 = program.split(|&b| b == 0).next().unwrap_or_default();
        let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if comm.trim_end() == name || base == name.as_bytes() {
            return Ok(format!("process {pid} is {name}"));
        }
    }
    Err(format!("no process named {name}"))
}

/// `systemctl [--user] is-active UNIT`, killed past `timeout`.
fn check_systemd(unit: &str, user: bool, timeout: Duration) -> Result<String, String> {
    let mut cmd = Command::new("systemctl");
    if user {
        cmd.arg("--user");
    }
    let mut child = cmd
        .args(["is-active", "--", unit])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run systemctl: {e} (is systemd installed?)"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("systemctl is-active {unit} did not answer in time"));
            }
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.by_ref().take(1024).read_to_string(&mut out);
    }
    match out.trim() {
        "active" => Ok(format!("{unit} is active")),
        "" => Err(format!(
            "{unit}: systemctl said nothing (no systemd manager?)"
        )),
        other => Err(format!("{unit} is {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(target: &str, grace_ms: u64) -> ProbeSpec {
        let mut s = swarm_obs::ProbeConfig::parse_compact(target)
            .unwrap()
            .spec()
            .unwrap();
        s.grace = Duration::from_millis(grace_ms);
        s.timeout = Duration::from_secs(5);
        s
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(1_000_000 + ms)
    }

    fn result(ms: i64, healthy: bool) -> ProbeCheck {
        ProbeCheck {
            ts: at(ms),
            healthy,
            detail: if healthy { "ok".into() } else { "bad".into() },
            latency_ms: 1,
        }
    }

    #[test]
    fn states_follow_failures_and_grace() {
        let g = Duration::from_millis(1000);
        assert_eq!(next_state(None, true, at(0), g), (WorkerState::Alive, None));
        assert_eq!(
            next_state(None, false, at(0), g),
            (WorkerState::Late, Some(at(0)))
        );
        assert_eq!(
            next_state(Some(at(0)), false, at(999), g),
            (WorkerState::Late, Some(at(0)))
        );
        assert_eq!(
            next_state(Some(at(0)), false, at(1000), g),
            (WorkerState::Down, Some(at(0)))
        );
        assert_eq!(
            next_state(Some(at(0)), true, at(2000), g),
            (WorkerState::Alive, None)
        );
        // No grace: the first failure is down.
        assert_eq!(
            next_state(None, false, at(0), Duration::ZERO).0,
            WorkerState::Down
        );
    }

    #[test]
    fn transitions_are_recorded_and_alerted() {
        let entry = Entry::new(spec("tcp:127.0.0.1:1 name=db", 1000)).unwrap();
        // Healthy first sight: stored, not alerted.
        let (rec, alert) = entry.apply(result(0, true));
        assert!(alert.is_none());
        assert_eq!(rec.transition.as_ref().unwrap().1, "alive");
        let (rec, alert) = entry.apply(result(100, true));
        assert!(rec.transition.is_none() && alert.is_none() && rec.healthy);
        let (_, alert) = entry.apply(result(200, false));
        let alert = alert.unwrap();
        assert_eq!(
            (alert.kind, alert.level, alert.source.as_str()),
            (Kind::Alert, Level::Warn, "db")
        );
        assert_eq!(alert.fields["state"], "late");
        let (rec, alert) = entry.apply(result(700, false));
        assert!(alert.is_none() && !rec.healthy);
        let (_, alert) = entry.apply(result(1200, false));
        let alert = alert.unwrap();
        assert_eq!(
            (alert.level, alert.fields["state"].as_str()),
            (Level::Error, Some("down"))
        );
        assert_eq!(alert.fields["failing_ms"], 1000);
        let (rec, alert) = entry.apply(result(1300, true));
        let alert = alert.unwrap();
        assert_eq!(alert.fields["recovered"], true);
        assert_eq!(rec.transition.unwrap().0.as_deref(), Some("down"));
        let view = &Probes {
            entries: vec![Arc::new(entry)],
        }
        .views()[0];
        assert_eq!(view.state, Some(WorkerState::Alive));
        assert_eq!(
            view.last_transition.as_ref().unwrap().from,
            Some(WorkerState::Down)
        );
    }

    use std::io::Write;

    fn check(spec: &ProbeSpec) -> ProbeCheck {
        Entry::new(spec.clone()).unwrap().check()
    }

    #[test]
    fn checks_against_real_sockets_and_processes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = spec(&format!("tcp:{addr}"), 0);
        assert!(check(&tcp).healthy);
        drop(listener);
        let r = check(&tcp);
        assert!(!r.healthy && r.detail.contains("cannot connect"), "{r:?}");

        // Garbage instead of HTTP is a failed check, not a panic.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let _ = c.read(&mut [0u8; 1024]);
            let _ = c.write_all(b"\xff\xfe garbage\r\n");
        });
        let r = check(&spec(&format!("http:http://{addr}/"), 0));
        server.join().unwrap();
        assert!(
            !r.healthy && r.detail.contains("not an HTTP answer"),
            "{r:?}"
        );

        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("me.pid");
        std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
        let p = spec(&format!("pidfile:{}", pidfile.display()), 0);
        assert!(check(&p).healthy);
        std::fs::write(&pidfile, b"not a pid").unwrap();
        assert!(check(&p).detail.contains("holds no pid"));
        std::fs::remove_file(&pidfile).unwrap();
        assert!(check(&p).detail.contains("cannot read pidfile"));

        if std::path::Path::new("/proc/self/comm").exists() {
            let me = std::fs::read_to_string("/proc/self/comm").unwrap();
            assert!(check(&spec(&format!("process:{}", me.trim()), 0)).healthy);
            let r = check(&spec("process:no-such-process-swarm-obs", 0));
            assert!(!r.healthy && r.detail.contains("no process named"));
        }
    }
}
