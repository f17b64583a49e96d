//! Heartbeat watch: local `heartbeats/*.json` files and heartbeats posted by workers
//! on other hosts, classified healthchecks.io-style, with every change of verdict
//! turned into an `alert` event.
//!
//! The file format and the verdicts are the library's ([`Heartbeat`],
//! [`classify_with_grace`]); this module adds what only a collector needs: posted
//! beats from other hosts, the last verdict per worker, and alerts on change.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};
use swarm_obs::{
    Event, Heartbeat, Kind, Level, LocalProcesses, StateRoot, Timestamp, WorkerState,
    classify_with_grace, default_grace,
};

/// Largest heartbeat accepted, from a file or a POST.
pub const MAX_HEARTBEAT_BYTES: usize = 64 << 10;
/// Workers tracked at most; heartbeats for more are refused.
const MAX_WORKERS: usize = 10_000;
/// A worker first seen in trouble is only reported if its last beat is this recent,
/// so old files of long-gone workers do not alert at every start.
const STALE_AFTER_MS: i64 = 3_600_000;

/// One worker as `GET /v1/workers` reports it.
#[derive(Debug, Serialize)]
pub struct WorkerView {
    /// The worker's name.
    pub worker: String,
    /// Its host.
    pub host: String,
    /// The verdict.
    pub state: WorkerState,
    /// Milliseconds since its last beat.
    pub age_ms: i64,
    /// `file` (heartbeats/ on this host) or `post` (POST /v1/heartbeats).
    pub via: &'static str,
    /// The last heartbeat as written or sent.
    pub heartbeat: Value,
}

struct Entry {
    beat: Heartbeat,
    raw: Value,
    via: &'static str,
}

/// The heartbeats seen and the last verdict on each worker.
pub struct Watch {
    grace: Option<Duration>,
    posted: Mutex<HashMap<(String, String), Entry>>,
    files: Mutex<HashMap<(String, String), Entry>>,
    verdicts: Mutex<HashMap<(String, String), WorkerState>>,
}

fn parse(raw: &[u8]) -> Result<(Heartbeat, Value), String> {
    if raw.len() > MAX_HEARTBEAT_BYTES {
        return Err(format!("heartbeat over {MAX_HEARTBEAT_BYTES} bytes"));
    }
    let value: Value = serde_json::from_slice(raw).map_err(|e| format!("not JSON: {e}"))?;
    let beat: Heartbeat =
        serde_json::from_value(value.clone()).map_err(|e| format!("not a heartbeat: {e}"))?;
    if beat.worker.is_empty() {
        return Err("heartbeat field `worker` must not be empty".into());
    }
    Ok((beat, value))
}

impl Watch {
    /// A watch on this host; `grace` overrides the default of twice the interval,
    /// at least 10 s.
    pub fn new(grace: Option<Duration>) -> Self {
        Self {
            grace,
            posted: Mutex::default(),
            files: Mutex::default(),
            verdicts: Mutex::default(),
        }
    }

    fn key(&self, beat: &Heartbeat) -> (String, String) {
        (beat.host.clone(), beat.worker.clone())
    }

    /// Records a heartbeat posted by a worker.
    pub fn record(&self, raw: &[u8]) -> Result<(), String> {
        let (beat, value) = parse(raw)?;
        let key = self.key(&beat);
        let mut posted = self.posted.lock().unwrap_or_else(|p| p.into_inner());
        if posted.len() >= MAX_WORKERS && !posted.contains_key(&key) {
            return Err(format!("more than {MAX_WORKERS} workers are watched"));
        }
        posted.insert(
            key,
            Entry {
                beat,
                raw: value,
                via: "post",
            },
        );
        Ok(())
    }

    /// Re-reads `heartbeats/*.json`; unreadable or half-written files are skipped.
    pub fn scan_files(&self, root: &StateRoot) {
        let mut found = HashMap::new();
        if let Ok(dir) = std::fs::read_dir(root.heartbeats_dir()) {
            for entry in dir.filter_map(Result::ok).take(MAX_WORKERS) {
                let path = entry.path();
                if path.extension().is_none_or(|x| x != "json") {
                    continue;
                }
                if let Some((beat, raw)) = read_small(&path).and_then(|b| parse(&b).ok()) {
                    found.insert(
                        self.key(&beat),
                        Entry {
                            beat,
                            raw,
                            via: "file",
                        },
                    );
                }
            }
        }
        *self.files.lock().unwrap_or_else(|p| p.into_inner()) = found;
    }

    fn classify(&self, beat: &Heartbeat, now: Timestamp) -> WorkerState {
        let grace = self.grace.unwrap_or_else(|| default_grace(beat.interval()));
        classify_with_grace(beat, now, &LocalProcesses, grace)
    }

