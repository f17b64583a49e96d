//! Reading the hook's input: the first complete JSON object on stdin, within a
//! deadline, whether or not stdin ever closes.
//!
//! A reader thread pulls chunks off stdin; the caller scans them for the end of the
//! first top-level object (tracking strings and escapes, so braces inside strings
//! do not count) and stops waiting the moment it is complete. The thread goes on
//! draining whatever else arrives, so the writer never sees a broken pipe.

use std::io::Read;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// What arrived on stdin.
#[derive(Debug, PartialEq)]
pub enum Input {
    /// The bytes of the first complete top-level JSON object.
    Object(Vec<u8>),
    /// Something other than one JSON object; the error event says what.
    Invalid {
        /// Why it is not a hook payload.
        reason: String,
        /// The first bytes seen, for the error event.
        head: Vec<u8>,
        /// How many bytes were read before giving up.
        bytes: usize,
    },
}

/// However slowly input trickles in, reading stops after this long.
const MAX_READ_TIME: Duration = Duration::from_secs(10);

/// Limits for [`read_input`].
#[derive(Clone, Copy, Debug)]
pub struct InputLimits {
    /// How long to wait with no input arriving before giving up.
    pub deadline: Duration,
    /// Largest input accepted.
    pub max_bytes: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(1000),
            max_bytes: 32 << 20,
        }
    }
}

/// A reader thread still draining stdin after the input was taken.
#[derive(Debug)]
pub struct Drain {
    chunks: Receiver<Chunk>,
    finished: bool,
}

impl Drain {
    /// Waits until stdin reaches end of file or `until`, discarding what arrives, so
    /// a writer in the middle of a large payload is not cut off.
    pub fn wait(mut self, until: Instant) {
        while !self.finished {
            let left = until.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(Chunk::Data(_)) => {}
                Ok(Chunk::End) | Err(RecvTimeoutError::Disconnected) => self.finished = true,
                Err(RecvTimeoutError::Timeout) => return,
            }
        }
    }

    /// Whether stdin already reached end of file.
    pub fn finished(&self) -> bool {
        self.finished
    }
}

enum Chunk {
    Data(Vec<u8>),
    End,
}

/// Reads the first JSON object from `reader` within `limits`.
///
/// ```
/// use swarm_hook::input::{read_input, Input, InputLimits};
/// let (input, _) = read_input(&b"  {\"a\":\"}\"} trailing"[..], InputLimits::default());
/// assert_eq!(input, Input::Object(br#"{"a":"}"}"#.to_vec()));
/// ```
pub fn read_input<R: Read + Send + 'static>(mut reader: R, limits: InputLimits) -> (Input, Drain) {
    let start = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<Chunk>(64);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Chunk::Data(buf[..n].to_vec())).is_err() {
                        // The receiver is gone: keep draining into the void.
                        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(Chunk::End);
    });

    let mut data = Vec::new();
    let mut scanner = ObjectScanner::default();
    let mut drain = Drain {
        chunks: rx,
        finished: false,
    };
    let invalid = |reason: String, data: &[u8]| Input::Invalid {
        reason,
        head: data[..data.len().min(256)].to_vec(),
        bytes: data.len(),
    };
    // The deadline counts from the last byte received, so a large payload from a
    // writer slowed by a busy machine is read whole; a silent stdin still ends the wait.
    let mut last_progress = Instant::now();
    loop {
        let idle_left = limits.deadline.saturating_sub(last_progress.elapsed());
        let left = idle_left.min(MAX_READ_TIME.saturating_sub(start.elapsed()));
        match drain.chunks.recv_timeout(left) {
            Ok(Chunk::Data(chunk)) => {
                last_progress = Instant::now();
                let offset = data.len();
                data.extend_from_slice(&chunk);
                match scanner.feed(&chunk) {
                    Scan::Complete(end) => {
                        data.truncate(offset + end);
                        let start = data
                            .iter()
                            .position(|b| !b.is_ascii_whitespace())
                            .unwrap_or(0);
                        data.drain(..start);
                        return (Input::Object(data), drain);
                    }
                    Scan::NotAnObject(c) => {
                        let what = if c.is_ascii_graphic() {
                            format!("starts with {:?}", c as char)
                        } else {
                            format!("starts with byte 0x{c:02x}")
                        };
                        return (
                            invalid(format!("input is not a JSON object ({what})"), &data),
                            drain,
                        );
                    }
                    Scan::More => {}
                }
                if data.len() > limits.max_bytes {
                    let reason = format!("input exceeds the {} MiB cap", limits.max_bytes >> 20);
                    return (invalid(reason, &data), drain);
                }
            }
            Ok(Chunk::End) | Err(RecvTimeoutError::Disconnected) => {
                drain.finished = true;
                let reason = if data.iter().all(u8::is_ascii_whitespace) {
                    "input is empty".to_owned()
                } else {
                    format!(
                        "input ends inside a JSON object (truncated after {} bytes)",
                        data.len()
                    )
                };
                return (invalid(reason, &data), drain);
            }
            Err(RecvTimeoutError::Timeout) => {
                let reason = if data.is_empty() {
                    format!("no input within {} ms", limits.deadline.as_millis())
                } else {
                    format!(
                        "input incomplete after {} ms ({} bytes, stdin still open)",
                        limits.deadline.as_millis(),
                        data.len()
                    )
                };
                return (invalid(reason, &data), drain);
            }
        }
    }
}

