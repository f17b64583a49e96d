//! Judging heartbeats: is each worker alive, late, down, dead or stopped?
//!
//! The rules follow healthchecks.io: a worker is `late` once its last beat is older
//! than its interval, `down` once it is older than interval + grace (default grace:
//! twice the interval, at least 10 s). A worker on this host whose process is gone,
//! or whose pid now belongs to a younger process, is `dead` at once. [`classify`] is a
//! pure function of the beat, the time and a [`ProcessTable`], so every rule can be
//! tested without processes or clocks.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Heartbeat, HeartbeatError, HeartbeatState, StateRoot, Timestamp};

/// Slack when comparing a process's start time with a heartbeat's `started_at`:
/// start ticks are 1/100 s, and the wall clock may be stepped while a process runs.
const START_TIME_SLACK_MS: i64 = 2_000;

/// A reader's verdict on one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Beating on time.
    Alive,
    /// Last beat older than the interval.
    Late,
    /// Last beat older than interval + grace.
    Down,
    /// Its process is gone (or its pid was reused) on this host.
    Dead,
    /// It shut down cleanly.
    Stopped,
    /// It ended with an error: a non-zero exit (its final beat has the code) or
    /// an error as its last word.
    Failed,
}

impl WorkerState {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Late => "late",
            Self::Down => "down",
            Self::Dead => "dead",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the process table says about a pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessStatus {
    /// No such process.
    Gone,
    /// A process with this pid runs; its start time when known.
    Running {
        /// When the process started.
        started_at: Option<Timestamp>,
    },
    /// Cannot tell (not a Unix host, say).
    Unknown,
}

impl ProcessStatus {
    /// Whether this is no longer the process that started at `started_at`: gone, or
    /// its pid now belongs to a younger process (pid reuse).
    ///
    /// ```
    /// use swarm_obs::{ProcessStatus, Timestamp};
    ///
    /// let t = Timestamp::from_unix_ms(1_000_000);
    /// assert!(ProcessStatus::Gone.ended_since(t));
    /// let younger = ProcessStatus::Running { started_at: Some(Timestamp::from_unix_ms(9_000_000)) };
    /// assert!(younger.ended_since(t));
    /// assert!(!ProcessStatus::Running { started_at: Some(t) }.ended_since(t));
    /// ```
    pub fn ended_since(&self, started_at: Timestamp) -> bool {
        match self {
            Self::Gone => true,
            Self::Running {
                started_at: Some(started),
            } => started.unix_ms() > started_at.unix_ms() + START_TIME_SLACK_MS,
            _ => false,
        }
    }
}

/// Looks up processes on this host; a trait so tests can supply their own.
pub trait ProcessTable {
    /// The status of `pid`.
    fn status(&self, pid: u32) -> ProcessStatus;
}

/// The real process table of this host: `kill(pid, 0)` for existence, and the
/// start time from `/proc/<pid>/stat` (Linux) or `proc_pidinfo` (macOS).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalProcesses;

impl ProcessTable for LocalProcesses {
    fn status(&self, pid: u32) -> ProcessStatus {
        local_status(pid)
    }
}

#[cfg(unix)]
fn local_status(pid: u32) -> ProcessStatus {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return ProcessStatus::Unknown;
    };
    if raw <= 0 {
        return ProcessStatus::Unknown;
    }
    // SAFETY: signal 0 only checks that the pid exists and may be signalled.
    let rc = unsafe { libc::kill(raw, 0) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return ProcessStatus::Gone;
    }
    // Success or EPERM: a process with this pid exists (perhaps another user's).
    ProcessStatus::Running {
        started_at: process_info(pid).and_then(|p| p.started_at),
    }
}

#[cfg(not(unix))]
fn local_status(_pid: u32) -> ProcessStatus {
    ProcessStatus::Unknown
}

/// One process of this host, as the kernel describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid (0 for none).
    pub parent: u32,
    /// The kernel's short name for it (on Linux at most 15 bytes of the program name).
    pub name: String,
    /// When it started, which tells it apart from a later process given the same pid.
    pub started_at: Option<Timestamp>,
}

