//! Reading a Claude Code transcript: lines under a length cap, the turns in each
//! line, and the page a request asks for, in one pass with bounded memory.
//!
//! A transcript is JSON Lines. Lines of `type` `user` carry a prompt (a string, or
//! `text` blocks) or tool results (`tool_result` blocks with `tool_use_id`,
//! `content` and `is_error`); lines of `type` `assistant` carry the model's
//! `text` and `tool_use` blocks (`thinking` is skipped). Every other type is
//! Claude Code's bookkeeping (attachments, API requests, queue operations, costs,
//! …) and is passed over. Each block is one [`Turn`], numbered in file order.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};

use serde::Deserialize;
use serde_json::Value;
use swarm_obs::{Redactor, Timestamp};

use crate::api::{Turn, TurnKind, TurnRole};

/// Longest line read, in bytes; a longer one is skipped without being held
/// (a tool result of a few MiB is common, a line of 100 MiB is not a turn).
pub const MAX_LINE_BYTES: usize = 8 << 20;
/// Text kept per turn, in bytes.
pub const TEXT_CAP: usize = 2048;
/// Text looked at per turn: a little past the cap, so that a secret the cut
/// would split is still recognised and redacted whole.
const WINDOW: usize = TEXT_CAP + 512;
/// Longest tool name or tool use id kept.
const NAME_CAP: usize = 200;
/// Tool calls remembered to name the tool of a result that follows.
const TOOL_NAMES: usize = 256;

/// Which page to build.
#[derive(Clone, Debug)]
pub struct PageRequest {
    /// Turns in the page, at least 1.
    pub limit: usize,
    /// Only turns with a smaller `seq`.
    pub before: Option<u64>,
    /// Only turns with a larger `seq`; the page then starts right after it.
    pub after: Option<u64>,
    /// The main agent's transcript: lines of subagents (`isSidechain`, written
    /// into the main transcript by older Claude Code) are not its turns.
    pub main: bool,
    /// A tool use id to look for (the agent's newest tool event).
    pub watch: Option<String>,
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The page, in file order.
    pub turns: Vec<Turn>,
    /// Turns in the file.
    pub total: u64,
    /// The last line had no newline and did not parse.
    pub truncated: bool,
    /// Lines that are not JSON objects, or turns whose message cannot be read.
    pub skipped: u64,
    /// Lines over [`MAX_LINE_BYTES`].
    pub oversized: u64,
    /// The newest turn time.
    pub newest: Option<Timestamp>,
    /// Role and kind of the last turn in the file.
    pub last: Option<(TurnRole, TurnKind)>,
    /// Whether a tool use with [`PageRequest::watch`]'s id was seen.
    pub watched: bool,
}

/// A turn as found, before redaction: its text is a prefix of at most
/// [`WINDOW`] bytes and `full` the whole text's length.
#[derive(Debug)]
struct Raw {
    ts: Option<Timestamp>,
    role: TurnRole,
    kind: TurnKind,
    text: String,
    full: usize,
    tool: Option<String>,
    id: Option<String>,
    is_error: bool,
}

