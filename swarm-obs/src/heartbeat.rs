//! Heartbeats: `heartbeats/<source>.json`, replaced atomically every interval by a
//! background thread, so a reader can tell a busy worker from a stuck or dead one.
//!
//! ```json
//! {"timestamp":"2026-01-05T14:32:15.000Z","worker":"backend","task":"TASK_123",
//!  "action":"Analysing file X","progress":{"done":3,"total":5},"pid":4242,
//!  "host":"build-1","started_at":"2026-01-05T14:30:00.000Z","interval_ms":5000,
//!  "state":"working","seq":27,"dropped":0}
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Progress, StateRoot, Timestamp};

/// The interval between beats unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// What a worker says it is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeartbeatState {
    /// Started, no task yet.
    #[default]
    Starting,
    /// Working on a task.
    Working,
    /// Between tasks.
    Idle,
    /// Shut down cleanly; no more beats will come.
    Stopped,
    /// Ended with an error (a non-zero exit, or an error as its last word); no more
    /// beats will come.
    Failed,
}

impl HeartbeatState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Working,
            2 => Self::Idle,
            3 => Self::Stopped,
            4 => Self::Failed,
            _ => Self::Starting,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Starting => 0,
            Self::Working => 1,
            Self::Idle => 2,
            Self::Stopped => 3,
            Self::Failed => 4,
        }
    }
}