    /// Every worker with its verdict now; posted beats win over files for one key.
    pub fn workers(&self, now: Timestamp) -> Vec<WorkerView> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let posted = self.posted.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: HashMap<&(String, String), &Entry> = files.iter().collect();
        for (k, e) in posted.iter() {
            let newer = all
                .get(k)
                .is_none_or(|f| f.beat.timestamp <= e.beat.timestamp);
            if newer {
                all.insert(k, e);
            }
        }
        let mut out: Vec<WorkerView> = all
            .into_iter()
            .map(|((host, worker), e)| WorkerView {
                worker: worker.clone(),
                host: host.clone(),
                state: self.classify(&e.beat, now),
                age_ms: now.unix_ms() - e.beat.timestamp.unix_ms(),
                via: e.via,
                heartbeat: e.raw.clone(),
            })
            .collect();
        out.sort_by(|a, b| (&a.worker, &a.host).cmp(&(&b.worker, &b.host)));
        out
    }

    /// Re-reads the files, classifies every worker and returns an `alert` event for
    /// each change of verdict since the last tick.
    pub fn tick(&self, root: &StateRoot, now: Timestamp) -> Vec<Event> {
        self.scan_files(root);
        let workers = self.workers(now);
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        let mut alerts = Vec::new();
        for w in workers {
            let key = (w.host.clone(), w.worker.clone());
            let previous = verdicts.insert(key, w.state);
            let report = match previous {
                // A clean stop is no news; a failed one is.
                Some(_) if w.state == WorkerState::Stopped => false,
                Some(p) => p != w.state,
                // First sight: only trouble that is recent is news.
                None => {
                    !matches!(w.state, WorkerState::Alive | WorkerState::Stopped)
                        && w.age_ms < STALE_AFTER_MS
                }
            };
            if report {
                alerts.push(alert(&w, previous));
            }
        }
        alerts
    }
}

fn read_small(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_HEARTBEAT_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

fn alert(w: &WorkerView, previous: Option<WorkerState>) -> Event {
    let hb = &w.heartbeat;
    let secs = w.age_ms as f64 / 1000.0;
    let recovered = w.state == WorkerState::Alive;
    let msg = match w.state {
        WorkerState::Alive => format!("{} recovered", w.worker),
        WorkerState::Late => format!("{} is late: last heartbeat {secs:.1} s ago", w.worker),
        WorkerState::Down => format!("{} is down: last heartbeat {secs:.1} s ago", w.worker),
        WorkerState::Dead => format!(
            "{} is dead: process {} is gone",
            w.worker,
            hb["pid"].as_u64().unwrap_or(0)
        ),
        WorkerState::Stopped => format!("{} stopped", w.worker),
        WorkerState::Failed => match hb["exit_code"].as_i64() {
            Some(code) => format!("{} failed: exited with code {code}", w.worker),
            None => format!("{} failed: its last word was an error", w.worker),
        },
    };
    let level = match w.state {
        WorkerState::Alive | WorkerState::Stopped => Level::Info,
        WorkerState::Late => Level::Warn,
        WorkerState::Down | WorkerState::Dead | WorkerState::Failed => Level::Error,
    };
    let mut ev = Event::new(w.worker.clone(), Kind::Alert, msg).with_level(level);
    ev.host = Some(w.host.clone());
    ev.pid = hb["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    ev.task = hb["task"].as_str().map(str::to_owned);
    let mut fields = Map::new();
    fields.insert("state".into(), json!(w.state.as_str()));
    if let Some(p) = previous {
        fields.insert("previous".into(), json!(p.as_str()));
    }
    fields.insert("recovered".into(), json!(recovered));
    fields.insert("age_ms".into(), json!(w.age_ms));
    if let Some(code) = hb["exit_code"].as_i64() {
        fields.insert("exit_code".into(), json!(code));
    }
    ev.fields = fields;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(ts: Timestamp, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"timestamp":"{ts}","worker":"w","interval_ms":1000,"host":"elsewhere","pid":1,"started_at":"{ts}"{extra}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn verdicts_follow_age_and_state_and_alert_on_change() {
        let watch = Watch::new(Some(Duration::from_millis(2000)));
        let t0 = Timestamp::from_unix_ms(1_000_000_000_000);
        let at = |ms| Timestamp::from_unix_ms(t0.unix_ms() + ms);
        watch.record(&beat(t0, "")).unwrap();
        let root = StateRoot::new("/nonexistent/swarm-obs-watch-test");
        assert!(
            watch.tick(&root, at(500)).is_empty(),
            "first sight alive: no alert"
        );
        let late = watch.tick(&root, at(1500));
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].fields["state"], "late");
        assert_eq!(late[0].level, Level::Warn);
        assert!(watch.tick(&root, at(1600)).is_empty(), "no repeat");
        assert_eq!(watch.tick(&root, at(3500))[0].fields["state"], "down");
        watch.record(&beat(at(3600), "")).unwrap();
        let back = watch.tick(&root, at(3700));
        assert_eq!(back[0].fields["recovered"], true);
        watch
            .record(&beat(at(3800), r#","state":"stopped""#))
            .unwrap();
        assert!(
            watch.tick(&root, at(90_000)).is_empty(),
            "a clean stop is no alert"
        );
        watch
            .record(&beat(at(90_100), r#","state":"failed","exit_code":3"#))
            .unwrap();
        let failed = watch.tick(&root, at(90_200));
        assert_eq!(failed[0].fields["state"], "failed");
        assert_eq!(failed[0].fields["exit_code"], 3);
        assert_eq!(failed[0].level, Level::Error);
        assert!(
            failed[0].msg.contains("exited with code 3"),
            "{}",
            failed[0].msg
        );
    }

    #[test]
    fn bad_heartbeats_are_refused() {
        let watch = Watch::new(None);
        assert!(watch.record(b"nope").unwrap_err().contains("not JSON"));
        assert!(watch.record(b"{}").unwrap_err().contains("not a heartbeat"));
        let empty = br#"{"timestamp":"2026-01-05T14:32:15.000Z","worker":"","pid":1,"host":"h","started_at":"2026-01-05T14:32:15.000Z","interval_ms":1000}"#;
        assert!(watch.record(empty).unwrap_err().contains("`worker`"));
    }
}
