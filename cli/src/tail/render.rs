//! How a tail writes events: the library's human line (with a stable colour per
//! source), the JSON event, or the bare message.

use std::io::{self, IsTerminal, Write};

use swarm_obs::{Event, Kind, Level};

/// Output format of `swarm-obs tail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// `[TIMESTAMP] [LEVEL] [SOURCE] message`, as in `logs/<source>.log`.
    Human,
    /// One event per line, as in `events/*.jsonl`.
    Json,
    /// The message alone.
    Raw,
}

/// When to colour human lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal and `NO_COLOR` is not set.
    Auto,
    /// Always, even into a pipe.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given the environment: `NO_COLOR` (any non-empty value) and
    /// `TERM=dumb` turn `auto` off, as does a stdout that is not a terminal.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
                    && io::stdout().is_terminal()
            }
        }
    }
}

/// Colours sources are drawn from: readable on dark and light backgrounds, with
/// red left out so only errors are red.
const SOURCE_COLORS: [&str; 10] = ["32", "33", "34", "35", "36", "92", "93", "94", "95", "96"];
const RESET: &str = "\x1b[0m";

/// The colour of a source: the same on every run and every machine (FNV-1a, not
/// the randomly seeded std hasher).
pub fn source_color(source: &str) -> &'static str {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    SOURCE_COLORS[(h % SOURCE_COLORS.len() as u64) as usize]
}

/// The colour of an event's label: red for failures, yellow for warnings and people
/// needed, green for done.
fn label_color(ev: &Event) -> Option<&'static str> {
    match (ev.kind, ev.level) {
        (_, Level::Error) | (Kind::Error, _) => Some("1;31"),
        (Kind::Attention, _) | (_, Level::Warn) => Some("1;33"),
        (Kind::Done, _) => Some("1;32"),
        (Kind::Start, _) => Some("1"),
        (_, Level::Debug | Level::Trace) => Some("2"),
        _ => None,
    }
}

/// Writes events to an output in one format. A closed output (the reader of a pipe
/// went away) surfaces as [`io::ErrorKind::BrokenPipe`] for the caller to end quietly.
pub struct Printer<W: Write> {
    out: W,
    output: Output,
    color: bool,
    offset_secs: i32,
    line: String,
}

impl<W: Write> Printer<W> {
    /// A printer writing `output` lines to `out`, colouring human lines when `color`,
    /// with times in the zone `offset_secs` east of UTC.
    pub fn new(out: W, output: Output, color: bool, offset_secs: i32) -> Self {
        Self {
            out,
            output,
            color,
            offset_secs,
            line: String::with_capacity(256),
        }
    }

    /// Writes one event (buffered; see [`flush`](Self::flush)).
    pub fn print(&mut self, ev: &Event) -> io::Result<()> {
        self.line.clear();
        match self.output {
            Output::Human if self.color => {
                let plain = ev.human_line(self.offset_secs);
                colorize(&mut self.line, &plain, ev);
            }
            Output::Human => ev.push_human_line(&mut self.line, self.offset_secs),
            Output::Json => self.line.push_str(&swarm_obs::visible::json_visible(
                ev.to_json_line().trim_end(),
            )),
            Output::Raw => swarm_obs::visible::push_visible(&mut self.line, &ev.msg),
        }
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Appends `plain`, the human line of `ev`, with its label and source coloured.
fn colorize(out: &mut String, plain: &str, ev: &Event) {
    // `[ts] [LABEL] [source] msg`: the timestamp and the label hold no "] [".
    let label_at = plain.find("] [").map(|i| i + 3);
    let source_at = label_at.and_then(|l| plain[l..].find("] [").map(|i| l + i + 3));
    let (Some(label_at), Some(source_at)) = (label_at, source_at) else {
        out.push_str(plain);
        return;
    };
    let label_end = source_at - 3;
    // The line shows the source with its escapes made visible.
    let shown = swarm_obs::visible::visible(&ev.source);
    let source_end = source_at + shown.len();
    if plain.get(source_at..source_end) != Some(shown.as_str()) {
        out.push_str(plain);
        return;
    }
    out.push_str(&plain[..label_at]);
    match label_color(ev) {
        Some(c) => {
            out.push_str("\x1b[");
            out.push_str(c);
            out.push('m');
            out.push_str(&plain[label_at..label_end]);
            out.push_str(RESET);
        }
        None => out.push_str(&plain[label_at..label_end]),
    }
    out.push_str(&plain[label_end..source_at]);
    out.push_str("\x1b[");
    out.push_str(source_color(&ev.source));
    out.push('m');
    out.push_str(&plain[source_at..source_end]);
    out.push_str(RESET);
    out.push_str(&plain[source_end..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(source: &str, kind: Kind) -> Event {
        let mut ev = Event::new(source, kind, "Started TASK_1");
        ev.ts = "2026-01-05T14:32:15.000Z".parse().unwrap();
        ev
    }

    fn printed(output: Output, color: bool, ev: &Event) -> String {
        let mut p = Printer::new(Vec::new(), output, color, 0);
        p.print(ev).unwrap();
        String::from_utf8(p.out).unwrap()
    }

    #[test]
    fn formats() {
        let ev = sample("backend", Kind::Start);
        assert_eq!(
            printed(Output::Human, false, &ev),
            "[2026-01-05 14:32:15] [START] [backend] Started TASK_1\n"
        );
        assert_eq!(printed(Output::Raw, false, &ev), "Started TASK_1\n");
        let json = printed(Output::Json, true, &ev);
        assert_eq!(Event::from_json(json.trim_end()).unwrap(), ev);
        assert!(!json.contains('\x1b'));
    }

    #[test]
    fn colour_marks_label_and_source_only() {
        let ev = sample("backend", Kind::Error);
        let line = printed(Output::Human, true, &ev);
        let c = source_color("backend");
        assert_eq!(
            line,
            format!(
                "[2026-01-05 14:32:15] [\x1b[1;31mERROR\x1b[0m] [\x1b[{c}mbackend\x1b[0m] Started TASK_1\n"
            )
        );
        // A source that looks like the line's own brackets is still coloured whole.
        let odd = sample("a] [b", Kind::Log);
        let line = printed(Output::Human, true, &odd);
        assert!(
            line.contains("\x1b[") && line.ends_with("] Started TASK_1\n"),
            "{line}"
        );
    }

    #[test]
    fn a_source_with_escapes_is_coloured_as_shown() {
        let ev = sample("evil\x1b]0;t\x07", Kind::Log);
        let line = printed(Output::Human, true, &ev);
        let c = source_color(&ev.source);
        assert!(
            line.contains(&format!("[\x1b[{c}mevil\\x1b]0;t\\x07\x1b[0m]")),
            "{line:?}"
        );
    }

    #[test]
    fn source_colours_are_stable_and_spread() {
        assert_eq!(source_color("backend"), source_color("backend"));
        let distinct: std::collections::HashSet<&str> = (0..40)
            .map(|i| source_color(&format!("worker-{i}")))
            .collect();
        assert!(distinct.len() >= 5, "{distinct:?}");
    }
}