/// Looks `pid` up on this host: `None` when it is gone, or on platforms other than
/// Linux (`/proc/<pid>/stat`) and macOS (`proc_pidinfo`).
///
/// ```
/// let me = swarm_obs::process_info(std::process::id());
/// # #[cfg(any(target_os = "linux", target_os = "macos"))]
/// assert_eq!(me.map(|p| p.pid), Some(std::process::id()));
/// ```
#[cfg(not(target_os = "macos"))]
pub fn process_info(pid: u32) -> Option<ProcessInfo> {
    // 52 fields of at most 20 digits, and a name of at most 64 bytes.
    let mut buf = [0u8; 2048];
    let stat = read_proc_line(&format!("/proc/{pid}/stat"), &mut buf)?;
    // The name may hold spaces and parentheses: it ends at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After the name come field 3 (state), 4 (ppid) … 22 (starttime).
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let started_at = fields
        .get(19)
        .and_then(|t| t.parse::<u64>().ok())
        .and_then(ticks_after_boot_to_time);
    Some(ProcessInfo {
        pid,
        parent,
        name,
        started_at,
    })
}

/// The one line of a `/proc` file such as `/proc/<pid>/stat`, read into `buf`
/// with as few reads as it takes to see its newline (one, for a line that fits):
/// a hook looks up one or two processes on every run, and `read_to_string` would
/// spend a `statx` and half a dozen growing reads on a file that says it is empty.
#[cfg(not(target_os = "macos"))]
fn read_proc_line<'a>(path: &str, buf: &'a mut [u8]) -> Option<&'a str> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = 0;
    while len < buf.len() && !buf[..len].ends_with(b"\n") {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// Looks `pid` up on this host through `proc_pidinfo(PROC_PIDTBSDINFO)`: one
/// system call, no procfs. `None` when it is gone or not ours to inspect.
#[cfg(target_os = "macos")]
pub fn process_info(pid: u32) -> Option<ProcessInfo> {
    let raw = libc::c_int::try_from(pid).ok().filter(|p| *p > 0)?;
    // SAFETY: proc_bsdinfo is plain old data; all zeroes is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = libc::c_int::try_from(std::mem::size_of::<libc::proc_bsdinfo>()).ok()?;
    // SAFETY: the buffer is a proc_bsdinfo and `size` is its size.
    let n =
        unsafe { libc::proc_pidinfo(raw, libc::PROC_PIDTBSDINFO, 0, (&raw mut info).cast(), size) };
    if n != size {
        return None;
    }
    let text = |chars: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let name = Some(text(&info.pbi_name))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| text(&info.pbi_comm));
    let ms = i64::try_from(info.pbi_start_tvsec)
        .ok()?
        .checked_mul(1000)?
        .checked_add(i64::try_from(info.pbi_start_tvusec / 1000).ok()?)?;
    Some(ProcessInfo {
        pid,
        parent: info.pbi_ppid,
        name,
        started_at: Some(Timestamp::from_unix_ms(ms)),
    })
}

/// A start time in clock ticks after boot (as `/proc/<pid>/stat` gives it) as a
/// timestamp.
#[cfg(not(target_os = "macos"))]
fn ticks_after_boot_to_time(ticks: u64) -> Option<Timestamp> {
    // SAFETY: sysconf has no preconditions.
    #[cfg(unix)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    #[cfg(not(unix))]
    let hz = 100;
    let hz = if hz > 0 { hz as u64 } else { 100 };
    let ms = boot_ms()? + i64::try_from(ticks.checked_mul(1000)? / hz).ok()?;
    Some(Timestamp::from_unix_ms(ms))
}

/// When this host booted, in ms since the epoch: the wall clock less the time
/// since boot, which is how the kernel derives the `btime` of `/proc/stat` too,
/// read from the vDSO clocks instead of a file the kernel assembles from every
/// CPU's counters (a hook pays for each start-up step).
#[cfg(target_os = "linux")]
fn boot_ms() -> Option<i64> {
    // time_t and c_long are i32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let read = |clock| {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes only the timespec given.
        (unsafe { libc::clock_gettime(clock, &mut t) } == 0)
            .then(|| i64::from(t.tv_sec) * 1000 + i64::from(t.tv_nsec) / 1_000_000)
    };
    Some(read(libc::CLOCK_REALTIME)? - read(libc::CLOCK_BOOTTIME)?)
}