/// Finds where the first top-level JSON object ends, one chunk at a time.
#[derive(Debug, Default)]
pub struct ObjectScanner {
    depth: u32,
    started: bool,
    in_string: bool,
    escaped: bool,
}

/// What [`ObjectScanner::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// The object ends just before this index of the chunk fed.
    Complete(usize),
    /// The first non-whitespace byte is not `{`.
    NotAnObject(u8),
    /// Feed more.
    More,
}

impl ObjectScanner {
    /// Scans the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Scan {
        for (i, &b) in chunk.iter().enumerate() {
            if !self.started {
                match b {
                    b'{' => {
                        self.started = true;
                        self.depth = 1;
                    }
                    // A UTF-8 byte-order mark is tolerated before the object.
                    b' ' | b'\t' | b'\r' | b'\n' | 0xEF | 0xBB | 0xBF => {}
                    other => return Scan::NotAnObject(other),
                }
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Scan::Complete(i + 1);
                    }
                }
                _ => {}
            }
        }
        Scan::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn scan_all(chunks: &[&[u8]]) -> (Scan, usize) {
        let mut s = ObjectScanner::default();
        let mut offset = 0;
        for c in chunks {
            match s.feed(c) {
                Scan::More => offset += c.len(),
                other => return (other, offset),
            }
        }
        (Scan::More, offset)
    }

    #[test]
    fn scanner_handles_strings_escapes_and_splits() {
        let text = br#"{"a":"} \" {","b":[{"c":"\\"}]}"#;
        for split in 0..text.len() {
            let (scan, offset) = scan_all(&[&text[..split], &text[split..]]);
            let Scan::Complete(end) = scan else {
                panic!("split {split}: {scan:?}")
            };
            assert_eq!(offset + end, text.len(), "split {split}");
        }
        assert_eq!(scan_all(&[b"\n [1]"]).0, Scan::NotAnObject(b'['));
        assert_eq!(scan_all(&[b"{\"a\":"]).0, Scan::More);
    }

    #[test]
    fn invalid_inputs_say_why() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"hello", "not a JSON object"),
            (b"\x00\xff\xfe", "byte 0x00"),
            (b"{\"session_id\": \"abc", "truncated"),
        ];
        for (bytes, want) in cases {
            let (input, drain) = read_input(Cursor::new(bytes.to_vec()), InputLimits::default());
            match input {
                Input::Invalid { reason, .. } => assert!(reason.contains(want), "{reason}"),
                other => panic!("{other:?}"),
            }
            drain.wait(Instant::now() + Duration::from_secs(1));
        }
    }

    #[test]
    fn oversize_input_is_refused_and_drained() {
        let limits = InputLimits {
            max_bytes: 1 << 20,
            ..InputLimits::default()
        };
        let mut big = b"{\"x\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'a', 3 << 20));
        let (input, drain) = read_input(Cursor::new(big), limits);
        assert!(matches!(input, Input::Invalid { ref reason, .. } if reason.contains("cap")));
        drain.wait(Instant::now() + Duration::from_secs(5));
    }
}
