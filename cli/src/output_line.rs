//! A watched program's output, one line at a time: reading lines with a length cap,
//! and turning each into an event's level, message, progress and fields.
//!
//! The level comes from the line when it says one (`ERROR …`, `[warn] …`,
//! `level=info …`, or a JSON object with a `level` field), else from the stream
//! (stdout `info`, stderr `warn`). Terminal control sequences (colours, cursor moves,
//! as `tmux pipe-pane` passes them on) are removed, and a line redrawn with carriage
//! returns keeps what a terminal would show: the text after the last `\r`.

use std::io::{self, BufRead};

use regex::Regex;
use serde_json::{Map, Value};
use swarm_obs::{Level, Progress};

/// Longest line kept, in bytes, note included; the rest is dropped and the event
/// says how much. The same as the default cap on event strings, so the note survives.
pub const MAX_LINE_BYTES: usize = 4 << 10;

/// Bytes at the start of a plain line searched for a level word.
const LEVEL_SEARCH_BYTES: usize = 64;

/// Where a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// A child's standard output.
    Stdout,
    /// A child's standard error.
    Stderr,
    /// Lines fed to `swarm-obs pipe`.
    Input,
}

impl Stream {
    /// The name stored in the event's `stream` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Input => "input",
        }
    }

    /// The level of a line that names none.
    fn default_level(self) -> Level {
        match self {
            Self::Stderr => Level::Warn,
            Self::Stdout | Self::Input => Level::Info,
        }
    }
}

/// Reads lines of at most `cap` bytes from a reader; longer lines are cut and the
/// rest skipped without being held in memory.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    cap: usize,
}

/// One line as read: at most the cap's bytes, without its line ending.
#[derive(Debug, Default)]
pub struct RawLine {
    /// The kept bytes.
    pub bytes: Vec<u8>,
    /// The whole line's length, past the cap too.
    pub len: usize,
}

impl<R: BufRead> LineReader<R> {
    /// A reader keeping at most `cap` bytes of each line.
    pub fn new(inner: R, cap: usize) -> Self {
        Self { inner, cap }
    }

    /// The next line into `line`; false at the end of input. A last line without a
    /// newline is still a line.
    pub fn read_line(&mut self, line: &mut RawLine) -> io::Result<bool> {
        line.bytes.clear();
        line.len = 0;
        let mut any = false;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(any);
            }
            any = true;
            let (chunk, used, end) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            let room = self.cap.saturating_sub(line.bytes.len());
            line.bytes
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            line.len += chunk.len();
            self.inner.consume(used);
            if end {
                if line.bytes.last() == Some(&b'\r') && line.len == line.bytes.len() {
                    line.bytes.pop();
                    line.len -= 1;
                }
                return Ok(true);
            }
        }
    }
}

/// What a line says, ready to become an event.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedLine {
    /// The level it names, else the stream's.
    pub level: Level,
    /// The message: the line without control sequences, or a JSON line's message.
    pub msg: String,
    /// Progress, when the progress pattern matched.
    pub progress: Option<Progress>,
    /// `stream`, the other fields of a JSON line, and notes on cut or invalid input.
    pub fields: Map<String, Value>,
}

/// An invalid `--progress-regex`.
#[derive(Debug, thiserror::Error)]
pub enum ProgressPatternError {
    /// The pattern does not compile.
    #[error("invalid --progress-regex {pattern:?}: {source}")]
    Syntax {
        /// The pattern given.
        pattern: String,
        /// What is wrong.
        source: regex::Error,
    },
    /// The pattern has no groups to read numbers from.
    #[error(
        "--progress-regex {0:?} needs capture groups: `done` and `total` (or two groups) for `3/5`, `percent` (or one group) for `50%`"
    )]
    Groups(String),
}

/// Turns raw lines into [`ParsedLine`]s.
#[derive(Clone, Debug, Default)]
pub struct LineParser {
    progress: Option<ProgressPattern>,
}

#[derive(Clone, Debug)]
struct ProgressPattern {
    regex: Regex,
    ratio: bool,
}

impl LineParser {
    /// A parser reading progress with `pattern`: groups named `done` and `total` (or
    /// two unnamed groups) give `done/total`; a group named `percent` (or a single
    /// group) gives `percent/100`.
    pub fn with_progress(pattern: &str) -> Result<Self, ProgressPatternError> {
        let regex = Regex::new(pattern).map_err(|source| ProgressPatternError::Syntax {
            pattern: pattern.to_owned(),
            source,
        })?;
        let names: Vec<_> = regex.capture_names().flatten().collect();
        let ratio = if names.contains(&"done") && names.contains(&"total") {
            true
        } else if names.contains(&"percent") {
            false
        } else {
            match regex.captures_len() - 1 {
                1 => false,
                n if n >= 2 => true,
                _ => return Err(ProgressPatternError::Groups(pattern.to_owned())),
            }
        };
        Ok(Self {
            progress: Some(ProgressPattern { regex, ratio }),
        })
    }

