//! The writer behind [`SwarmLayer`](crate::SwarmLayer): a bounded queue that callers
//! push events into, and one background thread that redacts them and writes the event
//! log, the text log and stderr in batches, then hands the batch to the shipper.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::shipper::ShipperQueue;
use crate::{Event, EventLog, HeartbeatHandle, Kind, Redactor};

/// Events written per batch before acknowledging flushes and checking for more.
const BATCH_EVENTS: usize = 4096;
/// Bytes of JSON lines gathered before one write to the event log.
const BATCH_BYTES: usize = 256 << 10;
const DAY_MS: i64 = 86_400_000;
/// How long the writer lets events gather after it wakes for one.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);
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

pub(crate) enum Msg {
    Event(Box<Event>),
    Flush(SyncSender<()>),
    Stop,
}

/// The caller's side of the queue: cheap to clone, never blocks in `Overflow::Drop` mode.
#[derive(Clone, Debug)]
pub(crate) struct LogQueue {
    tx: SyncSender<Msg>,
    overflow: Overflow,
    dropped: Arc<AtomicU64>,
}

impl LogQueue {
    pub(crate) fn push(&self, event: Event) {
        let msg = Msg::Event(Box::new(event));
        let lost = match self.overflow {
            Overflow::Drop => matches!(
                self.tx.try_send(msg),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
            ),
            Overflow::Block => self.tx.send(msg).is_err(),
        };
        if lost {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every event queued before this call is written; false when the
    /// writer has stopped.
    pub(crate) fn flush(&self) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        // A control message must not be dropped, so it waits for room in either mode.
        self.tx.send(Msg::Flush(tx)).is_ok() && rx.recv().is_ok()
    }

    pub(crate) fn dropped(&self) -> &Arc<AtomicU64> {
        &self.dropped
    }
}

/// Where the writer thread writes, shared with the panic hook so a dying process can
/// write its last event synchronously.
#[derive(Debug)]
pub(crate) struct Sinks {
    pub(crate) events: Option<EventLog>,
    pub(crate) text: Option<RotatingFile>,
    pub(crate) stderr: bool,
    pub(crate) offset_secs: i32,
    pub(crate) redactor: Redactor,
    pub(crate) heartbeat: Option<HeartbeatHandle>,
    pub(crate) shipper: Option<ShipperQueue>,
    pub(crate) dropped: Arc<AtomicU64>,
    json: Vec<u8>,
    json_events: usize,
    day: String,
    day_ms: std::ops::Range<i64>,
    human: Vec<u8>,
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
            shipper: None,
            dropped,
            json: Vec::new(),
            json_events: 0,
            day: String::new(),
            day_ms: 0..0,
            human: Vec::new(),
        }
    }

    /// Redacts `ev`, updates the heartbeat and adds it to the pending writes.
    pub(crate) fn add(&mut self, mut ev: Event) {
        if let Some(m) = self.redactor_msg(&ev.msg) {
            ev.msg = m;
        }
        if !ev.fields.is_empty() {
            let mut v = serde_json::Value::Object(std::mem::take(&mut ev.fields));
            self.redactor.redact_value(&mut v);
            if let serde_json::Value::Object(m) = v {
                ev.fields = m;
            }
        }
        if let Some(hb) = &self.heartbeat {
            update_heartbeat(hb, &ev);
        }
        if self.events.is_some() || self.shipper.is_some() {
            let ms = ev.ts.unix_ms();
            if !self.day_ms.contains(&ms) || self.json.len() >= BATCH_BYTES {
                self.flush_json();
                // The day's name is formatted once per day, not once per event.
                let start = ms.div_euclid(DAY_MS) * DAY_MS;
                self.day_ms = start..start + DAY_MS;
                self.day = ev.ts.day();
            }
            // Serialising an event of strings, numbers and JSON values cannot fail.
            let _ = serde_json::to_writer(&mut self.json, &ev);
            self.json.push(b'\n');
            self.json_events += 1;
        }
        if self.text.is_some() || self.stderr {
            self.human
                .extend_from_slice(ev.human_line(self.offset_secs).as_bytes());
            self.human.push(b'\n');
        }
    }

    fn redactor_msg(&self, msg: &str) -> Option<String> {
        let r = self.redactor.redact_str(msg);
        (r != msg).then_some(r)
    }

    /// Writes everything pending.
    pub(crate) fn flush(&mut self) {
        self.flush_json();
        if !self.human.is_empty() {
            if let Some(text) = &mut self.text {
                // Text lines mirror the event log; a failed write there loses nothing
                // the event log does not still hold.
                let _ = text.write(&self.human);
            }
            if self.stderr {
                let _ = io::stderr().lock().write_all(&self.human);
            }
            self.human.clear();
        }
    }

    fn flush_json(&mut self) {
        if self.json.is_empty() {
            return;
        }
        let n = self.json_events;
        if let Some(log) = &self.events
            && log.append_line(&self.day, &self.json).is_err()
        {
            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
        }
        match &self.shipper {
            Some(ship) => ship.offer(std::mem::take(&mut self.json), n),
            None => self.json.clear(),
        }
        self.json_events = 0;
    }
}