/// Reads `reader` once and returns the page `req` asks for; only the page (at
/// most `req.limit` turns of at most a few KiB) and one line are held.
pub fn scan<R: Read>(reader: R, req: &PageRequest, redactor: &Redactor) -> io::Result<Scan> {
    let limit = req.limit.max(1);
    let mut lines = Lines::new(reader);
    let mut out = Scan::default();
    let mut page: VecDeque<(u64, Raw)> = VecDeque::with_capacity(limit.min(256));
    let mut names: VecDeque<(String, String)> = VecDeque::new();
    let mut found: Vec<Raw> = Vec::new();
    while let Some(line) = lines.next_line()? {
        let (bytes, complete) = match line {
            Line::Oversized => {
                out.oversized += 1;
                continue;
            }
            Line::Complete(b) => (b, true),
            Line::Torn(b) => (b, false),
        };
        found.clear();
        match turns_of(bytes, req.main, &mut names, &mut found) {
            Ok(()) => {}
            Err(Blank) => continue,
            Err(Garbage) if !complete => {
                out.truncated = true;
                continue;
            }
            Err(Garbage) => {
                out.skipped += 1;
                continue;
            }
        }
        for raw in found.drain(..) {
            let seq = out.total;
            out.total += 1;
            if raw.ts.is_some() && raw.ts > out.newest {
                out.newest = raw.ts;
            }
            out.last = Some((raw.role, raw.kind));
            if raw.kind == TurnKind::ToolUse
                && req.watch.is_some()
                && raw.id.as_deref() == req.watch.as_deref()
            {
                out.watched = true;
            }
            let wanted = req.after.is_none_or(|a| seq > a) && req.before.is_none_or(|b| seq < b);
            if !wanted {
                continue;
            }
            if req.after.is_some() {
                // The oldest turns after the cursor: the page fills, then stays.
                if page.len() < limit {
                    page.push_back((seq, raw));
                }
            } else {
                // The newest turns before the cursor: a ring of `limit`.
                if page.len() == limit {
                    page.pop_front();
                }
                page.push_back((seq, raw));
            }
        }
    }
    out.turns = page
        .into_iter()
        .map(|(seq, raw)| finish(seq, raw, redactor))
        .collect();
    Ok(out)
}

/// Redacts and cuts a turn kept for the page.
fn finish(seq: u64, raw: Raw, redactor: &Redactor) -> Turn {
    let mut text = redactor.redact_str(&raw.text);
    let mut full_bytes = None;
    if raw.full > TEXT_CAP || text.len() > TEXT_CAP {
        let cut = floor(&text, TEXT_CAP);
        text.truncate(cut);
        text.push_str(&format!("…[cut: {} bytes in all]", raw.full));
        full_bytes = Some(raw.full as u64);
    }
    let name = |s: Option<String>| {
        s.map(|s| {
            let mut s = redactor.redact_str(&s);
            s.truncate(floor(&s, NAME_CAP));
            s
        })
    };
    Turn {
        seq,
        ts: raw.ts,
        role: raw.role,
        kind: raw.kind,
        text,
        full_bytes,
        tool: name(raw.tool),
        tool_use_id: name(raw.id),
        is_error: raw.is_error,
    }
}

/// Why a line gave no turns.
#[derive(Debug, PartialEq)]
enum NoTurns {
    /// An empty line.
    Blank,
    /// Not a JSON object, or a turn whose message cannot be read.
    Garbage,
}
use NoTurns::{Blank, Garbage};

/// The field every line has; the rest is read only for turns.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

/// A `user` or `assistant` line.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(rename = "isSidechain", default)]
    sidechain: Option<Value>,
    #[serde(rename = "isMeta", default)]
    meta: Option<Value>,
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Value,
}

