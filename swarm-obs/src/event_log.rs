//! The event log: daily `events/YYYY-MM-DD.jsonl` files, append-only, one event a line.
//!
//! Many processes append at once (Claude Code runs hooks in parallel), so every line
//! goes out in one `write` on a file opened with `O_APPEND`: the kernel places each
//! write at the end as a unit, and lines never tear or interleave. A line longer than
//! `PIPE_BUF` is written under an exclusive lock while short lines take a shared
//! one, so even a long line that the kernel splits cannot be interleaved.
//!
//! Reading is the mirror image: [`EventReader`] iterates complete lines from a byte
//! offset, counts and skips lines that are not events, and stops before a torn last
//! line (a writer killed mid-line, or one still writing) so a follower can resume at
//! [`EventReader::offset`] once the line is whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Event, StateRoot};

/// Lines up to this size are written with one `write` under a shared lock.
const ATOMIC_LINE: usize = 4096;

/// Lines longer than this are skipped by readers, not buffered whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// An event-log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// Creating the events directory failed.
    #[error(
        "cannot create event directory {path}: {source} (check that the state root is writable, or set SWARM_OBS_HOME)"
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Opening an event file failed.
    #[error("cannot open event file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Writing to an event file failed (disk full, say).
    #[error("cannot append to event file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Appends events to the daily event files of a state root.
///
/// ```
/// use swarm_obs::{Event, EventLog, EventReader, Kind, StateRoot};
/// let dir = tempfile::tempdir().unwrap();
/// let log = EventLog::new(StateRoot::new(dir.path()));
/// let ev = Event::new("backend", Kind::Start, "Started TASK_123");
/// let path = log.append(&ev).unwrap();
/// let mut reader = EventReader::open(&path, 0).unwrap();
/// assert_eq!(reader.next().unwrap().id, ev.id);
/// ```
#[derive(Debug)]
pub struct EventLog {
    root: StateRoot,
    // The file of the day last written, kept open for long-running writers.
    current: Mutex<Option<(String, File)>>,
}

impl EventLog {
    /// An event log under `root`. Nothing is created until the first append.
    pub fn new(root: StateRoot) -> Self {
        Self {
            root,
            current: Mutex::new(None),
        }
    }

    /// The state root this log writes under.
    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    /// Appends one event to the file of its UTC day and returns that file's path.
    pub fn append(&self, event: &Event) -> Result<PathBuf, EventLogError> {
        self.append_line(&event.ts.day(), event.to_json_line().as_bytes())
    }

    /// Appends an already-serialised line (which must end in `\n`) to the file of `day`.
    pub fn append_line(&self, day: &str, line: &[u8]) -> Result<PathBuf, EventLogError> {
        let path = self.root.event_file(day);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_none_or(|(d, _)| d != day) {
            *current = None;
            let file = open_append(&path)?;
            *current = Some((day.to_owned(), file));
        }
        let Some((_, file)) = current.as_mut() else {
            unreachable!("the file of the day was opened above")
        };
        write_line(file, line).map_err(|source| EventLogError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// The event files under `root`, oldest day first.
    pub fn files(root: &StateRoot) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = match fs::read_dir(root.events_dir()) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        files.sort();
        Ok(files)
    }
}

/// Opens (creating, 0600, with a 0700 directory) an event file for appending; a
/// symbolic link in its place is refused, not written through.
fn open_append(path: &Path) -> Result<File, EventLogError> {
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    crate::no_follow(&mut opts);
    let open_err = |source| EventLogError::Open {
        path: path.to_owned(),
        source,
    };
    match opts.open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = path.parent().unwrap_or(Path::new("."));
            crate::ensure_private_dir(dir).map_err(|source| EventLogError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
            opts.open(path).map_err(open_err)
        }
        other => other.map_err(open_err),
    }
}

fn write_line(file: &mut File, line: &[u8]) -> io::Result<()> {
    debug_assert!(line.ends_with(b"\n"));
    // Locks are advisory and only order our own writers; a failure to lock (an
    // unsupported file system) must not stop the write itself.
    let locked = if line.len() <= ATOMIC_LINE {
        file.lock_shared().is_ok()
    } else {
        file.lock().is_ok()
    };
    let result = file.write_all(line);
    if locked {
        let _ = file.unlock();
    }
    result
}

/// Counts of what a reader skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Events returned.
    pub events: u64,
    /// Complete lines that were not valid events (or were over [`MAX_LINE_BYTES`]).
    pub invalid: u64,
    /// A last line without its newline was seen (and left for later).
    pub torn: bool,
}

/// Iterates the events of one event file from a byte offset.
///
/// Invalid lines are skipped and counted; a torn last line ends the iteration
/// without being consumed, so [`offset`](Self::offset) is always the start of the
/// first line not yet read completely.
#[derive(Debug)]
pub struct EventReader<R = File> {
    reader: BufReader<R>,
    offset: u64,
    stats: ReadStats,
    buf: Vec<u8>,
}

impl EventReader<File> {
    /// Opens `path` and seeks to `offset`.
    pub fn open(path: &Path, offset: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Self::with_offset(file, offset))
    }
}

