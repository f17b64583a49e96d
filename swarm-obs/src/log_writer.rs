//! The writer behind [`SwarmLayer`](crate::SwarmLayer).
//!
//! The calling thread redacts and formats each event into thread-local buffers and
//! appends the bytes to a shared, bounded batch; one background thread swaps the batch
//! out and writes the event log, the text log and stderr with a few large writes, then
//! hands the JSON lines to the shipper. Formatting on the caller keeps every
//! allocation on the thread that made it: handing heap objects to another thread to
//! free makes the allocator itself the bottleneck.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::notify::NotifyHandle;
use crate::shipper::ShipperQueue;
use crate::{Event, EventLog, HeartbeatHandle, Kind, Redactor};

const DAY_MS: i64 = 86_400_000;
/// How long the writer lets events gather after it wakes for one: waking it costs
/// the caller a system call, so under a stream of events that should happen once
/// per batch, not once per event.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);
/// Batch buffers grown past this by a burst are shrunk back after the write.
const KEEP_BUFFER_BYTES: usize = 4 << 20;
/// The writer thread's name (the panic hook must not wait for it).
pub(crate) const THREAD_NAME: &str = "swarm-obs-writer";

/// What a full queue does to the next event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the event and count it in the heartbeat's `dropped` (the default: a worker
    /// is never slowed by its logging).
    #[default]
    Drop,
    /// Wait for room: nothing is lost, but a flood of events slows the caller.
    Block,
}

/// Where events go and how they are prepared; filled in by the builder.
#[derive(Debug)]
pub(crate) struct Sinks {
    pub(crate) events: Option<EventLog>,
    pub(crate) text: Option<RotatingFile>,
    pub(crate) stderr: bool,
    pub(crate) offset_secs: i32,
    pub(crate) redactor: Redactor,
    pub(crate) heartbeat: Option<HeartbeatHandle>,
    /// Shippers to the collector and, with the `otlp` feature, an OTLP receiver.
    pub(crate) shippers: Vec<ShipperQueue>,
    pub(crate) notify: Option<NotifyHandle>,
    pub(crate) dropped: Arc<AtomicU64>,
}

impl Sinks {
    pub(crate) fn new(redactor: Redactor, dropped: Arc<AtomicU64>) -> Self {
        Self {
            events: None,
            text: None,
            stderr: false,
            offset_secs: 0,
            redactor,
            heartbeat: None,
            shippers: Vec::new(),
            notify: None,
            dropped,
        }
    }
}

/// How the caller prepares events: shared, read-only.
#[derive(Debug)]
struct Prepare {
    json: bool,
    human: bool,
    offset_secs: i32,
    redactor: Redactor,
    heartbeat: Option<HeartbeatHandle>,
    notify: Option<NotifyHandle>,
}

impl Prepare {
    /// Redacts `ev`, updates the heartbeat from it, and offers start, done and error
    /// events to the notifier (after redaction: a notification is shown on screen).
    fn prepare(&self, ev: &mut Event) {
        self.redactor.redact_event(ev);
        if let Some(hb) = &self.heartbeat {
            update_heartbeat(hb, ev);
        }
        if let Some(notify) = &self.notify
            && matches!(ev.kind, Kind::Start | Kind::Done | Kind::Error)
        {
            notify.notify(ev);
        }
    }
}