    /// Parses one raw line; `None` for a line with nothing visible on it.
    pub fn parse(&self, line: &RawLine, stream: Stream) -> Option<ParsedLine> {
        let mut fields = Map::new();
        fields.insert("stream".into(), Value::from(stream.as_str()));
        let text = match std::str::from_utf8(&line.bytes) {
            Ok(s) => s.to_owned(),
            Err(e) if line.len > line.bytes.len() && e.error_len().is_none() => {
                // Cut in the middle of a character by the cap: keep what is whole.
                String::from_utf8_lossy(&line.bytes[..e.valid_up_to()]).into_owned()
            }
            Err(_) => {
                fields.insert("invalid_utf8".into(), Value::Bool(true));
                String::from_utf8_lossy(&line.bytes).into_owned()
            }
        };
        let text = visible_text(&text);
        if text.trim().is_empty() {
            return None;
        }
        if line.len > line.bytes.len() {
            fields.insert("truncated_bytes".into(), Value::from(line.len));
        }
        let (level, mut msg) = match json_line(&text, &mut fields) {
            Some(parsed) => parsed,
            None => (level_in_text(&text), text),
        };
        if line.len > line.bytes.len() {
            let note = format!(" … [line cut: {} bytes in all]", line.len);
            let mut keep = MAX_LINE_BYTES.saturating_sub(note.len()).min(msg.len());
            while !msg.is_char_boundary(keep) {
                keep -= 1;
            }
            msg.truncate(keep);
            msg.push_str(&note);
        }
        let progress = self.progress.as_ref().and_then(|p| p.read(&msg));
        Some(ParsedLine {
            level: level.unwrap_or_else(|| stream.default_level()),
            msg,
            progress,
            fields,
        })
    }
}

impl ProgressPattern {
    fn read(&self, text: &str) -> Option<Progress> {
        let caps = self.regex.captures(text)?;
        let number = |name: &str, index: usize| -> Option<u64> {
            caps.name(name)
                .or_else(|| caps.get(index))?
                .as_str()
                .trim()
                .parse()
                .ok()
        };
        if self.ratio {
            let (done, total) = (number("done", 1)?, number("total", 2)?);
            (total > 0).then_some(Progress {
                done: done.min(total),
                total,
            })
        } else {
            let percent = number("percent", 1)?.min(100);
            Some(Progress {
                done: percent,
                total: 100,
            })
        }
    }
}

/// What a terminal shows of `text`: escape sequences and other control characters
/// removed, and only the part after the last carriage return.
fn visible_text(text: &str) -> String {
    let text = text.trim_end_matches('\r');
    let text = text.rsplit('\r').next().unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (titles, links): up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                // Two-byte sequences (charset selection takes one more).
                Some('(' | ')') => {
                    chars.next();
                }
                _ => {}
            },
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A JSON object line: its level and message, other fields into `fields`.
fn json_line(text: &str, fields: &mut Map<String, Value>) -> Option<(Option<Level>, String)> {
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(trimmed) else {
        return None;
    };
    let level = ["level", "lvl", "severity", "levelname"]
        .iter()
        .find_map(|k| object.remove(*k))
        .and_then(|v| match v {
            Value::String(s) => level_word(&s),
            // pino and bunyan: 10 trace … 50 error, 60 fatal.
            Value::Number(n) => n.as_u64().map(|n| match n {
                0..=10 => Level::Trace,
                11..=20 => Level::Debug,
                21..=30 => Level::Info,
                31..=40 => Level::Warn,
                _ => Level::Error,
            }),
            _ => None,
        });
    let msg = ["msg", "message"]
        .iter()
        .find_map(|k| match object.remove(*k) {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        })
        .unwrap_or_else(|| trimmed.to_owned());
    for (k, v) in object {
        // `stream` and the notes are ours.
        fields.entry(k).or_insert(v);
    }
    Some((level, msg))
}

/// The level a plain line names near its start: `level=warn` (logfmt), a bracketed
/// word (`[warn]`, `<ERROR>`), or a leading level word (see [`leading_level`]).
fn level_in_text(text: &str) -> Option<Level> {
    let head = match text.char_indices().nth(LEVEL_SEARCH_BYTES) {
        Some((i, _)) => &text[..i],
        None => text,
    };
    for key in ["level=", "lvl="] {
        if let Some(i) = text.find(key) {
            let value = text[i + key.len()..]
                .trim_start_matches('"')
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("");
            if let Some(level) = level_word(value) {
                return Some(level);
            }
        }
    }
    let mut rest = head;
    while let Some(i) = rest.find(['[', '<']) {
        let close = if rest.as_bytes()[i] == b'[' { ']' } else { '>' };
        rest = &rest[i + 1..];
        if let Some(j) = rest.find(close)
            && let Some(level) = level_word(rest[..j].trim())
        {
            return Some(level);
        }
    }
    leading_level(head)
}