impl<R: Read> EventReader<R> {
    /// Reads from `reader`, which is positioned at byte `offset` of its file.
    pub fn with_offset(reader: R, offset: u64) -> Self {
        Self {
            reader: BufReader::with_capacity(64 << 10, reader),
            offset,
            stats: ReadStats::default(),
            buf: Vec::new(),
        }
    }

    /// The byte offset just past the last complete line read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What was read and skipped so far.
    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// Reads one line into `self.buf`. Returns the bytes consumed (0 at end) and
    /// whether the line ended with a newline. Lines over the cap are consumed but
    /// not kept.
    fn read_line(&mut self) -> io::Result<(usize, bool, bool)> {
        self.buf.clear();
        let mut consumed = 0;
        let mut oversize = false;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok((consumed, false, oversize));
            }
            let (take, done) = match memchr_newline(chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !oversize && self.buf.len() + take <= MAX_LINE_BYTES + 1 {
                self.buf.extend_from_slice(&chunk[..take]);
            } else {
                oversize = true;
                self.buf.clear();
            }
            self.reader.consume(take);
            consumed += take;
            if done {
                return Ok((consumed, true, oversize));
            }
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

impl<R: Read> Iterator for EventReader<R> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            let (consumed, complete, oversize) = match self.read_line() {
                Ok(r) => r,
                // An I/O error mid-file reads like a torn line: stop, resume later.
                Err(_) => {
                    self.stats.torn = true;
                    return None;
                }
            };
            if consumed == 0 {
                return None;
            }
            if !complete {
                // Torn: leave it unconsumed for the next reader.
                self.stats.torn = true;
                return None;
            }
            self.offset += consumed as u64;
            if oversize {
                self.stats.invalid += 1;
                continue;
            }
            let line = trim_line(&self.buf);
            if line.is_empty() {
                continue;
            }
            match Event::from_json_bytes(line) {
                Ok(ev) => {
                    self.stats.events += 1;
                    return Some(ev);
                }
                Err(_) => self.stats.invalid += 1,
            }
        }
    }
}

fn trim_line(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use std::io::Cursor;

    #[test]
    fn files_are_private_and_daily() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(StateRoot::new(dir.path().join("state")));
        let mut ev = Event::new("a", Kind::Log, "one");
        ev.ts = "2026-01-05T23:59:59.999Z".parse().unwrap();
        let p1 = log.append(&ev).unwrap();
        ev.ts = "2026-01-06T00:00:00.000Z".parse().unwrap();
        let p2 = log.append(&ev).unwrap();
        assert!(p1.ends_with("events/2026-01-05.jsonl"));
        assert!(p2.ends_with("events/2026-01-06.jsonl"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p1).unwrap().permissions().mode() & 0o777,
                0o600
            );
            let events = p1.parent().unwrap();
            assert_eq!(
                fs::metadata(events).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        assert_eq!(EventLog::files(log.root()).unwrap(), vec![p1, p2]);
    }

    #[test]
    fn reader_skips_invalid_and_stops_before_torn_line() {
        let a = Event::new("a", Kind::Log, "first").to_json_line();
        let b = Event::new("b", Kind::Log, "second").to_json_line();
        let torn = &b[..b.len() / 2];
        let data = format!("{a}not json\n\n{{\"v\":1}}\n{b}{torn}");
        let mut r = EventReader::with_offset(Cursor::new(data.as_bytes().to_vec()), 0);
        let got: Vec<Event> = r.by_ref().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].msg, "second");
        let stats = r.stats();
        assert_eq!(stats.invalid, 2);
        assert!(stats.torn);
        assert_eq!(r.offset() as usize, data.len() - torn.len());

        // Once the line is completed, a reader resuming at the offset gets it.
        let completed = format!("{data}{}", &b[b.len() / 2..]);
        let rest = &completed.as_bytes()[r.offset() as usize..];
        let mut r2 = EventReader::with_offset(Cursor::new(rest.to_vec()), r.offset());
        assert_eq!(r2.next().unwrap().msg, "second");
        assert_eq!(r2.offset() as usize, completed.len());
    }

    #[test]
    fn reader_survives_garbage_and_huge_lines() {
        let mut data = vec![0xFFu8, 0, 1, 2, b'\n'];
        data.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        data.push(b'\n');
        let good = Event::new("a", Kind::Log, "after").to_json_line();
        data.extend_from_slice(good.as_bytes());
        let mut r = EventReader::with_offset(Cursor::new(data), 0);
        assert_eq!(r.next().unwrap().msg, "after");
        assert_eq!(r.stats().invalid, 2);
        assert!(r.next().is_none());
    }

    #[test]
    fn long_lines_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(StateRoot::new(dir.path()));
        let ev = Event::new("a", Kind::Log, "x".repeat(100_000));
        let path = log.append(&ev).unwrap();
        let got: Vec<Event> = EventReader::open(&path, 0).unwrap().collect();
        assert_eq!(got, vec![ev]);
    }
}