/// The turns of one line, appended to `out`. `names` remembers recent tool calls
/// so that a result can say which tool it came from.
fn turns_of(
    line: &[u8],
    main: bool,
    names: &mut VecDeque<(String, String)>,
    out: &mut Vec<Raw>,
) -> Result<(), NoTurns> {
    let line = line.trim_ascii();
    match line.first() {
        None => return Err(Blank),
        Some(b'{') => {}
        Some(_) => return Err(Garbage),
    }
    let head: Head = serde_json::from_slice(line).map_err(|_| Garbage)?;
    let role = match head.kind.as_deref() {
        Some("user") => TurnRole::User,
        Some("assistant") => TurnRole::Assistant,
        _ => return Ok(()),
    };
    let body: Body = serde_json::from_slice(line).map_err(|_| Garbage)?;
    let flag = |v: &Option<Value>| v.as_ref().and_then(Value::as_bool).unwrap_or(false);
    // Context Claude Code injects (isMeta) is not said by anyone; a subagent's
    // lines in the main transcript are the subagent's.
    if flag(&body.meta) || (main && flag(&body.sidechain)) {
        return Ok(());
    }
    let ts = body
        .timestamp
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok());
    let Some(message) = body.message else {
        return Err(Garbage);
    };
    let turn = |kind, (text, full): (String, usize)| Raw {
        ts,
        role,
        kind,
        text,
        full,
        tool: None,
        id: None,
        is_error: false,
    };
    let blocks = match message.content {
        Value::String(s) => {
            let kind = match role {
                TurnRole::User => TurnKind::Prompt,
                TurnRole::Assistant => TurnKind::Text,
            };
            if !s.trim().is_empty() {
                out.push(turn(kind, prefix(&s)));
            }
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => return Err(Garbage),
    };
    for block in &blocks {
        let Some(b) = block.as_object() else {
            continue;
        };
        let text_of = |key: &str| b.get(key).and_then(Value::as_str).unwrap_or("");
        let id = b
            .get(if role == TurnRole::User {
                "tool_use_id"
            } else {
                "id"
            })
            .and_then(Value::as_str)
            .map(|s| s[..floor(s, NAME_CAP)].to_owned());
        match (role, text_of("type")) {
            (TurnRole::User, "text") | (TurnRole::Assistant, "text") => {
                let text = text_of("text");
                if !text.trim().is_empty() {
                    let kind = match role {
                        TurnRole::User => TurnKind::Prompt,
                        TurnRole::Assistant => TurnKind::Text,
                    };
                    out.push(turn(kind, prefix(text)));
                }
            }
            (TurnRole::User, "image") => out.push(turn(TurnKind::Prompt, prefix("[image]"))),
            (TurnRole::User, "tool_result") => {
                let mut t = turn(
                    TurnKind::ToolResult,
                    result_text(b.get("content").unwrap_or(&Value::Null)),
                );
                t.is_error = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                t.tool = id.as_deref().and_then(|id| {
                    names
                        .iter()
                        .rev()
                        .find(|(known, _)| known == id)
                        .map(|(_, name)| name.clone())
                });
                t.id = id;
                out.push(t);
            }
            (TurnRole::Assistant, "tool_use" | "server_tool_use") => {
                let name = text_of("name");
                let name = name[..floor(name, NAME_CAP)].to_owned();
                let mut t = turn(
                    TurnKind::ToolUse,
                    compact(b.get("input").unwrap_or(&Value::Null)),
                );
                if let Some(id) = &id {
                    if names.len() == TOOL_NAMES {
                        names.pop_front();
                    }
                    names.push_back((id.clone(), name.clone()));
                }
                t.tool = Some(name);
                t.id = id;
                out.push(t);
            }
            // thinking, redacted_thinking and block types yet to come.
            _ => {}
        }
    }
    Ok(())
}

/// The first [`WINDOW`] bytes of `s` and its length.
fn prefix(s: &str) -> (String, usize) {
    (s[..floor(s, WINDOW)].to_owned(), s.len())
}