/// Elsewhere `/proc/stat` says, where there is one.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn boot_ms() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(secs * 1000)
}

/// The default grace: twice the interval, at least 10 s.
pub fn default_grace(interval: Duration) -> Duration {
    (interval * 2).max(Duration::from_secs(10))
}

/// Classifies a worker from its last heartbeat with the default grace.
///
/// ```
/// use std::time::Duration;
/// use swarm_obs::{classify, Heartbeat, ProcessStatus, ProcessTable, WorkerState};
/// struct AllRunning;
/// impl ProcessTable for AllRunning {
///     fn status(&self, _: u32) -> ProcessStatus { ProcessStatus::Running { started_at: None } }
/// }
/// let hb = Heartbeat::new("backend", Duration::from_secs(5));
/// let later = |ms| swarm_obs::Timestamp::from_unix_ms(hb.timestamp.unix_ms() + ms);
/// assert_eq!(classify(&hb, later(1_000), &AllRunning), WorkerState::Alive);
/// assert_eq!(classify(&hb, later(6_000), &AllRunning), WorkerState::Late);
/// assert_eq!(classify(&hb, later(16_000), &AllRunning), WorkerState::Down);
/// ```
pub fn classify(hb: &Heartbeat, now: Timestamp, processes: &dyn ProcessTable) -> WorkerState {
    classify_with_grace(hb, now, processes, default_grace(hb.interval()))
}

/// Classifies a worker from its last heartbeat with an explicit grace.
pub fn classify_with_grace(
    hb: &Heartbeat,
    now: Timestamp,
    processes: &dyn ProcessTable,
    grace: Duration,
) -> WorkerState {
    match hb.state {
        HeartbeatState::Stopped => return WorkerState::Stopped,
        HeartbeatState::Failed => return WorkerState::Failed,
        _ => {}
    }
    if hb.host == crate::hostname() && processes.status(hb.pid).ended_since(hb.started_at) {
        return WorkerState::Dead;
    }
    let age = hb.timestamp.until(now);
    let interval = hb.interval();
    if age > interval + grace {
        WorkerState::Down
    } else if age > interval {
        WorkerState::Late
    } else {
        WorkerState::Alive
    }
}

/// One heartbeat file and what a reader made of it.
#[derive(Debug)]
pub struct WorkerReport {
    /// The heartbeat file.
    pub path: PathBuf,
    /// The beat and its verdict, or why the file could not be read.
    pub result: Result<(Heartbeat, WorkerState), HeartbeatError>,
}