/// One heartbeat: the contents of `heartbeats/<source>.json`.
///
/// ```
/// use swarm_obs::{Heartbeat, HeartbeatState};
/// let hb = Heartbeat::new("backend", std::time::Duration::from_secs(5));
/// assert_eq!(hb.state, HeartbeatState::Starting);
/// let back: Heartbeat = serde_json::from_slice(&hb.to_json()).unwrap();
/// assert_eq!(back, hb);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// When this beat was written.
    pub timestamp: Timestamp,
    /// The worker's source name.
    pub worker: String,
    /// The current task, if any.
    #[serde(default)]
    pub task: Option<String>,
    /// What the worker is doing within the task.
    #[serde(default)]
    pub action: Option<String>,
    /// Progress of the task.
    #[serde(default)]
    pub progress: Option<Progress>,
    /// The worker's process id.
    pub pid: u32,
    /// The host the worker runs on.
    pub host: String,
    /// When the heartbeat writer started (no earlier than the process itself).
    pub started_at: Timestamp,
    /// Promised time between beats.
    pub interval_ms: u64,
    /// What the worker says it is doing.
    #[serde(default)]
    pub state: HeartbeatState,
    /// Beat number, from 0.
    #[serde(default)]
    pub seq: u64,
    /// Log lines the worker dropped because its queue was full.
    #[serde(default)]
    pub dropped: u64,
    /// The exit code of the process the beats speak for, in the final beat of a
    /// supervisor that saw it exit (`swarm-obs run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Heartbeat {
    /// A first beat for `worker` in this process, stamped now.
    pub fn new(worker: impl Into<String>, interval: Duration) -> Self {
        let now = Timestamp::now();
        Self {
            timestamp: now,
            worker: worker.into(),
            task: None,
            action: None,
            progress: None,
            pid: std::process::id(),
            host: crate::hostname().to_owned(),
            started_at: now,
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            state: HeartbeatState::Starting,
            seq: 0,
            dropped: 0,
            exit_code: None,
        }
    }

    /// The promised interval between beats.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The beat as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and numbers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Replaces the file at `path` with this beat atomically (see [`crate::write_atomic`]).
    pub fn write_to(&self, path: &Path) -> io::Result<()> {
        crate::write_atomic(path, &self.to_json())
    }

    /// Reads and parses one heartbeat file.
    pub fn read(path: &Path) -> Result<Self, HeartbeatError> {
        let bytes = std::fs::read(path).map_err(|source| HeartbeatError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| HeartbeatError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

/// A heartbeat file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// Reading the file failed.
    #[error("cannot read heartbeat file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a heartbeat (garbage, or written by something else).
    #[error(
        "heartbeat file {path} is not a valid heartbeat: {source} (delete it if no worker owns it)"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// Starting the heartbeat thread failed.
    #[error("cannot start the heartbeat thread: {0}")]
    Spawn(io::Error),
}

/// The fields a [`HeartbeatHandle`] changes, shared with the writer thread.
#[derive(Debug)]
struct Shared {
    worker: String,
    interval: Duration,
    started_at: Timestamp,
    state: AtomicU8,
    progress_done: AtomicU64,
    // `u64::MAX` means no progress is set.
    progress_total: AtomicU64,
    dropped: Arc<AtomicU64>,
    // The process the beats speak for; 0 means this one.
    pid: AtomicU32,
    // While set, the writer skips beats (see `HeartbeatHandle::hold`).
    held: AtomicBool,
    // Set to make the writer beat before its interval is up.
    beat_now: AtomicBool,
    // Task and action: strings, so a small mutex whose buffers are reused.
    text: Mutex<Text>,
    // The final beat says `failed` when either is set.
    failing: AtomicBool,
    exit_code: Mutex<Option<i32>>,
    // Task and action often quote a command line: secrets in them are redacted.
    redactor: crate::Redactor,
    stop: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
}

#[derive(Debug, Default)]
struct Text {
    task: String,
    action: String,
}

/// A cheap, cloneable handle to set what the worker is doing, from any thread.
///
/// Setting a task or action copies the text into buffers reused from beat to beat, so
/// after the first few calls it does not allocate; progress and state are atomics.
#[derive(Clone, Debug)]
pub struct HeartbeatHandle {
    shared: Arc<Shared>,
}

impl HeartbeatHandle {
    /// Sets the current task (empty clears it) and marks the worker `working`.
    pub fn set_task(&self, task: &str) {
        {
            let mut text = self.lock_text();
            text.task.clear();
            text.task.push_str(task);
            self.shared.redactor.redact_string(&mut text.task);
            text.action.clear();
        }
        self.clear_progress();
        self.set_state(if task.is_empty() {
            HeartbeatState::Idle
        } else {
            HeartbeatState::Working
        });
    }

    /// The current task, if one is set.
    pub fn task(&self) -> Option<String> {
        non_empty(&self.lock_text().task)
    }

    /// Sets what the worker is doing within its task.
    pub fn set_action(&self, action: &str) {
        let mut text = self.lock_text();
        text.action.clear();
        text.action.push_str(action);
        self.shared.redactor.redact_string(&mut text.action);
    }

    /// Sets the progress of the current task.
    pub fn set_progress(&self, done: u64, total: u64) {
        self.shared.progress_done.store(done, Ordering::Relaxed);
        self.shared
            .progress_total
            .store(total.min(u64::MAX - 1), Ordering::Relaxed);
    }

    /// Clears the progress.
    pub fn clear_progress(&self) {
        self.shared
            .progress_total
            .store(u64::MAX, Ordering::Relaxed);
    }

    /// Sets the state (`working`, `idle`, …).
    pub fn set_state(&self, state: HeartbeatState) {
        self.shared.state.store(state.as_u8(), Ordering::Relaxed);
    }

    /// Marks the task finished: the worker is `idle`, with the task and progress kept
    /// so the last beat says what was finished.
    pub fn task_done(&self) {
        self.set_state(HeartbeatState::Idle);
    }

    /// Whether the worker's last word so far is an error: if it stops now, its
    /// final beat says `failed` instead of `stopped`. The log layer sets it on each
    /// error and clears it on the next event of info level or above.
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::Relaxed);
    }

    /// Records the exit code of the process the beats speak for (see
    /// [`set_pid`](Self::set_pid)): the final beat carries it, and says `failed`
    /// when it is not 0.
    ///
    /// ```
    /// use swarm_obs::{Heartbeat, HeartbeatState, HeartbeatWriter, StateRoot};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let root = StateRoot::new(dir.path());
    /// let hb = HeartbeatWriter::start(&root, "job", std::time::Duration::from_secs(5)).unwrap();
    /// hb.handle().set_exit_code(3);
    /// let path = hb.path().to_owned();
    /// hb.stop();
    /// let last = Heartbeat::read(&path).unwrap();
    /// assert_eq!((last.state, last.exit_code), (HeartbeatState::Failed, Some(3)));
    /// ```
    pub fn set_exit_code(&self, code: i32) {
        *self
            .shared
            .exit_code
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(code);
    }

    /// Makes the beats speak for another process, such as the child a supervisor
    /// runs: readers then judge the worker `dead` when that process is gone. Start
    /// the writer no later than the process (readers take a process younger than
    /// `started_at` for a reused pid).
    pub fn set_pid(&self, pid: u32) {
        self.shared.pid.store(pid, Ordering::Relaxed);
    }

    /// Stops the beats advancing until [`resume`](Self::resume): for a worker that
    /// still runs but has shown no sign of life, so readers judge it `late`, then
    /// `down`, by the usual rules. The final `stopped` beat is written regardless.
    pub fn hold(&self) {
        self.shared.held.store(true, Ordering::Relaxed);
    }

    /// Lets the beats advance again after [`hold`](Self::hold), with a beat at once.
    pub fn resume(&self) {
        let s = &self.shared;
        if s.held.swap(false, Ordering::Relaxed) {
            let _guard = s.wake_lock.lock().unwrap_or_else(|p| p.into_inner());
            s.beat_now.store(true, Ordering::SeqCst);
            s.wake.notify_all();
        }
    }

    /// Whether the beats are held.
    pub fn is_held(&self) -> bool {
        self.shared.held.load(Ordering::Relaxed)
    }

    /// The counter of dropped log lines this heartbeat reports; the log layer adds to it.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.shared.dropped.clone()
    }

    /// The heartbeat as it would be written now (`seq` left at 0).
    pub fn snapshot(&self) -> Heartbeat {
        let s = &self.shared;
        let (task, action) = {
            let text = self.lock_text();
            (non_empty(&text.task), non_empty(&text.action))
        };
        let total = s.progress_total.load(Ordering::Relaxed);
        Heartbeat {
            timestamp: Timestamp::now(),
            worker: s.worker.clone(),
            task,
            action,
            progress: (total != u64::MAX).then(|| Progress {
                done: s.progress_done.load(Ordering::Relaxed),
                total,
            }),
            pid: match s.pid.load(Ordering::Relaxed) {
                0 => std::process::id(),
                pid => pid,
            },
            host: crate::hostname().to_owned(),
            started_at: s.started_at,
            interval_ms: u64::try_from(s.interval.as_millis()).unwrap_or(u64::MAX),
            state: HeartbeatState::from_u8(s.state.load(Ordering::Relaxed)),
            seq: 0,
            dropped: s.dropped.load(Ordering::Relaxed),
            exit_code: *s.exit_code.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    fn lock_text(&self) -> std::sync::MutexGuard<'_, Text> {
        // A panic while holding the lock leaves only plain strings behind.
        self.shared.text.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Writes `heartbeats/<source>.json` every interval from a background thread.
///
/// Dropping it (or calling [`stop`](Self::stop)) writes a final `stopped` beat.
///
/// ```
/// use std::time::Duration;
/// use swarm_obs::{Heartbeat, HeartbeatState, HeartbeatWriter, StateRoot};
/// let dir = tempfile::tempdir().unwrap();
/// let root = StateRoot::new(dir.path());
/// let writer = HeartbeatWriter::start(&root, "backend", Duration::from_secs(5)).unwrap();
/// writer.handle().set_task("TASK_123");
/// writer.stop();
/// let hb = Heartbeat::read(&root.heartbeat_file("backend")).unwrap();
/// assert_eq!(hb.state, HeartbeatState::Stopped);
/// assert_eq!(hb.task.as_deref(), Some("TASK_123"));
/// ```
#[derive(Debug)]
#[must_use = "dropping the writer stops the heartbeat"]
pub struct HeartbeatWriter {
    handle: HeartbeatHandle,
    path: PathBuf,
    thread: Option<JoinHandle<u64>>,
}

impl HeartbeatWriter {
    /// Writes a first `starting` beat now, then one every `interval`.
    pub fn start(
        root: &StateRoot,
        source: &str,
        interval: Duration,
    ) -> Result<Self, HeartbeatError> {
        Self::start_with_counter(
            root,
            source,
            interval,
            Arc::new(AtomicU64::new(0)),
            crate::Redactor::default(),
        )
    }

    /// Like [`start`](Self::start), reporting `dropped` as the dropped-line count
    /// and redacting task and action with `redactor` (the configured one).
    pub fn start_with_counter(
        root: &StateRoot,
        source: &str,
        interval: Duration,
        dropped: Arc<AtomicU64>,
        redactor: crate::Redactor,
    ) -> Result<Self, HeartbeatError> {
        let interval = interval.max(Duration::from_millis(1));
        let shared = Arc::new(Shared {
            worker: source.to_owned(),
            interval,
            started_at: Timestamp::now(),
            state: AtomicU8::new(HeartbeatState::Starting.as_u8()),
            progress_done: AtomicU64::new(0),
            progress_total: AtomicU64::new(u64::MAX),
            dropped,
            pid: AtomicU32::new(0),
            held: AtomicBool::new(false),
            beat_now: AtomicBool::new(false),
            text: Mutex::new(Text::default()),
            failing: AtomicBool::new(false),
            exit_code: Mutex::new(None),
            redactor,
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
        });
        let handle = HeartbeatHandle { shared };
        let path = root.heartbeat_file(source);
        let thread_handle = handle.clone();
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("swarm-obs-heartbeat".into())
            .spawn(move || beat_loop(&thread_handle, &thread_path))
            .map_err(HeartbeatError::Spawn)?;
        Ok(Self {
            handle,
            path,
            thread: Some(thread),
        })
    }

    /// A handle to set task, action, progress and state from any thread.
    pub fn handle(&self) -> &HeartbeatHandle {
        &self.handle
    }

    /// The heartbeat file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the thread and writes the final `stopped` beat.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let s = &self.handle.shared;
        {
            let _guard = s.wake_lock.lock().unwrap_or_else(|p| p.into_inner());
            s.stop.store(true, Ordering::SeqCst);
            s.wake.notify_all();
        }
        let seq = thread.join().unwrap_or(0);
        let exit = *s.exit_code.lock().unwrap_or_else(|p| p.into_inner());
        let failed = s.failing.load(Ordering::Relaxed) || exit.is_some_and(|c| c != 0);
        self.handle.set_state(if failed {
            HeartbeatState::Failed
        } else {
            HeartbeatState::Stopped
        });
        let mut last = self.handle.snapshot();
        last.seq = seq;
        // Nowhere to report a failure while shutting down; the file keeps the last beat.
        let _ = last.write_to(&self.path);
    }
}

impl Drop for HeartbeatWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long the writer waits between beats: a little less than the promised
/// interval. Readers call a worker late the moment its last beat is older than the
/// interval, so a beat due exactly then would often land a few milliseconds after a
/// reader looked (scheduling, the write itself), and a healthy worker would flicker
/// late. A worker stalled for longer than this lead is late, as it should be.
fn beat_period(interval: Duration) -> Duration {
    interval - (interval / 10).min(Duration::from_millis(250))
}

/// Writes beats until told to stop; returns the next sequence number.
fn beat_loop(handle: &HeartbeatHandle, path: &Path) -> u64 {
    let s = &handle.shared;
    let mut seq = 0;
    loop {
        if !s.held.load(Ordering::Relaxed) {
            let mut beat = handle.snapshot();
            beat.seq = seq;
            seq += 1;
            // A failed beat (disk full, say) is retried at the next interval; readers
            // see the worker late, which is the truth.
            let _ = beat.write_to(path);
        }
        let guard = s.wake_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (_guard, _) = s
            .wake
            .wait_timeout_while(guard, beat_period(s.interval), |_| {
                !s.stop.load(Ordering::SeqCst) && !s.beat_now.load(Ordering::SeqCst)
            })
            .unwrap_or_else(|p| p.into_inner());
        s.beat_now.store(false, Ordering::SeqCst);
        if s.stop.load(Ordering::SeqCst) {
            return seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_land_before_the_interval_is_up() {
        assert_eq!(
            beat_period(Duration::from_secs(5)),
            Duration::from_millis(4_750)
        );
        assert_eq!(
            beat_period(Duration::from_secs(1)),
            Duration::from_millis(900)
        );
        assert_eq!(
            beat_period(Duration::from_millis(1)),
            Duration::from_micros(900)
        );
    }

    #[test]
    fn writer_beats_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let w = HeartbeatWriter::start(&root, "w/1", Duration::from_millis(5)).unwrap();
        let h = w.handle().clone();
        h.set_task("TASK_1");
        h.set_action("Analysing file X");
        h.set_progress(3, 5);
        h.dropped_counter().fetch_add(7, Ordering::Relaxed);
        // Wait for a beat that carries the progress, without timing anything.
        let path = w.path().to_owned();
        let mut seen = None;
        for _ in 0..10_000 {
            if let Ok(hb) = Heartbeat::read(&path)
                && hb.progress.is_some()
            {
                seen = Some(hb);
                break;
            }
            std::thread::yield_now();
        }
        let hb = seen.expect("a beat with progress");
        assert_eq!(hb.worker, "w/1");
        assert_eq!(hb.state, HeartbeatState::Working);
        assert_eq!(hb.progress, Some(Progress { done: 3, total: 5 }));
        assert_eq!(hb.dropped, 7);
        assert_eq!(hb.pid, std::process::id());
        assert_eq!(hb.interval_ms, 5);
        drop(w);
        let last = Heartbeat::read(&path).unwrap();
        assert_eq!(last.state, HeartbeatState::Stopped);
        assert!(last.seq >= hb.seq);
        assert_eq!(last.action.as_deref(), Some("Analysing file X"));
    }

    #[test]
    fn file_is_always_a_complete_object_under_concurrent_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeats/backend.json");
        let mut hb = Heartbeat::new("backend", Duration::from_secs(5));
        hb.action = Some("x".repeat(3000));
        hb.write_to(&path).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (path, done) = (path.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    let mut last_seq = 0;
                    while !done.load(Ordering::SeqCst) {
                        let hb = Heartbeat::read(&path).expect("complete heartbeat");
                        assert!(hb.seq >= last_seq, "beats go forward");
                        last_seq = hb.seq;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for seq in 1..=10_000 {
            hb.seq = seq;
            hb.write_to(&path).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        for r in readers {
            assert!(r.join().expect("reader saw only whole files") > 0);
        }
        assert_eq!(Heartbeat::read(&path).unwrap().seq, 10_000);
    }

    #[test]
    fn held_beats_do_not_advance_and_pid_can_be_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let w = HeartbeatWriter::start(&root, "w", Duration::from_millis(1)).unwrap();
        let h = w.handle().clone();
        h.set_pid(4242);
        let path = w.path().to_owned();
        let read_until = |want: &dyn Fn(&Heartbeat) -> bool| {
            for _ in 0..100_000 {
                if let Ok(hb) = Heartbeat::read(&path)
                    && want(&hb)
                {
                    return hb;
                }
                std::thread::yield_now();
            }
            panic!("no such beat");
        };
        read_until(&|hb| hb.pid == 4242);
        h.hold();
        assert!(h.is_held());
        // A beat in flight may land after `hold`; after it, none.
        std::thread::sleep(Duration::from_millis(20));
        let held = Heartbeat::read(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(Heartbeat::read(&path).unwrap().seq, held.seq);
        h.resume();
        read_until(&|hb| hb.seq > held.seq);
        h.hold();
        w.stop();
        let last = Heartbeat::read(&path).unwrap();
        assert_eq!((last.state, last.pid), (HeartbeatState::Stopped, 4242));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        for bad in [&b""[..], b"{\"timestamp\":", b"\xff\xfe", b"[]", b"null"] {
            std::fs::write(&path, bad).unwrap();
            let e = Heartbeat::read(&path).unwrap_err().to_string();
            assert!(e.contains("not a valid heartbeat"), "{e}");
        }
        let e = Heartbeat::read(&dir.path().join("missing.json")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