/// Follows what the worker reports: `start!` sets the task, `progress!` the progress
/// and action, `done!` makes it idle. Progress and done events without a task of
/// their own are given the current one, so a viewer can group them.
fn update_heartbeat(hb: &HeartbeatHandle, ev: &mut Event) {
    // An error as the last word makes a stop `failed`; a later word of info or
    // above takes it back.
    if ev.level >= crate::Level::Error || ev.kind == Kind::Error {
        hb.set_failing(true);
    } else if ev.level >= crate::Level::Info {
        hb.set_failing(false);
    }
    if matches!(ev.kind, Kind::Progress | Kind::Done) && ev.task.is_none() {
        ev.task = hb.task();
    }
    match ev.kind {
        Kind::Start => {
            hb.set_task(ev.task.as_deref().unwrap_or(&ev.msg));
            hb.set_action(&ev.msg);
        }
        Kind::Progress => {
            if let Some(p) = ev.progress {
                hb.set_progress(p.done, p.total);
            }
            hb.set_action(&ev.msg);
            hb.set_state(crate::HeartbeatState::Working);
        }
        Kind::Done => {
            hb.set_action(&ev.msg);
            hb.task_done();
        }
        _ => {}
    }
}

/// JSON lines of one UTC day.
#[derive(Debug, Default)]
struct DayChunk {
    day: String,
    day_ms: std::ops::Range<i64>,
    json: Vec<u8>,
    events: usize,
}

/// Lines waiting for the writer.
#[derive(Debug, Default)]
struct Batch {
    chunks: Vec<DayChunk>,
    human: String,
    events: usize,
}

impl Batch {
    fn push(&mut self, ts_ms: i64, day: impl FnOnce() -> String, json: &[u8], human: &str) {
        if !json.is_empty() {
            if !self
                .chunks
                .last()
                .is_some_and(|c| c.day_ms.contains(&ts_ms))
            {
                let start = ts_ms.div_euclid(DAY_MS) * DAY_MS;
                self.chunks.push(DayChunk {
                    day: day(),
                    day_ms: start..start + DAY_MS,
                    json: Vec::new(),
                    events: 0,
                });
            }
            if let Some(c) = self.chunks.last_mut() {
                c.json.extend_from_slice(json);
                c.events += 1;
            }
        }
        self.human.push_str(human);
        self.events += 1;
    }
}

#[derive(Debug, Default)]
struct State {
    batch: Batch,
    writer_waiting: bool,
    flush_requested: u64,
    flush_done: u64,
    stop: bool,
    stopped: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    // The writer waits here for work; callers wait on `room` (blocking mode) and
    // flushers on `flushed`.
    work: Condvar,
    room: Condvar,
    flushed: Condvar,
    capacity: usize,
    overflow: Overflow,
    dropped: Arc<AtomicU64>,
    prepare: Prepare,
    outputs: Mutex<Outputs>,
}

/// The files and queues the writer thread writes to.
#[derive(Debug)]
struct Outputs {
    events: Option<EventLog>,
    text: Option<RotatingFile>,
    stderr: bool,
    shippers: Vec<ShipperQueue>,
}

impl Outputs {
    /// Writes a batch; lines that could not reach the event log are counted in `dropped`.
    fn write(&mut self, batch: &mut Batch, dropped: &AtomicU64) {
        for chunk in &mut batch.chunks {
            if let Some(log) = &self.events
                && log.append_line(&chunk.day, &chunk.json).is_err()
            {
                dropped.fetch_add(chunk.events as u64, Ordering::Relaxed);
            }
            if let Some((last, others)) = self.shippers.split_last() {
                for ship in others {
                    ship.offer(chunk.json.clone(), chunk.events);
                }
                last.offer(std::mem::take(&mut chunk.json), chunk.events);
            }
        }
        batch.chunks.clear();
        if !batch.human.is_empty() {
            if let Some(text) = &mut self.text {
                // Text lines mirror the event log; a failed write there loses nothing
                // the event log does not still hold.
                let _ = text.write(batch.human.as_bytes());
            }
            if self.stderr {
                let _ = io::stderr().lock().write_all(batch.human.as_bytes());
            }
            batch.human.clear();
            if batch.human.capacity() > KEEP_BUFFER_BYTES {
                batch.human.shrink_to(KEEP_BUFFER_BYTES / 4);
            }
        }
        batch.events = 0;
    }
}

