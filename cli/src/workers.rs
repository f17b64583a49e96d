//! The workers view: every worker's last heartbeat and its verdict, from the
//! collector's `GET /v1/workers` or, without a collector, from `heartbeats/*.json`
//! judged by the library's rules. `status` prints it; `top` shows it live.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use swarm_obs::{Heartbeat, LocalProcesses, Timestamp, WorkerState, read_heartbeats};

use crate::display::state_is_fine;
use crate::source::Source;

/// One worker and what a reader made of its last heartbeat (the shape of one entry
/// of the collector's `GET /v1/workers`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRow {
    /// The worker's name.
    pub worker: String,
    /// Its host.
    pub host: String,
    /// The verdict.
    pub state: WorkerState,
    /// Milliseconds since its last beat.
    pub age_ms: i64,
    /// `file` (a heartbeat file on this host) or `post` (sent to the collector).
    pub via: String,
    /// The last heartbeat.
    pub heartbeat: Heartbeat,
}

/// A heartbeat file that could not be judged.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: String,
}

/// Every worker, from one source at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct WorkersView {
    /// `collector` or `files`.
    pub from: &'static str,
    /// Workers sorted by name, then host.
    pub workers: Vec<WorkerRow>,
    /// Heartbeat files that could not be read (files only).
    pub unreadable: Vec<Unreadable>,
}

#[derive(Deserialize)]
struct WorkersAnswer {
    workers: Vec<WorkerRow>,
}

impl WorkersView {
    /// Loads the view now.
    pub fn load(source: &Source) -> Result<Self> {
        match source {
            Source::Collector(http) => {
                let answer: WorkersAnswer = http.get_json("/v1/workers")?;
                let mut workers = answer.workers;
                sort(&mut workers);
                Ok(Self {
                    from: source.kind(),
                    workers,
                    unreadable: Vec::new(),
                })
            }
            Source::Files(root) => {
                let now = Timestamp::now();
                let reports = read_heartbeats(root, now, &LocalProcesses).with_context(|| {
                    format!(
                        "cannot list the heartbeat files in {}",
                        root.heartbeats_dir().display()
                    )
                })?;
                let mut workers = Vec::new();
                let mut unreadable = Vec::new();
                for report in reports {
                    match report.result {
                        Ok((hb, state)) => workers.push(WorkerRow {
                            worker: hb.worker.clone(),
                            host: hb.host.clone(),
                            state,
                            age_ms: now.unix_ms() - hb.timestamp.unix_ms(),
                            via: "file".to_owned(),
                            heartbeat: hb,
                        }),
                        Err(e) => unreadable.push(Unreadable {
                            path: report.path,
                            error: e.to_string(),
                        }),
                    }
                }
                sort(&mut workers);
                Ok(Self {
                    from: source.kind(),
                    workers,
                    unreadable,
                })
            }
        }
    }

    /// Whether every worker is alive or stopped and every file was readable.
    pub fn all_fine(&self) -> bool {
        self.unreadable.is_empty() && self.workers.iter().all(|w| state_is_fine(w.state))
    }

    /// How many workers are in `state`.
    pub fn count(&self, state: WorkerState) -> usize {
        self.workers.iter().filter(|w| w.state == state).count()
    }
}

fn sort(workers: &mut [WorkerRow]) {
    workers.sort_by(|a, b| (&a.worker, &a.host).cmp(&(&b.worker, &b.host)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use swarm_obs::{HeartbeatState, StateRoot};

    #[test]
    fn files_view_judges_and_reports_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let mut alive = Heartbeat::new("b-alive", Duration::from_secs(60));
        alive.write_to(&root.heartbeat_file("b-alive")).unwrap();
        alive.worker = "a-stopped".into();
        alive.state = HeartbeatState::Stopped;
        alive.write_to(&root.heartbeat_file("a-stopped")).unwrap();
        let source = Source::Files(root.clone());
        let view = WorkersView::load(&source).unwrap();
        let names: Vec<_> = view.workers.iter().map(|w| w.worker.as_str()).collect();
        assert_eq!(names, ["a-stopped", "b-alive"]);
        assert!(view.all_fine());

        std::fs::write(root.heartbeat_file("junk"), b"{\"timestamp\":").unwrap();
        let view = WorkersView::load(&source).unwrap();
        assert_eq!(view.workers.len(), 2);
        assert_eq!(view.unreadable.len(), 1);
        assert!(view.unreadable[0].error.contains("junk.json"));
        assert!(!view.all_fine());
    }

    #[test]
    fn missing_state_root_is_no_workers() {
        let dir = tempfile::tempdir().unwrap();
        let source = Source::Files(StateRoot::new(dir.path().join("nope")));
        let view = WorkersView::load(&source).unwrap();
        assert!(view.workers.is_empty() && view.all_fine());
    }
}