/// Reads every `heartbeats/*.json` under `root` (sorted by file name) and classifies
/// each at `now`. A missing directory is no workers; an unreadable or half-written
/// file is reported as such, never a panic.
pub fn read_heartbeats(
    root: &StateRoot,
    now: Timestamp,
    processes: &dyn ProcessTable,
) -> std::io::Result<Vec<WorkerReport>> {
    let entries = match std::fs::read_dir(root.heartbeats_dir()) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            // Temporary files of an atomic replace start with a dot.
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let result = Heartbeat::read(&path).map(|hb| {
                let state = classify(&hb, now, processes);
                (hb, state)
            });
            WorkerReport { path, result }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Table(ProcessStatus);
    impl ProcessTable for Table {
        fn status(&self, _: u32) -> ProcessStatus {
            self.0
        }
    }
    const RUNNING: Table = Table(ProcessStatus::Running { started_at: None });

    fn beat(interval_ms: u64) -> Heartbeat {
        let mut hb = Heartbeat::new("w", Duration::from_millis(interval_ms));
        hb.timestamp = Timestamp::from_unix_ms(1_000_000);
        hb.started_at = Timestamp::from_unix_ms(900_000);
        hb
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(1_000_000 + ms)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn boot_time_from_the_clocks_is_the_kernels_btime() {
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        let btime: i64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // btime is whole seconds, truncated.
        let ms = super::boot_ms().unwrap();
        assert!((ms - btime * 1000).abs() < 1500, "{ms} vs {btime} s");
    }

    #[test]
    fn boundaries_with_default_grace() {
        // interval 5 s: grace max(10 s, 10 s) = 10 s, down after 15 s.
        let hb = beat(5_000);
        for (age, want) in [
            (-500, WorkerState::Alive), // a reader's clock a little behind
            (0, WorkerState::Alive),
            (5_000, WorkerState::Alive),
            (5_001, WorkerState::Late),
            (15_000, WorkerState::Late),
            (15_001, WorkerState::Down),
        ] {
            assert_eq!(classify(&hb, at(age), &RUNNING), want, "age {age}");
        }
        // interval 20 s: grace 40 s, down after 60 s.
        let hb = beat(20_000);
        assert_eq!(classify(&hb, at(60_000), &RUNNING), WorkerState::Late);
        assert_eq!(classify(&hb, at(60_001), &RUNNING), WorkerState::Down);
        // interval 1 s with a 2 s grace: down after 3 s.
        let hb = beat(1_000);
        let g = Duration::from_secs(2);
        assert_eq!(
            classify_with_grace(&hb, at(3_000), &RUNNING, g),
            WorkerState::Late
        );
        assert_eq!(
            classify_with_grace(&hb, at(3_001), &RUNNING, g),
            WorkerState::Down
        );
    }

    #[test]
    fn dead_when_gone_or_reused_on_this_host() {
        let hb = beat(5_000);
        assert_eq!(
            classify(&hb, at(0), &Table(ProcessStatus::Gone)),
            WorkerState::Dead
        );
        let started = |ms| {
            Table(ProcessStatus::Running {
                started_at: Some(Timestamp::from_unix_ms(ms)),
            })
        };
        // Started before the writer (or within the slack): the same process.
        assert_eq!(classify(&hb, at(0), &started(800_000)), WorkerState::Alive);
        assert_eq!(classify(&hb, at(0), &started(902_000)), WorkerState::Alive);
        // Younger than the worker: the pid was reused.
        assert_eq!(classify(&hb, at(0), &started(902_001)), WorkerState::Dead);
        assert_eq!(
            classify(&hb, at(0), &Table(ProcessStatus::Unknown)),
            WorkerState::Alive
        );
        // Another host's pid says nothing about this host's processes.
        let mut remote = hb.clone();
        remote.host = format!("{}-elsewhere", remote.host);
        assert_eq!(
            classify(&remote, at(0), &Table(ProcessStatus::Gone)),
            WorkerState::Alive
        );
    }

    #[test]
    fn stopped_wins() {
        let mut hb = beat(5_000);
        hb.state = HeartbeatState::Stopped;
        assert_eq!(
            classify(&hb, at(1_000_000), &Table(ProcessStatus::Gone)),
            WorkerState::Stopped
        );
    }

    #[test]
    fn local_processes_know_this_process() {
        let me = LocalProcesses.status(std::process::id());
        let ProcessStatus::Running { started_at } = me else {
            panic!("this process is running: {me:?}");
        };
        if let Some(started) = started_at {
            // This process started before now.
            assert!(started.unix_ms() <= Timestamp::now().unix_ms() + START_TIME_SLACK_MS);
        }
        // A pid far above any pid_max is gone.
        assert_eq!(LocalProcesses.status(0x3FFF_FFFF), ProcessStatus::Gone);
    }

    #[test]
    fn reader_reports_garbage_and_skips_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let hb = Heartbeat::new("good", Duration::from_secs(5));
        hb.write_to(&root.heartbeat_file("good")).unwrap();
        std::fs::write(root.heartbeat_file("torn"), b"{\"timestamp\":\"2026").unwrap();
        std::fs::write(root.heartbeats_dir().join(".good.json.1.tmp"), b"{").unwrap();
        let reports = read_heartbeats(&root, hb.timestamp, &RUNNING).unwrap();
        assert_eq!(reports.len(), 2);
        let (got, state) = reports[0].result.as_ref().unwrap();
        assert_eq!((got.worker.as_str(), *state), ("good", WorkerState::Alive));
        let err = reports[1].result.as_ref().unwrap_err().to_string();
        assert!(
            err.contains("torn.json") && err.contains("not a valid"),
            "{err}"
        );
        let empty = StateRoot::new(dir.path().join("none"));
        assert!(
            read_heartbeats(&empty, hb.timestamp, &RUNNING)
                .unwrap()
                .is_empty()
        );
    }
}
