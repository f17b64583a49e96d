//! Tailing the event files directly, for when no collector runs.
//!
//! Every event goes to the file of its UTC day (`events/YYYY-MM-DD.jsonl`), so the
//! newest events are in the newest files: history reads days newest first and stops
//! once it has enough. Following polls every file from the byte offset where reading
//! stopped, listing the directory each time, so a new day's file (or a late event
//! written to an older day's file) is picked up.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use swarm_obs::{Event, EventLog, EventReader, StateRoot};

use super::select::Selection;
use super::sort_events;

/// A follower of the event files of one state root.
#[derive(Debug)]
pub struct FileFeed {
    root: StateRoot,
    /// Byte offset of the first line not yet read, per file.
    offsets: HashMap<PathBuf, u64>,
}

impl FileFeed {
    /// Reads the history: the newest `lines` selected events (every selected event
    /// when `None`), oldest first, and a feed positioned just after what was read.
    pub fn open(
        root: StateRoot,
        sel: &Selection,
        lines: Option<usize>,
    ) -> Result<(Self, Vec<Event>)> {
        let files = list(&root)?;
        let since_day = sel.since.map(|t| t.day());
        let mut feed = Self {
            root,
            offsets: HashMap::new(),
        };
        let mut history = Vec::new();
        let mut enough = lines == Some(0);
        for path in files.iter().rev() {
            let older_than_since = since_day
                .as_deref()
                .is_some_and(|d| day_of(path).is_some_and(|day| day < d));
            if enough || older_than_since {
                let end = complete_end(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                feed.offsets.insert(path.clone(), end);
                continue;
            }
            let mut reader = EventReader::open(path, 0)
                .with_context(|| format!("cannot read {}", path.display()))?;
            history.extend(reader.by_ref().filter(|ev| sel.matches(ev)));
            feed.offsets.insert(path.clone(), reader.offset());
            if let Some(n) = lines {
                sort_events(&mut history);
                let extra = history.len().saturating_sub(n);
                history.drain(..extra);
                // Files of older days hold only older events.
                enough = history.len() >= n;
            }
        }
        sort_events(&mut history);
        Ok((feed, history))
    }

    /// Events appended since the last call (or since [`open`](Self::open)), in
    /// file order, oldest day first. A torn last line is left for the next call.
    pub fn poll(&mut self) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for path in list(&self.root)? {
            let len = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                // Removed between listing and reading (retention): nothing to read.
                Err(_) => continue,
            };
            let offset = self.offsets.entry(path.clone()).or_insert(0);
            if len < *offset {
                // Replaced by a shorter file: read the new one from its start.
                *offset = 0;
            }
            if len == *offset {
                continue;
            }
            let mut reader = match EventReader::open(&path, *offset) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            out.extend(reader.by_ref());
            *offset = reader.offset();
        }
        Ok(out)
    }
}

/// The event files, oldest day first; none when the directory does not exist yet.
fn list(root: &StateRoot) -> Result<Vec<PathBuf>> {
    EventLog::files(root).with_context(|| {
        format!(
            "cannot list the event files in {}",
            root.events_dir().display()
        )
    })
}

/// The `YYYY-MM-DD` day an event file holds.
fn day_of(path: &Path) -> Option<&str> {
    path.file_stem().and_then(|s| s.to_str())
}

/// The offset just past the last complete line of a file, without parsing it: where
/// a follower starts on a file whose history it skips.
fn complete_end(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::Kind;

    fn at(ts: &str, source: &str, msg: &str) -> Event {
        let mut ev = Event::new(source, Kind::Log, msg);
        ev.ts = ts.parse().unwrap();
        ev
    }

    #[test]
    fn history_merges_days_and_follow_resumes_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path());
        let log = EventLog::new(root.clone());
        for ev in [
            at("2026-01-04T10:00:00.000Z", "a", "day1-a"),
            at("2026-01-05T10:00:02.000Z", "b", "day2-b"),
            at("2026-01-05T10:00:01.000Z", "a", "day2-a"),
            at("2026-01-06T09:00:00.000Z", "c", "day3-c"),
        ] {
            log.append(&ev).unwrap();
        }
        let sel = Selection::default();
        let (_, all) = FileFeed::open(root.clone(), &sel, None).unwrap();
        let msgs: Vec<&str> = all.iter().map(|e| e.msg.as_str()).collect();
        assert_eq!(msgs, ["day1-a", "day2-a", "day2-b", "day3-c"]);

        let (mut feed, last2) = FileFeed::open(root.clone(), &sel, Some(2)).unwrap();
        let msgs: Vec<&str> = last2.iter().map(|e| e.msg.as_str()).collect();
        assert_eq!(msgs, ["day2-b", "day3-c"]);
        assert!(feed.poll().unwrap().is_empty());

        // A late event for a skipped day, a torn line, and a new day.
        log.append(&at("2026-01-04T11:00:00.000Z", "a", "late"))
            .unwrap();
        let next = at("2026-01-07T00:00:00.000Z", "d", "day4-d").to_json_line();
        let (head, tail) = next.split_at(20);
        std::fs::write(root.event_file("2026-01-07"), head).unwrap();
        let got: Vec<String> = feed.poll().unwrap().into_iter().map(|e| e.msg).collect();
        assert_eq!(got, ["late"]);
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(root.event_file("2026-01-07"))
            .unwrap()
            .write_all(tail.as_bytes())
            .unwrap();
        let got: Vec<String> = feed.poll().unwrap().into_iter().map(|e| e.msg).collect();
        assert_eq!(got, ["day4-d"]);
    }

    #[test]
    fn complete_end_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        std::fs::write(&p, "one\ntwo\nthr").unwrap();
        assert_eq!(complete_end(&p).unwrap(), 8);
        std::fs::write(&p, "no newline").unwrap();
        assert_eq!(complete_end(&p).unwrap(), 0);
        std::fs::write(&p, "").unwrap();
        assert_eq!(complete_end(&p).unwrap(), 0);
    }

    #[test]
    fn a_missing_state_root_is_empty_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().join("nothing-here"));
        let (mut feed, history) = FileFeed::open(root, &Selection::default(), Some(10)).unwrap();
        assert!(history.is_empty());
        assert!(feed.poll().unwrap().is_empty());
    }
}