/// A bare level word where logs put one: the first word after any time stamp
/// (`ERROR disk full`, `2026-01-05 14:32:15 WARN slow`, `ERROR:root:boom`), in upper
/// case, or in any case when a colon follows (`error: could not compile`,
/// `Warning: x`). A level word later in the line (`no ERROR here`) is just a word.
fn leading_level(head: &str) -> Option<Level> {
    let stamp = |w: &&str| {
        w.bytes().any(|b| b.is_ascii_digit())
            && w.bytes()
                .all(|b| b.is_ascii_digit() || b"-:.,/+TZ".contains(&b))
    };
    let word = head.split_whitespace().find(|w| !stamp(w))?;
    let end = word
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(word.len());
    let (name, after) = word.split_at(end);
    if name.is_empty() {
        return None;
    }
    let shouted = name.chars().all(|c| c.is_ascii_uppercase());
    (shouted || after.starts_with(':'))
        .then(|| level_word(name))
        .flatten()
}

/// A level name in any case, with the usual synonyms.
fn level_word(word: &str) -> Option<Level> {
    match word.to_ascii_lowercase().as_str() {
        "trace" | "trc" => Some(Level::Trace),
        "debug" | "dbg" => Some(Level::Debug),
        "info" | "inf" | "notice" => Some(Level::Info),
        "warn" | "warning" | "wrn" => Some(Level::Warn),
        "error" | "err" | "fatal" | "critical" | "crit" | "panic" | "alert" | "emerg" => {
            Some(Level::Error)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bytes: &[u8]) -> RawLine {
        RawLine {
            bytes: bytes.to_vec(),
            len: bytes.len(),
        }
    }

    fn parse(line: &str, stream: Stream) -> ParsedLine {
        LineParser::default()
            .parse(&raw(line.as_bytes()), stream)
            .expect("a visible line")
    }

    #[test]
    fn level_from_the_stream_when_the_line_names_none() {
        assert_eq!(parse("hello", Stream::Stdout).level, Level::Info);
        assert_eq!(parse("hello", Stream::Stderr).level, Level::Warn);
        assert_eq!(parse("hello", Stream::Input).level, Level::Info);
        let p = parse("no error found", Stream::Stdout);
        assert_eq!((p.level, p.msg.as_str()), (Level::Info, "no error found"));
        // A level word in the middle of a line is a word, not the line's level.
        for line in [
            "no ERROR here, all good",
            "retried after WARN from upstream",
            "error handling improved",
            "Errors: 0",
            "0 ERRORS",
            "12:00 the ERROR count is 0",
        ] {
            assert_eq!(parse(line, Stream::Stdout).level, Level::Info, "{line}");
        }
        assert_eq!(p.fields["stream"], "stdout");
    }

    #[test]
    fn level_named_in_the_line() {
        for (line, want) in [
            ("ERROR: disk full", Level::Error),
            ("2026-01-05 14:32:15 WARN slow query", Level::Warn),
            ("[warn] retrying", Level::Warn),
            ("[2026-01-05 14:32:15] [DEBUG] [svc] x", Level::Debug),
            ("<error> boom", Level::Error),
            ("ts=1 level=info msg=hi", Level::Info),
            ("time=x level=\"error\" msg=y", Level::Error),
            ("FATAL cannot start", Level::Error),
            ("WARNING: deprecated", Level::Warn),
            ("2026-01-05T14:32:15.123Z ERROR x", Level::Error),
            ("14:32:15,001 DEBUG y", Level::Debug),
            ("error: could not compile `x`", Level::Error),
            ("Warning: unused", Level::Warn),
            ("ERROR:root:boom", Level::Error),
        ] {
            assert_eq!(parse(line, Stream::Stderr).level, want, "{line}");
        }
        // Far into a long line a word is prose, not a level.
        let late = format!("{} ERROR", "x".repeat(100));
        assert_eq!(parse(&late, Stream::Stdout).level, Level::Info);
    }

    #[test]
    fn json_lines_give_level_message_and_fields() {
        let p = parse(
            r#"{"level":"error","msg":"db down","retry":3}"#,
            Stream::Stdout,
        );
        assert_eq!((p.level, p.msg.as_str()), (Level::Error, "db down"));
        assert_eq!(p.fields["retry"], 3);
        let p = parse(r#"{"level":40,"message":"slow"}"#, Stream::Stdout);
        assert_eq!((p.level, p.msg.as_str()), (Level::Warn, "slow"));
        // No message field: the line itself; a `stream` field does not replace ours.
        let p = parse(r#"{"stream":"theirs","n":1}"#, Stream::Stderr);
        assert_eq!(p.msg, r#"{"stream":"theirs","n":1}"#);
        assert_eq!(p.fields["stream"], "stderr");
        // Not an object, or broken: a plain line.
        assert_eq!(parse("[1,2]", Stream::Stdout).msg, "[1,2]");
        assert_eq!(parse("{\"level\":", Stream::Stdout).level, Level::Info);
    }

    #[test]
    fn garbage_empty_and_control_sequences() {
        let parser = LineParser::default();
        assert!(parser.parse(&raw(b""), Stream::Stdout).is_none());
        assert!(parser.parse(&raw(b"  \t\r"), Stream::Stdout).is_none());
        assert!(
            parser
                .parse(&raw(b"\x1b[2J\x1b[H"), Stream::Stdout)
                .is_none()
        );
        let p = parse(
            "\x1b[31mERROR\x1b[0m red \x1b]0;title\x07done",
            Stream::Stdout,
        );
        assert_eq!((p.level, p.msg.as_str()), (Level::Error, "ERROR red done"));
        // A redrawn progress line shows its last state.
        assert_eq!(parse("10%\r20%\r30%\r", Stream::Stdout).msg, "30%");
        let p = parser
            .parse(&raw(b"caf\xe9 \xff\xfe ok"), Stream::Stdout)
            .unwrap();
        assert_eq!(p.msg, "caf\u{fffd} \u{fffd}\u{fffd} ok");
        assert_eq!(p.fields["invalid_utf8"], true);
    }

    #[test]
    fn huge_lines_are_cut_and_say_so() {
        let big = format!("{}é{}", "a".repeat(MAX_LINE_BYTES - 1), "b".repeat(5000));
        let input = format!("{big}\nnext\n");
        let mut reader = LineReader::new(input.as_bytes(), MAX_LINE_BYTES);
        let mut line = RawLine::default();
        assert!(reader.read_line(&mut line).unwrap());
        assert_eq!(line.bytes.len(), MAX_LINE_BYTES);
        assert_eq!(line.len, big.len());
        let p = LineParser::default().parse(&line, Stream::Stdout).unwrap();
        // Cut inside `é`: the half character is dropped, not shown as garbage.
        assert!(!p.fields.contains_key("invalid_utf8"));
        assert!(
            p.msg.starts_with("aaa") && p.msg.ends_with(&format!("{} bytes in all]", big.len()))
        );
        assert_eq!(p.fields["truncated_bytes"], big.len());
        assert!(reader.read_line(&mut line).unwrap());
        assert_eq!(line.bytes, b"next");
        assert!(!reader.read_line(&mut line).unwrap());
    }

    #[test]
    fn reader_handles_crlf_and_a_last_line_without_newline() {
        let mut reader = LineReader::new(&b"one\r\n\ntwo"[..], 100);
        let mut line = RawLine::default();
        let mut got = Vec::new();
        while reader.read_line(&mut line).unwrap() {
            got.push(String::from_utf8(line.bytes.clone()).unwrap());
        }
        assert_eq!(got, ["one", "", "two"]);
    }

    #[test]
    fn progress_patterns() {
        let ratio = LineParser::with_progress(r"(\d+)/(\d+)").unwrap();
        let p = ratio.parse(&raw(b"step 3/5 done"), Stream::Stdout).unwrap();
        assert_eq!(p.progress, Some(Progress { done: 3, total: 5 }));
        assert_eq!(
            ratio.parse(&raw(b"0/0"), Stream::Stdout).unwrap().progress,
            None
        );
        let named = LineParser::with_progress(r"of (?P<total>\d+): (?P<done>\d+)").unwrap();
        let p = named.parse(&raw(b"of 10: 4"), Stream::Stdout).unwrap();
        assert_eq!(p.progress, Some(Progress { done: 4, total: 10 }));
        let pct = LineParser::with_progress(r"(\d+)%").unwrap();
        let p = pct.parse(&raw(b"upload 50%"), Stream::Stdout).unwrap();
        assert_eq!(
            p.progress,
            Some(Progress {
                done: 50,
                total: 100
            })
        );
        // Too big to be a number: no progress, no panic.
        let p = pct
            .parse(&raw(b"99999999999999999999999%"), Stream::Stdout)
            .unwrap();
        assert_eq!(p.progress, None);
        let e = LineParser::with_progress(r"\d+/\d+")
            .unwrap_err()
            .to_string();
        assert!(e.contains("capture groups"), "{e}");
        let e = LineParser::with_progress(r"(\d+").unwrap_err().to_string();
        assert!(e.contains("invalid --progress-regex"), "{e}");
    }
}
