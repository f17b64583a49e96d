//! Changing one top-level member of a JSON object in its text, leaving every
//! other byte as the user wrote it: their indentation, their compact arrays, their
//! line endings. A change then shows in a diff as exactly what changed.

use std::ops::Range;

use serde::Serialize;

use super::Json;

/// One member of the top-level object, as byte offsets into the text.
#[derive(Debug)]
struct Member {
    key: String,
    /// The key's opening quote.
    start: usize,
    /// The value, from its first byte to just past its last.
    value: Range<usize>,
}

/// `text` (one valid JSON object) with member `key` set to `value`, or removed
/// when `value` is `None`; a new member goes last. `None` when the text's layout
/// gives no safe place for the change (a one-line object, a repeated key, the
/// last member removed): the caller then writes the whole file anew.
pub fn set_member(text: &str, key: &str, value: Option<&Json>) -> Option<String> {
    let members = members(text)?;
    let mut found = members.iter().enumerate().filter(|(_, m)| m.key == key);
    let at = found.next().map(|(i, _)| i);
    if found.next().is_some() {
        return None;
    }
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    match (at, value) {
        (Some(i), Some(v)) => {
            let m = &members[i];
            let indent = line_indent(text, m.start)?;
            let rendered = render(v, indent, newline)?;
            Some([&text[..m.value.start], &rendered, &text[m.value.end..]].concat())
        }
        (None, Some(v)) => {
            let last = members.last()?;
            let indent = line_indent(text, last.start)?;
            let rendered = render(v, indent, newline)?;
            let key = serde_json::to_string(key).ok()?;
            let (head, tail) = text.split_at(last.value.end);
            Some(format!("{head},{newline}{indent}{key}: {rendered}{tail}"))
        }
        (Some(i), None) => {
            let cut = match (i.checked_sub(1), members.get(i + 1)) {
                // From the end of the member before: its comma goes with the removed one.
                (Some(before), _) => members[before].value.end..members[i].value.end,
                (None, Some(after)) => members[i].start..after.start,
                (None, None) => return None,
            };
            Some([&text[..cut.start], &text[cut.end..]].concat())
        }
        (None, None) => Some(text.to_owned()),
    }
}

/// The whitespace that starts the line holding `pos`, when only whitespace
/// precedes `pos` on that line and there is some.
fn line_indent(text: &str, pos: usize) -> Option<&str> {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let indent = &text[line_start..pos];
    (!indent.is_empty() && indent.chars().all(|c| c == ' ' || c == '\t')).then_some(indent)
}

/// `value` pretty-printed one level deep in an object indented by `indent`.
fn render(value: &Json, indent: &str, newline: &str) -> Option<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer).ok()?;
    let text = String::from_utf8(out).ok()?;
    Some(text.replace('\n', &format!("{newline}{indent}")))
}

/// The members of the top-level object of `text`.
fn members(text: &str) -> Option<Vec<Member>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, text.strip_prefix('\u{feff}').map_or(0, |_| 3));
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::new();
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(members);
    }
    loop {
        let start = i;
        let key_end = skip_string(b, i)?;
        let key: String = serde_json::from_str(&text[start..key_end]).ok()?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(b, i + 1);
        let value_end = skip_value(b, value_start)?;
        members.push(Member {
            key,
            start,
            value: value_start..value_end,
        });
        i = skip_ws(b, value_end);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(members),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// Past the string starting at `b[i]`.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// Past the value starting at `b[i]`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Json {
        serde_json::from_str(s).unwrap()
    }

    const HAND_MADE: &str = "{\n    \"model\": \"opus\",\n    \"allow\": [\"Bash(ls:*)\", \"Read\"],\n    \"n\": {\"a\": \"}]\\\"\"}\n}";

    #[test]
    fn adds_a_member_in_the_files_own_style() {
        let v = json(r#"{"Stop": [1]}"#);
        let out = set_member(HAND_MADE, "hooks", Some(&v)).unwrap();
        assert_eq!(
            out,
            "{\n    \"model\": \"opus\",\n    \"allow\": [\"Bash(ls:*)\", \"Read\"],\n    \"n\": {\"a\": \"}]\\\"\"},\n    \"hooks\": {\n        \"Stop\": [\n            1\n        ]\n    }\n}"
        );
        // Removing it again gives back the very same bytes.
        assert_eq!(set_member(&out, "hooks", None).unwrap(), HAND_MADE);
    }

    #[test]
    fn replaces_and_removes_members_anywhere() {
        let v = json("true");
        let out = set_member(HAND_MADE, "model", Some(&v)).unwrap();
        assert!(
            out.starts_with("{\n    \"model\": true,\n    \"allow\""),
            "{out}"
        );
        let out = set_member(HAND_MADE, "model", None).unwrap();
        assert!(out.starts_with("{\n    \"allow\""), "{out}");
        let out = set_member(HAND_MADE, "allow", None).unwrap();
        assert_eq!(json(&out), json(r#"{"model":"opus","n":{"a":"}]\""}}"#));
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let text = "{\r\n  \"a\": 1\r\n}\r\n";
        let out = set_member(text, "b", Some(&json("[2]"))).unwrap();
        assert_eq!(
            out,
            "{\r\n  \"a\": 1,\r\n  \"b\": [\r\n    2\r\n  ]\r\n}\r\n"
        );
    }

    #[test]
    fn declines_layouts_it_cannot_follow() {
        let v = json("1");
        assert_eq!(set_member(r#"{"a": 1}"#, "b", Some(&v)), None);
        assert_eq!(set_member("{}", "b", Some(&v)), None);
        assert_eq!(set_member("{\n  \"b\": 1\n}", "b", None), None);
        assert_eq!(
            set_member("{\n  \"b\": 1,\n  \"b\": 2\n}", "b", Some(&v)),
            None
        );
        assert_eq!(set_member("[1]", "b", Some(&v)), None);
    }
}