/// Follows what the worker reports: `start!` sets the task, `progress!` the progress
/// and action, `done!` makes it idle.
fn update_heartbeat(hb: &HeartbeatHandle, ev: &Event) {
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

/// The queue and the writer thread not yet started (tests fill the queue first).
pub(crate) struct PendingWriter {
    rx: Receiver<Msg>,
    sinks: Arc<Mutex<Sinks>>,
}

/// Creates the queue of `capacity` events feeding `sinks`.
pub(crate) fn channel(
    capacity: usize,
    overflow: Overflow,
    sinks: Arc<Mutex<Sinks>>,
) -> (LogQueue, PendingWriter) {
    let dropped = lock(&sinks).dropped.clone();
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    (
        LogQueue {
            tx,
            overflow,
            dropped,
        },
        PendingWriter { rx, sinks },
    )
}

fn lock(sinks: &Mutex<Sinks>) -> std::sync::MutexGuard<'_, Sinks> {
    // The sinks hold only buffers and files; a panic mid-write leaves them usable.
    sinks.lock().unwrap_or_else(|p| p.into_inner())
}

impl PendingWriter {
    pub(crate) fn spawn(self) -> io::Result<WriterThread> {
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || write_loop(&self.rx, &self.sinks))?;
        Ok(WriterThread {
            thread: Some(thread),
        })
    }
}

/// The running writer thread; [`LogQueue::flush`] and a `Stop` message end it.
#[derive(Debug)]
pub(crate) struct WriterThread {
    thread: Option<JoinHandle<()>>,
}

impl WriterThread {
    /// Writes everything queued, then ends the thread.
    pub(crate) fn stop(&mut self, queue: &LogQueue) {
        if let Some(t) = self.thread.take() {
            // Sent like an event in blocking mode: after everything this thread queued.
            if queue.tx.send(Msg::Stop).is_ok() {
                let _ = t.join();
            }
        }
    }
}

fn write_loop(rx: &Receiver<Msg>, sinks: &Mutex<Sinks>) {
    let mut acks = Vec::new();
    loop {
        let Ok(first) = rx.recv() else { return };
        if matches!(first, Msg::Event(_)) {
            // Let a batch gather: waking this thread costs the caller a system call,
            // so under a stream of events it should happen once per batch, not per event.
            std::thread::sleep(GATHER);
        }
        let mut stop = false;
        let mut guard = lock(sinks);
        let mut next = Some(first);
        let mut n = 0;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(ev) => guard.add(*ev),
                Msg::Flush(ack) => acks.push(ack),
                Msg::Stop => stop = true,
            }
            n += 1;
            // After a stop, drain what other threads queued before it.
            if n < BATCH_EVENTS || stop {
                next = rx.try_recv().ok();
            }
        }
        guard.flush();
        drop(guard);
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        if stop {
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
        fs::create_dir_all(dir)?;
    }
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
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
