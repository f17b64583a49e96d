//! Shell words in command lines that a shell will run: quoting a path as one
//! word, and finding the program a command line runs.

use std::ops::Range;

/// `path` as one shell word (Claude Code runs hook commands with a shell).
///
/// ```text
/// /usr/bin/swarm-hook          → /usr/bin/swarm-hook
/// /home/a b/swarm-hook         → '/home/a b/swarm-hook'
/// ```
pub fn shell_word(path: &str) -> String {
    let plain = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if plain {
        path.to_owned()
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}

/// The program a shell command line runs: its first word after any `NAME=value`
/// assignments, unquoted, with the byte range of that word as written.
pub fn program_word(command: &str) -> Option<(Range<usize>, String)> {
    let mut chars = command.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let (start, _) = *chars.peek()?;
        let mut word = String::new();
        let mut end = command.len();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c.is_whitespace() => {
                    end = i;
                    break;
                }
                '\'' => word.extend(chars.by_ref().map(|(_, c)| c).take_while(|&c| c != '\'')),
                '"' => {
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => word.extend(chars.next().map(|(_, c)| c)),
                            c => word.push(c),
                        }
                    }
                }
                '\\' => word.extend(chars.next().map(|(_, c)| c)),
                c => word.push(c),
            }
        }
        if !is_assignment(&command[start..end]) {
            return Some((start..end, word));
        }
    }
}

/// `NAME=value` as the shell sees it before a command.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_words() {
        fn p(s: &str) -> Option<(&str, String)> {
            program_word(s).map(|(r, w)| (&s[r], w))
        }
        assert_eq!(
            p("swarm-hook"),
            Some(("swarm-hook", "swarm-hook".to_owned()))
        );
        assert_eq!(
            p("  A=1 B='x y' /bin/swarm-hook --v"),
            Some(("/bin/swarm-hook", "/bin/swarm-hook".to_owned()))
        );
        assert_eq!(
            p("'/home/a b/swarm-hook'"),
            Some(("'/home/a b/swarm-hook'", "/home/a b/swarm-hook".to_owned()))
        );
        assert_eq!(
            p(r#""/x/\"q\"/h" arg"#),
            Some((r#""/x/\"q\"/h""#, r#"/x/"q"/h"#.to_owned()))
        );
        assert_eq!(p("   "), None);
        assert_eq!(p("A=1"), None);
        assert_eq!(
            p("'unterminated"),
            Some(("'unterminated", "unterminated".to_owned()))
        );
    }

    #[test]
    fn shell_words_quote_only_when_needed() {
        assert_eq!(shell_word("/usr/bin/swarm-hook"), "/usr/bin/swarm-hook");
        assert_eq!(shell_word("/a b/swarm-hook"), "'/a b/swarm-hook'");
        assert_eq!(shell_word("/it's/h"), r"'/it'\''s/h'");
        let (_, w) = program_word(&shell_word("/it's here/h")).unwrap();
        assert_eq!(w, "/it's here/h");
    }
}