thread_local! {
    /// Per-thread scratch for one event's JSON and human lines.
    static SCRATCH: std::cell::RefCell<(Vec<u8>, String)> =
        const { std::cell::RefCell::new((Vec::new(), String::new())) };
}

/// The caller's side of the queue: cheap to clone, never blocks in `Overflow::Drop` mode.
#[derive(Clone, Debug)]
pub(crate) struct LogQueue {
    shared: Arc<Shared>,
}

impl LogQueue {
    pub(crate) fn push(&self, mut ev: Event) {
        let s = &*self.shared;
        s.prepare.prepare(&mut ev);
        let append = |json: &[u8], human: &str| {
            let mut st = lock(&s.state);
            loop {
                if st.stopped {
                    break false;
                }
                if st.batch.events < s.capacity {
                    st.batch.push(ev.ts.unix_ms(), || ev.ts.day(), json, human);
                    if st.writer_waiting {
                        st.writer_waiting = false;
                        s.work.notify_one();
                    }
                    break true;
                }
                match s.overflow {
                    Overflow::Drop => break false,
                    Overflow::Block => {
                        st = s.room.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
        };
        let fmt_and_append = |(json, human): &mut (Vec<u8>, String)| {
            json.clear();
            human.clear();
            if s.prepare.json {
                // Serialising an event of strings, numbers and JSON values cannot fail.
                let _ = serde_json::to_writer(&mut *json, &ev);
                json.push(b'\n');
            }
            if s.prepare.human {
                ev.push_human_line(human, s.prepare.offset_secs);
                human.push('\n');
            }
            append(json, human)
        };
        let added = SCRATCH
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut scratch) => fmt_and_append(&mut scratch),
                // Re-entered (an event logged while formatting one): fresh buffers.
                Err(_) => fmt_and_append(&mut (Vec::new(), String::new())),
            })
            // Thread-local storage is gone while the thread exits: fresh buffers.
            .unwrap_or_else(|_| fmt_and_append(&mut (Vec::new(), String::new())));
        if !added {
            s.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes `ev` now, on this thread, past the queue: for the panic hook, whose
    /// process may be about to die. Lines still queued are written first.
    pub(crate) fn write_now(&self, mut ev: Event) {
        let s = &*self.shared;
        s.prepare.prepare(&mut ev);
        let mut batch = std::mem::take(&mut lock(&s.state).batch);
        let mut json = Vec::new();
        let mut human = String::new();
        if s.prepare.json {
            let _ = serde_json::to_writer(&mut json, &ev);
            json.push(b'\n');
        }
        if s.prepare.human {
            ev.push_human_line(&mut human, s.prepare.offset_secs);
            human.push('\n');
        }
        batch.push(ev.ts.unix_ms(), || ev.ts.day(), &json, &human);
        lock(&s.outputs).write(&mut batch, &s.dropped);
        s.room.notify_all();
    }

    /// Waits until every event queued before this call is written; false when the
    /// writer has stopped.
    pub(crate) fn flush(&self) -> bool {
        let s = &*self.shared;
        let mut st = lock(&s.state);
        st.flush_requested += 1;
        let ticket = st.flush_requested;
        s.work.notify_one();
        while st.flush_done < ticket && !st.stopped {
            st = s.flushed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.flush_done >= ticket
    }

    pub(crate) fn dropped(&self) -> &Arc<AtomicU64> {
        &self.shared.dropped
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only buffers and files are behind these locks; a panic mid-write leaves them usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The queue and the writer thread not yet started (tests fill the queue first).
pub(crate) struct PendingWriter {
    shared: Arc<Shared>,
}

/// Creates the queue of `capacity` events feeding `sinks`.
pub(crate) fn channel(
    capacity: usize,
    overflow: Overflow,
    sinks: Sinks,
) -> (LogQueue, PendingWriter) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        work: Condvar::new(),
        room: Condvar::new(),
        flushed: Condvar::new(),
        capacity: capacity.max(1),
        overflow,
        dropped: sinks.dropped,
        prepare: Prepare {
            json: sinks.events.is_some() || !sinks.shippers.is_empty(),
            human: sinks.text.is_some() || sinks.stderr,
            offset_secs: sinks.offset_secs,
            redactor: sinks.redactor,
            heartbeat: sinks.heartbeat,
            notify: sinks.notify,
        },
        outputs: Mutex::new(Outputs {
            events: sinks.events,
            text: sinks.text,
            stderr: sinks.stderr,
            shippers: sinks.shippers,
        }),
    });
    (
        LogQueue {
            shared: shared.clone(),
        },
        PendingWriter { shared },
    )
}

impl PendingWriter {
    pub(crate) fn spawn(self) -> io::Result<WriterThread> {
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || write_loop(&shared))?;
        Ok(WriterThread {
            thread: Some(thread),
        })
    }
}

/// The running writer thread.
#[derive(Debug)]
pub(crate) struct WriterThread {
    thread: Option<JoinHandle<()>>,
}

impl WriterThread {
    /// Writes everything queued, then ends the thread; later events are dropped
    /// and counted.
    pub(crate) fn stop(&mut self, queue: &LogQueue) {
        if let Some(t) = self.thread.take() {
            {
                let mut st = lock(&queue.shared.state);
                st.stop = true;
                queue.shared.work.notify_one();
            }
            let _ = t.join();
        }
    }
}

fn write_loop(s: &Shared) {
    let mut spare = Batch::default();
    loop {
        let mut st = lock(&s.state);
        while st.batch.events == 0 && st.flush_done == st.flush_requested && !st.stop {
            st.writer_waiting = true;
            st = s.work.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.writer_waiting = false;
        if st.flush_done == st.flush_requested && !st.stop {
            // Woken by an event: let more gather before writing.
            drop(st);
            std::thread::sleep(GATHER);
            st = lock(&s.state);
        }
        std::mem::swap(&mut st.batch, &mut spare);
        let ticket = st.flush_requested;
        let stop = st.stop;
        drop(st);
        s.room.notify_all();
        lock(&s.outputs).write(&mut spare, &s.dropped);
        let mut st = lock(&s.state);
        st.flush_done = ticket;
        if stop && st.batch.events == 0 {
            st.stopped = true;
        }
        let stopped = st.stopped;
        drop(st);
        s.flushed.notify_all();
        if stopped {
            s.room.notify_all();
            return;
        }
    }
}

/// An append-only text file that rotates when it would pass `max_bytes`:
/// `x.log` becomes `x.log.1`, `x.log.1` becomes `x.log.2`, … up to `keep` old files.
#[derive(Debug)]
pub(crate) struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl RotatingFile {
    pub(crate) fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_bytes: max_bytes.max(1),
            keep,
        })
    }

    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |i: usize| {
            let mut s = self.path.clone().into_os_string();
            s.push(format!(".{i}"));
            PathBuf::from(s)
        };
        if self.keep == 0 {
            fs::remove_file(&self.path)?;
        } else {
            for i in (1..self.keep).rev() {
                let from = numbered(i);
                if from.exists() {
                    fs::rename(&from, numbered(i + 1))?;
                }
            }
            fs::rename(&self.path, numbered(1))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        crate::ensure_private_dir(dir)?;
    }
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    crate::no_follow(&mut opts).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_log_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/w.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..10 {
            f.write(format!("{i:039}\n").as_bytes()).unwrap();
        }
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        // 40-byte lines, two per file: 8 and 9 are current, 6 and 7 in .1, 4 and 5 in .2.
        assert_eq!(read(&path), format!("{:039}\n{:039}\n", 8, 9));
        assert!(read(&dir.path().join("logs/w.log.1")).ends_with("7\n"));
        assert!(read(&dir.path().join("logs/w.log.2")).ends_with("5\n"));
        assert!(!dir.path().join("logs/w.log.3").exists());
    }
}
