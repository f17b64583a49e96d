//! Reading the hook's input: the first complete JSON object on stdin, within a
//! deadline, whether or not stdin ever closes.
//!
//! The bytes are scanned as they arrive for the end of the first top-level object
//! (tracking strings and escapes, so braces inside strings do not count), and the
//! wait stops the moment it is complete. Whatever else arrives is drained, so the
//! writer never sees a broken pipe.
//!
//! The process's own stdin ([`read_stdin`], Unix) is read on the calling thread,
//! waiting with `poll(2)`: Claude Code writes the payload and closes stdin, so
//! usually the object and the end of stdin are there at once and no thread is
//! started (one costs the hook about a sixth of its run). Only a stdin still open
//! after the object gets a thread to drain it. Any other reader ([`read_input`])
//! is read by a thread from the start, which the caller waits on.

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

/// Bytes asked for per read.
const CHUNK: usize = 64 << 10;

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

/// The rest of stdin after the input was taken: at its end already, or drained
/// by a thread.
#[derive(Debug)]
pub struct Drain {
    chunks: Option<Receiver<Chunk>>,
    finished: bool,
}

impl Drain {
    /// Stdin is at its end: nothing left to drain.
    fn ended() -> Self {
        Self {
            chunks: None,
            finished: true,
        }
    }

    /// Waits until stdin reaches end of file or `until`, discarding what arrives, so
    /// a writer in the middle of a large payload is not cut off.
    pub fn wait(mut self, until: Instant) {
        let Some(chunks) = self.chunks.take() else {
            return;
        };
        while !self.finished {
            let left = until.saturating_duration_since(Instant::now());
            match chunks.recv_timeout(left) {
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

/// What one wait for input brought.
enum Next {
    Data(Vec<u8>),
    /// End of file, or an error that ends reading.
    End,
    /// Nothing within the time given.
    Timeout,
}

/// A thread reading `reader` to its end, sending what it reads; once the
/// receiver is gone it goes on draining into the void.
fn spawn_reader<R: Read + Send + 'static>(mut reader: R) -> Receiver<Chunk> {
    let (tx, rx) = mpsc::sync_channel::<Chunk>(64);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Chunk::Data(buf[..n].to_vec())).is_err() {
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
    rx
}

/// Reads the first JSON object from `reader` within `limits`, on a thread.
///
/// ```
/// use swarm_hook::input::{read_input, Input, InputLimits};
/// let (input, _) = read_input(&b"  {\"a\":\"}\"} trailing"[..], InputLimits::default());
/// assert_eq!(input, Input::Object(br#"{"a":"}"}"#.to_vec()));
/// ```
pub fn read_input<R: Read + Send + 'static>(reader: R, limits: InputLimits) -> (Input, Drain) {
    let chunks = spawn_reader(reader);
    let (input, ended) = first_object(limits, |left| match chunks.recv_timeout(left) {
        Ok(Chunk::Data(d)) => Next::Data(d),
        Ok(Chunk::End) | Err(RecvTimeoutError::Disconnected) => Next::End,
        Err(RecvTimeoutError::Timeout) => Next::Timeout,
    });
    let drain = Drain {
        chunks: Some(chunks),
        finished: ended,
    };
    (input, drain)
}

/// Reads the first JSON object from this process's stdin within `limits`, on this
/// thread; a thread drains the rest only when stdin is still open after it.
#[cfg(unix)]
pub fn read_stdin(limits: InputLimits) -> (Input, Drain) {
    let mut stdin = std::io::stdin();
    let mut buf = vec![0u8; CHUNK];
    let mut next = |left: Duration| -> Next {
        match readable(left) {
            Ok(true) => loop {
                match stdin.read(&mut buf) {
                    Ok(0) => return Next::End,
                    Ok(n) => return Next::Data(buf[..n].to_vec()),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return Next::End,
                }
            },
            Ok(false) => Next::Timeout,
            Err(_) => Next::End,
        }
    };
    let (input, mut ended) = first_object(limits, &mut next);
    // What is there already (a trailing newline, the end of stdin) is read now,
    // without waiting.
    while !ended {
        match next(Duration::ZERO) {
            Next::Data(_) => {}
            Next::End => ended = true,
            Next::Timeout => break,
        }
    }
    if ended {
        return (input, Drain::ended());
    }
    // Still open: drained from here as `read_input` drains it.
    let drain = Drain {
        chunks: Some(spawn_reader(std::io::stdin())),
        finished: false,
    };
    (input, drain)
}

/// Waits up to `timeout` for stdin to have something to read (data, its end, or
/// an error); `Ok(false)` when the time passed first.
#[cfg(unix)]
fn readable(timeout: Duration) -> std::io::Result<bool> {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        // Rounded up, so a wait of less than a millisecond does not spin.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let mut fd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) reads and writes the one pollfd given.
        match unsafe { libc::poll(&mut fd, 1, ms) } {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Takes chunks from `next` (given how long it may wait) until the first JSON
/// object is complete, something else is found, or the limits end the wait.
/// Returns what was found, and whether the input reached its end.
fn first_object(limits: InputLimits, mut next: impl FnMut(Duration) -> Next) -> (Input, bool) {
    let start = Instant::now();
    let mut data = Vec::new();
    let mut scanner = ObjectScanner::default();
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
        match next(left) {
            Next::Data(chunk) => {
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
                        return (Input::Object(data), false);
                    }
                    Scan::NotAnObject(c) => {
                        let what = if c.is_ascii_graphic() {
                            format!("starts with {:?}", c as char)
                        } else {
                            format!("starts with byte 0x{c:02x}")
                        };
                        return (
                            invalid(format!("input is not a JSON object ({what})"), &data),
                            false,
                        );
                    }
                    Scan::More => {}
                }
                if data.len() > limits.max_bytes {
                    let reason = format!("input exceeds the {} MiB cap", limits.max_bytes >> 20);
                    return (invalid(reason, &data), false);
                }
            }
            Next::End => {
                let reason = if data.iter().all(u8::is_ascii_whitespace) {
                    "input is empty".to_owned()
                } else {
                    format!(
                        "input ends inside a JSON object (truncated after {} bytes)",
                        data.len()
                    )
                };
                return (invalid(reason, &data), true);
            }
            Next::Timeout => {
                let reason = if data.is_empty() {
                    format!("no input within {} ms", limits.deadline.as_millis())
                } else {
                    format!(
                        "input incomplete after {} ms ({} bytes, stdin still open)",
                        limits.deadline.as_millis(),
                        data.len()
                    )
                };
                return (invalid(reason, &data), false);
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
