//! Text from events shown to a person without letting it steer their terminal.
//!
//! An event's source and message come from anyone who can post to the collector or
//! write a log line. Printed raw, `ESC ] 0 ; … BEL` sets the terminal's title,
//! `ESC ] 52 ; …` writes the clipboard, `ESC [ 2 J` clears the screen, a newline
//! forges a second log line and U+202E turns the rest of the line around. Every
//! human-facing output goes through [`push_visible`]: such characters are shown as
//! escapes (`\x1b`, `\u{202e}`) instead.

/// Whether `c` could change how a terminal shows the text around it: C0 and C1
/// controls, DEL, and the Unicode bidirectional controls.
///
/// ```
/// assert!(swarm_obs::visible::is_steering('\u{1b}'));
/// assert!(swarm_obs::visible::is_steering('\u{202e}'));
/// assert!(!swarm_obs::visible::is_steering('é'));
/// ```
pub fn is_steering(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Appends `text` on one line, with each steering character shown as an escape:
/// a line break as `⏎`, a tab as a space, any other as `\x1b` or `\u{202e}`.
///
/// ```
/// let mut out = String::new();
/// swarm_obs::visible::push_visible(&mut out, "a\nb\u{1b}]0;pwned\u{7}");
/// assert_eq!(out, "a⏎b\\x1b]0;pwned\\x07");
/// ```
pub fn push_visible(out: &mut String, text: &str) {
    if !text.chars().any(is_steering) {
        out.push_str(text);
        return;
    }
    use std::fmt::Write;
    for c in text.chars() {
        match c {
            '\n' => out.push('⏎'),
            '\r' => {}
            '\t' => out.push(' '),
            c if (c as u32) < 0x100 && is_steering(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_steering(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Appends one line of a program's own output for its terminal: like
/// [`push_visible`], but colour and style sequences (`ESC [ … m`, SGR) are kept,
/// since they change only how text looks and most tools print them. Everything
/// else that could steer the terminal (titles, clipboard, cursor moves, screen
/// clears, bidi overrides) is shown as an escape.
///
/// ```
/// let mut out = String::new();
/// swarm_obs::visible::push_echo(&mut out, "\u{1b}[31mred\u{1b}[0m \u{1b}]0;pwned\u{7}");
/// assert_eq!(out, "\u{1b}[31mred\u{1b}[0m \\x1b]0;pwned\\x07");
/// ```
pub fn push_echo(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find('\u{1b}') {
        push_visible(out, &rest[..at]);
        let after = &rest[at + 1..];
        let params = after.strip_prefix('[').map(|p| {
            p.len()
                - p.trim_start_matches(|c: char| c.is_ascii_digit() || c == ';' || c == ':')
                    .len()
        });
        match params {
            Some(n) if after[1 + n..].starts_with('m') => {
                out.push_str(&rest[at..at + 1 + 1 + n + 1]);
                rest = &after[1 + n + 1..];
            }
            _ => {
                push_visible(out, "\u{1b}");
                rest = after;
            }
        }
    }
    push_visible(out, rest);
}

/// [`push_visible`] into a new string.
///
/// ```
/// assert_eq!(swarm_obs::visible::visible("ok\u{202e}"), "ok\\u{202e}");
/// ```
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_visible(&mut out, text);
    out
}

/// A JSON text with the steering characters serde_json leaves as they are (C1
/// controls, DEL and the bidirectional controls; it escapes C0 itself) written as
/// `\uXXXX` escapes: the same value, safe to print on a terminal.
///
/// ```
/// let line = serde_json::json!({"msg": "a\u{9b}2J\u{202e}"}).to_string();
/// assert_eq!(swarm_obs::visible::json_visible(&line), r#"{"msg":"a\u009b2J\u202e"}"#);
/// ```
pub fn json_visible(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.chars().any(is_steering) {
        return std::borrow::Cow::Borrowed(json);
    }
    use std::fmt::Write;
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_steering(c) && !matches!(c, '\n') {
            // Outside strings JSON holds only ASCII whitespace, which is not
            // steering but for the newline ending a line; inside a string each of
            // these is one UTF-16 unit, so one escape says it exactly.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_steering_character_becomes_visible() {
        let attacks = [
            "\u{1b}]0;title\u{7}",
            "\u{1b}]52;c;cHduZWQ=\u{7}",
            "\u{1b}[2J\u{1b}[H",
            "\u{9b}2J",
            "\u{202e}txt.exe",
            "\u{2066}x\u{2069}",
            "a\rb",
            "\u{7f}",
        ];
        for a in attacks {
            let v = visible(a);
            assert!(!v.chars().any(is_steering), "{a:?} -> {v:?}");
        }
        assert_eq!(visible("\u{1b}[2J"), "\\x1b[2J");
        assert_eq!(visible("\u{9b}"), "\\x9b");
        assert_eq!(visible("plain é ✓"), "plain é ✓");
    }

    #[test]
    fn echo_keeps_colours_and_nothing_else() {
        let mut out = String::new();
        push_echo(
            &mut out,
            "\u{1b}[1;38;5;196mbold\u{1b}[m \u{1b}[2J\u{1b}]52;c;eA==\u{7}\u{202e}\u{1b}[",
        );
        assert_eq!(
            out,
            "\u{1b}[1;38;5;196mbold\u{1b}[m \\x1b[2J\\x1b]52;c;eA==\\x07\\u{202e}\\x1b["
        );
        // What is left after taking the colour sequences out steers nothing.
        let stripped: String = out
            .replace("\u{1b}[1;38;5;196m", "")
            .replace("\u{1b}[m", "");
        assert!(!stripped.chars().any(is_steering), "{stripped:?}");
        for text in ["\u{1b}", "x\u{1b}[12", "\u{1b}[;m\u{1b}[5n", "é\u{1b}[0mé"] {
            let mut o = String::new();
            push_echo(&mut o, text); // no panic on any cut
        }
    }

    #[test]
    fn json_stays_the_same_value() {
        let v = serde_json::json!({"source": "s\u{85}\u{200f}", "msg": "x\u{1b}y\n"});
        let line = v.to_string();
        let safe = json_visible(&line);
        assert!(!safe.chars().any(is_steering), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }
}
