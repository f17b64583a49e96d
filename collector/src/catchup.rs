//! Catch-up from the event log: a thread follows `events/*.jsonl` from the offsets
//! persisted in the store, so an event whose POST failed (collector down, hook out
//! of budget) still arrives. A torn last line is left until it is whole.

use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::Duration;

use swarm_obs::{EventLog, EventReader, Redactor, StateRoot, Timestamp};

use crate::Stop;
use crate::store::{Store, StoreError};

/// Events handed to the store per batch.
const BATCH: usize = 5000;

/// Starts following the event log of `root` every `interval`, until `stop` is set.
/// Events older than `max_age_ms` are skipped: retention would delete them at once.
/// Each event is [admitted](crate::ingest::admit) with `redactor` as a POSTed one is.
pub fn spawn(
    root: StateRoot,
    store: Store,
    interval: Duration,
    max_age_ms: i64,
    redactor: Redactor,
    stop: Stop,
) -> Result<JoinHandle<()>, StoreError> {
    let mut offsets = store.log_offsets()?;
    std::thread::Builder::new()
        .name("catch-up".into())
        .spawn(move || {
            let mut warned = false;
            while !stop.is_set() {
                match pass(&root, &store, &mut offsets, max_age_ms, &redactor, &stop) {
                    Ok(()) => warned = false,
                    Err(StoreError::Closed) => return,
                    Err(e) if !warned => {
                        eprintln!("swarm-obs serve: catch-up from the event log: {e}");
                        warned = true;
                    }
                    Err(_) => {}
                }
                stop.sleep(interval);
            }
        })
        .map_err(|e| StoreError::Write(format!("cannot start the catch-up thread: {e}")))
}

/// Reads every event file from its offset to its last complete line.
fn pass(
    root: &StateRoot,
    store: &Store,
    offsets: &mut HashMap<String, u64>,
    max_age_ms: i64,
    redactor: &Redactor,
    stop: &Stop,
) -> Result<(), StoreError> {
    let now = Timestamp::now();
    let oldest = now.unix_ms().saturating_sub(max_age_ms);
    let files = EventLog::files(root).map_err(|e| {
        StoreError::Write(format!("cannot list {}: {e}", root.events_dir().display()))
    })?;
    for path in files {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
            continue;
        };
        let mut offset = offsets.get(&name).copied().unwrap_or(0);
        if len < offset {
            // The file was replaced or truncated: read it again; ids dedupe.
            offset = 0;
        }
        if len == offset {
            continue;
        }
        let Ok(mut reader) = EventReader::open(&path, offset) else {
            continue;
        };
        let from = offset;
        let result = (|| {
            loop {
                if stop.is_set() {
                    return Ok(());
                }
                let batch: Vec<_> = reader.by_ref().take(BATCH).collect();
                let new_offset = reader.offset();
                if batch.is_empty() && new_offset == offset {
                    break;
                }
                let full = batch.len() == BATCH;
                let batch: Vec<_> = batch
                    .into_iter()
                    .filter(|e| e.ts.unix_ms() >= oldest)
                    .map(|mut e| {
                        crate::ingest::admit(&mut e, redactor, now);
                        e
                    })
                    .collect();
                // Waiting for the commit keeps `offsets` true: a failed batch is read again.
                store.insert_blocking(batch, Some((name.clone(), new_offset)))?;
                offsets.insert(name.clone(), new_offset);
                offset = new_offset;
                if !full {
                    break;
                }
            }
            Ok(())
        })();
        // Lines that are not events are skipped, never stored; say so, since they
        // are lost to every viewer (a foreign writer, a disk error).
        let invalid = reader.stats().invalid;
        if invalid > 0 {
            store.metrics().add_invalid_lines(invalid);
            eprintln!(
                "swarm-obs serve: skipped {invalid} line(s) of {} between bytes {from} and {} that are not swarm-obs events",
                path.display(),
                reader.offset()
            );
        }
        result?;
    }
    Ok(())
}