/// The largest char boundary of `s` at or below `i`.
fn floor(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// A tool result's content: a string, or blocks whose texts are joined by
/// newlines (an image shows as `[image]`).
fn result_text(content: &Value) -> (String, usize) {
    match content {
        Value::String(s) => prefix(s),
        Value::Array(blocks) => {
            let mut text = String::new();
            let mut full = 0;
            for (i, block) in blocks.iter().enumerate() {
                let part = match block.get("type").and_then(Value::as_str) {
                    Some("text") => block.get("text").and_then(Value::as_str).unwrap_or(""),
                    Some("image") => "[image]",
                    _ => continue,
                };
                let sep = if i > 0 && full > 0 { "\n" } else { "" };
                full += sep.len() + part.len();
                for piece in [sep, part] {
                    let room = WINDOW.saturating_sub(text.len());
                    text.push_str(&piece[..floor(piece, room)]);
                }
            }
            (text, full)
        }
        Value::Null => (String::new(), 0),
        other => compact(other),
    }
}

/// A value as compact JSON: its first [`WINDOW`] bytes, and its whole length
/// (counted as it is written, never held).
fn compact(v: &Value) -> (String, usize) {
    struct Bounded {
        kept: Vec<u8>,
        total: usize,
    }
    impl io::Write for Bounded {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.total += b.len();
            let room = WINDOW.saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&b[..b.len().min(room)]);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = Bounded {
        kept: Vec::new(),
        total: 0,
    };
    let _ = serde_json::to_writer(&mut w, v);
    let text = match String::from_utf8(w.kept) {
        Ok(s) => s,
        // Cut inside a character: keep the whole ones.
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    };
    (text, w.total)
}

/// One line as read.
enum Line<'a> {
    /// Ended by a newline (which is not included).
    Complete(&'a [u8]),
    /// The end of the file came first: Claude Code may be writing it.
    Torn(&'a [u8]),
    /// Over [`MAX_LINE_BYTES`]: consumed, not kept.
    Oversized,
}

/// Lines of a reader, each held only up to [`MAX_LINE_BYTES`].
struct Lines<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
}

impl<R: Read> Lines<R> {
    fn new(reader: R) -> Self {
        Self {
            reader: BufReader::with_capacity(64 << 10, reader),
            buf: Vec::new(),
        }
    }

    fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut consumed = 0usize;
        let mut oversize = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(match (consumed, oversize) {
                    (0, _) => None,
                    (_, true) => Some(Line::Oversized),
                    (_, false) => Some(Line::Torn(&self.buf)),
                });
            }
            let (take, done) = match chunk.iter().position(|&c| c == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !oversize && self.buf.len() + take <= MAX_LINE_BYTES + 1 {
                // Grown by doubling but never past the cap, so a line at the
                // cap holds the cap, not twice it.
                let need = self.buf.len() + take;
                if need > self.buf.capacity() {
                    let want = need.max(self.buf.capacity() * 2).min(MAX_LINE_BYTES + 1);
                    self.buf.reserve_exact(want - self.buf.len());
                }
                self.buf.extend_from_slice(&chunk[..take]);
            } else if !oversize {
                oversize = true;
                self.buf = Vec::new();
            }
            self.reader.consume(take);
            consumed += take;
            if done {
                if oversize {
                    return Ok(Some(Line::Oversized));
                }
                self.buf.pop();
                return Ok(Some(Line::Complete(&self.buf)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str =
        include_str!("../../../tests/fixtures/claude-code-transcripts/session.jsonl");
    const SUBAGENT: &str =
        include_str!("../../../tests/fixtures/claude-code-transcripts/subagent.jsonl");

    fn req(limit: usize) -> PageRequest {
        PageRequest {
            limit,
            before: None,
            after: None,
            main: true,
            watch: None,
        }
    }

    fn run(text: &str, r: &PageRequest) -> Scan {
        scan(text.as_bytes(), r, &Redactor::default()).unwrap()
    }

    fn kinds(s: &Scan) -> Vec<(u64, TurnKind, Option<&str>, &str)> {
        s.turns
            .iter()
            .map(|t| (t.seq, t.kind, t.tool.as_deref(), t.text.as_str()))
            .collect()
    }

    #[test]
    fn the_main_transcript_reads_as_its_turns_in_order() {
        let s = run(SESSION, &req(50));
        assert_eq!(
            (s.total, s.skipped, s.oversized, s.truncated),
            (8, 0, 0, false)
        );
        use TurnKind::*;
        let got: Vec<_> = kinds(&s)
            .into_iter()
            .map(|(q, k, t, _)| (q, k, t))
            .collect();
        assert_eq!(
            got,
            [
                (0, Prompt, None),
                (1, ToolUse, Some("Bash")),
                (2, ToolResult, Some("Bash")),
                (3, ToolUse, Some("Bash")),
                (4, ToolResult, Some("Bash")),
                (5, ToolUse, Some("Agent")),
                (6, ToolResult, Some("Agent")),
                (7, Text, None),
            ]
        );
        let t = &s.turns;
        assert!(t[0].text.starts_with("Follow this script"), "{}", t[0].text);
        assert_eq!(t[0].role, TurnRole::User);
        assert_eq!(
            t[1].text,
            r#"{"command":"echo hello-from-bash","description":"Run a scripted command"}"#
        );
        assert_eq!(t[1].tool_use_id.as_deref(), Some("toolu_fake_0000"));
        assert_eq!(t[2].tool_use_id.as_deref(), Some("toolu_fake_0000"));
        assert_eq!(
            (t[2].text.as_str(), t[2].is_error),
            ("hello-from-bash", false)
        );
        assert!(t[4].is_error, "the failing command's result is an error");
        assert!(t[6].text.contains("All steps done."), "{}", t[6].text);
        assert_eq!(
            (t[7].role, t[7].text.as_str()),
            (TurnRole::Assistant, "All steps done.")
        );
        assert_eq!(t[7].ts, Some("2026-12-07T16:45:18.990Z".parse().unwrap()));
        assert_eq!(s.newest, t[7].ts);
        assert_eq!(s.last, Some((TurnRole::Assistant, Text)));
    }

    #[test]
    fn a_subagent_transcript_keeps_its_sidechain_lines() {
        let mut r = req(50);
        r.main = false;
        r.watch = Some("toolu_fake_0009".into());
        let s = run(SUBAGENT, &r);
        use TurnKind::*;
        let got: Vec<_> = kinds(&s)
            .into_iter()
            .map(|(_, k, t, x)| (k, t, x))
            .collect();
        assert_eq!(
            got,
            [
                (Prompt, None, "run: echo hello-from-subagent"),
                (
                    ToolUse,
                    Some("Bash"),
                    r#"{"command":"echo hello-from-subagent","description":"Run a scripted command"}"#
                ),
                (ToolResult, Some("Bash"), "hello-from-subagent"),
                (Text, None, "All steps done."),
            ]
        );
        assert!(s.watched);
        // Read as if it were a main transcript, its sidechain lines are not turns.
        assert_eq!(run(SUBAGENT, &req(50)).total, 0);
    }

    #[test]
    fn pages_go_back_from_the_end_and_forward_from_a_cursor() {
        let last = run(SESSION, &req(3));
        assert_eq!(
            last.turns.iter().map(|t| t.seq).collect::<Vec<_>>(),
            [5, 6, 7]
        );
        assert_eq!(last.total, 8);
        let mut r = req(3);
        r.before = Some(5);
        let older = run(SESSION, &r);
        assert_eq!(
            older.turns.iter().map(|t| t.seq).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        r.before = Some(2);
        let first = run(SESSION, &r);
        assert_eq!(
            first.turns.iter().map(|t| t.seq).collect::<Vec<_>>(),
            [0, 1]
        );
        let mut r = req(3);
        r.after = Some(1);
        let newer = run(SESSION, &r);
        assert_eq!(
            newer.turns.iter().map(|t| t.seq).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        r.after = Some(7);
        assert!(run(SESSION, &r).turns.is_empty());
        r.after = Some(2);
        r.before = Some(5);
        let between = run(SESSION, &r);
        assert_eq!(
            between.turns.iter().map(|t| t.seq).collect::<Vec<_>>(),
            [3, 4]
        );
    }

    #[test]
    fn broken_lines_are_skipped_and_counted() {
        let good = SUBAGENT.lines().next().unwrap();
        let text = format!(
            "not json\n[1,2]\n{{\"type\":\"user\"\n\n{good}\n{{\"type\":\"user\",\"message\":{{\"content\":5}}}}\n{{\"type\":\"assistant\",\"message\":{{\"content\":[{{\"type\":\"text\",\"text\":\"half"
        );
        let mut r = req(10);
        r.main = false;
        let s = run(&text, &r);
        assert_eq!(s.total, 1, "the one good prompt");
        assert_eq!(s.skipped, 4, "not json, an array, a cut object, content 5");
        assert!(s.truncated, "the last line has no end");
        // A complete last line without its newline is read.
        let s = run(good, &r);
        assert_eq!((s.total, s.truncated), (1, false));
    }

    #[test]
    fn a_line_over_the_cap_is_skipped_without_being_kept() {
        let good = SUBAGENT.lines().next().unwrap();
        let huge = format!(
            "{{\"type\":\"user\",\"message\":{{\"content\":\"{}\"}}}}",
            "x".repeat(MAX_LINE_BYTES + 10)
        );
        let mut r = req(10);
        r.main = false;
        let s = run(&format!("{good}\n{huge}\n{good}\n"), &r);
        assert_eq!((s.total, s.oversized, s.skipped), (2, 1, 0));
        let text = format!("{huge}\n");
        let mut lines = Lines::new(text.as_bytes());
        assert!(matches!(lines.next_line().unwrap(), Some(Line::Oversized)));
        assert!(lines.buf.capacity() <= MAX_LINE_BYTES + 1 + (64 << 10));
    }

    #[test]
    fn long_texts_are_cut_saying_so_and_secrets_redacted_before_the_cut() {
        let key = "sk-ant-api03-AbCdEf0123456789xyzAbCdEf0123456789xyz";
        // The key straddles the cut: its head must not show.
        let text = format!("{} {key} and more", "a".repeat(TEXT_CAP - 10));
        let line = serde_json::json!({
            "type": "assistant",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "message": {"content": [
                {"type": "thinking", "thinking": "hidden"},
                {"type": "text", "text": text},
                {"type": "tool_use", "id": "t1", "name": "Bash",
                 "input": {"command": format!("curl -H 'x-api-key: {key}' x")}},
            ]},
        });
        let s = run(&format!("{line}\n"), &req(10));
        assert_eq!(s.total, 2, "thinking is skipped");
        let cut = &s.turns[0];
        assert_eq!(cut.full_bytes, Some(text.len() as u64));
        assert!(
            cut.text
                .ends_with(&format!("…[cut: {} bytes in all]", text.len()))
        );
        assert!(!cut.text.contains("sk-ant-api"), "{}", cut.text);
        assert!(cut.text.len() < TEXT_CAP + 40);
        assert!(!s.turns[1].text.contains("AbCdEf"), "{}", s.turns[1].text);
        assert_eq!(s.turns[1].full_bytes, None);
    }

    #[test]
    fn control_characters_and_odd_blocks_pass_as_they_are() {
        let line = serde_json::json!({
            "type": "user",
            "message": {"content": [
                {"type": "text", "text": "\u{1b}]0;title\u{7} hi"},
                {"type": "image", "source": {}},
                {"type": "tool_result", "tool_use_id": "x", "content": [
                    {"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}
                ], "is_error": true},
                {"type": "something_new"},
                7,
            ]},
        });
        let meta = r#"{"type":"user","isMeta":true,"message":{"content":"injected"}}"#;
        let s = run(&format!("{line}\n{meta}\n"), &req(10));
        let got: Vec<_> = kinds(&s).into_iter().map(|(_, k, _, t)| (k, t)).collect();
        assert_eq!(
            got,
            [
                (TurnKind::Prompt, "\u{1b}]0;title\u{7} hi"),
                (TurnKind::Prompt, "[image]"),
                (TurnKind::ToolResult, "a\n[image]\nb"),
            ]
        );
        assert!(s.turns[2].is_error);
        assert_eq!(s.turns[2].tool, None, "its call was not seen");
        assert_eq!(s.turns[0].ts, None);
    }

    #[test]
    fn compact_counts_what_it_does_not_keep() {
        let v = serde_json::json!({"content": "é".repeat(5000)});
        let (text, full) = compact(&v);
        assert_eq!(full, serde_json::to_string(&v).unwrap().len());
        assert!(text.len() <= WINDOW && text.starts_with("{\"content\":\"é"));
    }
}
