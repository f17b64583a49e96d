//! The shapes secrets take inside text: token prefixes, bearer and
//! `Authorization:` values, `NAME=value` assignments, passwords in URLs, private
//! key blocks, JWTs, bare AWS secret keys and password flags.

use super::Redactor;

/// Which bytes may follow a token's prefix.
type TokenBytes = fn(&u8) -> bool;

/// Prefixes of token shapes, each with the characters a token may hold and the
/// fewest it must have after the prefix.
const TOKEN_SHAPES: &[(&str, TokenBytes, usize)] = &[
    ("sk-ant-", is_token_byte, 16),
    ("sk-", is_token_byte, 20),
    ("github_pat_", is_token_byte, 30),
    ("ghp_", u8::is_ascii_alphanumeric, 30),
    ("gho_", u8::is_ascii_alphanumeric, 30),
    ("ghu_", u8::is_ascii_alphanumeric, 30),
    ("ghs_", u8::is_ascii_alphanumeric, 30),
    ("ghr_", u8::is_ascii_alphanumeric, 30),
    ("xoxb-", is_token_byte, 10),
    ("xoxp-", is_token_byte, 10),
    ("xoxa-", is_token_byte, 10),
    ("AKIA", is_upper_alnum, 16),
    ("ASIA", is_upper_alnum, 16),
    // Stripe live and restricted keys (and their test twins).
    ("sk_live_", is_token_byte, 16),
    ("rk_live_", is_token_byte, 16),
    ("sk_test_", is_token_byte, 16),
    ("rk_test_", is_token_byte, 16),
    // Google API keys.
    ("AIza", is_token_byte, 30),
    // npm, GitLab, Hugging Face, PyPI.
    ("npm_", u8::is_ascii_alphanumeric, 30),
    ("glpat-", is_token_byte, 16),
    ("hf_", u8::is_ascii_alphanumeric, 30),
    ("pypi-", is_token_byte, 50),
    // Slack app-level, session and refresh tokens.
    ("xapp-", is_token_byte, 10),
    ("xoxs-", is_token_byte, 10),
    ("xoxr-", is_token_byte, 10),
];

/// Length of an AWS secret access key, the one well-known secret with no prefix.
const AWS_SECRET_LEN: usize = 40;

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
}

fn is_token_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_'
}

fn is_upper_alnum(b: &u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl Redactor {
    /// If a secret's value starts at or right after `i`, its byte span.
    pub(super) fn secret_at(&self, b: &[u8], i: usize) -> Option<(usize, usize)> {
        let boundary = i == 0 || !is_ident_byte(b[i - 1]);
        let rest = &b[i..];
        if boundary {
            if let Some(span) = private_key_block(b, i)
                .or_else(|| jwt(b, i))
                .or_else(|| self.password_flag(b, i))
            {
                return Some(span);
            }
            for (prefix, ok, min) in TOKEN_SHAPES {
                if rest.starts_with(prefix.as_bytes()) {
                    let n = rest[prefix.len()..].iter().take_while(|c| ok(c)).count();
                    if n >= *min {
                        return Some((i, i + prefix.len() + n));
                    }
                }
            }
            for prefix in &self.config.token_prefixes {
                if !prefix.is_empty() && rest.starts_with(prefix.as_bytes()) {
                    let n = rest[prefix.len()..]
                        .iter()
                        .take_while(|c| is_token_byte(c))
                        .count();
                    if n >= 1 {
                        return Some((i, i + prefix.len() + n));
                    }
                }
            }
            if let Some(span) = aws_secret(b, i) {
                return Some(span);
            }
            if starts_with_ci(rest, b"bearer ") {
                let v = i + 7;
                let n = b[v..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || b"-._~+/=".contains(c))
                    .count();
                if n >= 8 {
                    return Some((v, v + n));
                }
            }
            if starts_with_ci(rest, b"authorization:") {
                let mut v = i + 14;
                while v < b.len() && b[v] == b' ' {
                    v += 1;
                }
                let n = b[v..]
                    .iter()
                    .take_while(|c| !matches!(c, b'\n' | b'\r' | b'"' | b'\''))
                    .count();
                if n > 0 {
                    return Some((v, v + n));
                }
            }
        }
        match b[i] {
            // NAME=value and NAME: value, where NAME is a secret key.
            b'=' | b':' if i > 0 => {
                // A quoted key, as in JSON text: `"name": value`.
                let name_end = if b[i - 1] == b'"' { i - 1 } else { i };
                let name_start = b[..name_end]
                    .iter()
                    .rposition(|&c| !is_ident_byte(c))
                    .map_or(0, |p| p + 1);
                let name = std::str::from_utf8(&b[name_start..name_end]).ok()?;
                if name.is_empty() || !self.is_secret_key(name) {
                    return None;
                }
                let mut v = i + 1;
                while v < b.len() && b[v] == b' ' {
                    v += 1;
                }
                let quote = b.get(v).copied().filter(|c| matches!(c, b'"' | b'\''));
                if quote.is_some() {
                    v += 1;
                }
                let n = b[v..]
                    .iter()
                    .take_while(|&&c| match quote {
                        Some(q) => c != q,
                        None => !c.is_ascii_whitespace() && !b"\"'&;,".contains(&c),
                    })
                    .count();
                (n > 0).then_some((v, v + n))
            }
            // scheme://user:password@host
            b'@' => {
                let scheme = find_back(b, i, b"://")?;
                let colon = b[scheme..i].iter().rposition(|&c| c == b':')? + scheme;
                let user_ok = b[scheme..colon].iter().all(|c| !b"/ \"'".contains(c));
                (user_ok && colon + 1 < i && !b[colon + 1..i].contains(&b'/'))
                    .then_some((colon + 1, i))
            }
            _ => None,
        }
    }
}
/// The index just past `pat` if it occurs in `b[..end]` within the current word.
/// A PEM private key block (`-----BEGIN … PRIVATE KEY-----` to its `END` line,
/// or to the end of the text when that was cut off).
fn private_key_block(b: &[u8], i: usize) -> Option<(usize, usize)> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if !b[i..].starts_with(BEGIN) {
        return None;
    }
    let header_end = i
        + BEGIN.len()
        + b[i + BEGIN.len()..]
            .iter()
            .position(|&c| c == b'\n' || c == b'\r')
            .unwrap_or(b.len() - i - BEGIN.len());
    let header = &b[i..header_end];
    if !header.windows(11).any(|w| w == b"PRIVATE KEY") {
        return None;
    }
    let end = match find(&b[header_end..], b"-----END ") {
        Some(p) => {
            let after = header_end + p + 9;
            // The closing `-----` of the END line.
            find(&b[after..], b"-----").map_or(b.len(), |q| after + q + 5)
        }
        None => b.len(),
    };
    Some((i, end))
}

/// A JSON Web Token: three base64url parts, the first two JSON objects (`eyJ`).
fn jwt(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let part = |from: usize| {
        b[from..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-' || **c == b'_')
            .count()
    };
    if !b[i..].starts_with(b"eyJ") {
        return None;
    }
    let header = part(i);
    let dot1 = i + header;
    if header < 10 || b.get(dot1) != Some(&b'.') {
        return None;
    }
    let claims = part(dot1 + 1);
    let dot2 = dot1 + 1 + claims;
    if claims < 2 || b.get(dot2) != Some(&b'.') {
        return None;
    }
    Some((i, dot2 + 1 + part(dot2 + 1)))
}

/// A bare AWS secret access key: exactly 40 base64 characters, mixed case with
/// digits (which rules out hex digests and words), not a path.
fn aws_secret(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (is_base64_byte(b[i - 1]) || b[i - 1] == b'=') || b[i] == b'/' {
        return None;
    }
    let n = b[i..].iter().take_while(|c| is_base64_byte(**c)).count();
    if n != AWS_SECRET_LEN || b.get(i + n) == Some(&b'=') {
        return None;
    }
    let run = &b[i..i + n];
    let count = |f: fn(&u8) -> bool| run.iter().filter(|c| f(c)).count();
    let slashes = count(|c| *c == b'/' || *c == b'+');
    (count(u8::is_ascii_digit) >= 1
        && count(u8::is_ascii_uppercase) >= 3
        && count(u8::is_ascii_lowercase) >= 3
        && slashes <= 4)
        .then_some((i, i + n))
}

impl Redactor {
    /// The value after a secret-named flag and a space (`--password X`,
    /// `--api-key X`), or glued to a MySQL client's `-p` (`mysql -u root -pX`).
    fn password_flag(&self, b: &[u8], i: usize) -> Option<(usize, usize)> {
        let value = |from: usize| {
            let quote = b.get(from).copied().filter(|c| matches!(c, b'"' | b'\''));
            let start = from + usize::from(quote.is_some());
            let n = b[start.min(b.len())..]
                .iter()
                .take_while(|&&c| match quote {
                    Some(q) => c != q,
                    None => !c.is_ascii_whitespace() && c != b'"' && c != b'\'',
                })
                .count();
            (n > 0 && b.get(start) != Some(&b'-')).then_some((start, start + n))
        };
        if b[i..].starts_with(b"--") {
            let name_end = i + 2 + b[i + 2..].iter().take_while(|c| is_ident_byte(**c)).count();
            let name = std::str::from_utf8(&b[i + 2..name_end]).ok()?;
            if name.is_empty() || b.get(name_end) != Some(&b' ') || !self.is_secret_key(name) {
                return None;
            }
            let mut v = name_end;
            while b.get(v) == Some(&b' ') {
                v += 1;
            }
            return value(v);
        }
        if b[i..].starts_with(b"-p")
            && b.get(i + 2).is_some_and(|c| !c.is_ascii_whitespace())
            && (find_ci(b, b"mysql") || find_ci(b, b"mariadb"))
        {
            return value(i + 2);
        }
        None
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn find_back(b: &[u8], end: usize, pat: &[u8]) -> Option<usize> {
    let word_start = b[..end]
        .iter()
        .rposition(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\''))
        .map_or(0, |p| p + 1);
    let word = &b[word_start..end];
    word.windows(pat.len())
        .position(|w| w == pat)
        .map(|p| word_start + p + pat.len())
}

fn starts_with_ci(b: &[u8], pat: &[u8]) -> bool {
    b.len() >= pat.len() && b[..pat.len()].eq_ignore_ascii_case(pat)
}

#[cfg(test)]
mod tests {
    use crate::Redactor;

    fn r(s: &str) -> String {
        Redactor::default().redact_str(s)
    }

    #[test]
    fn newer_token_shapes_are_redacted() {
        let cases = [
            (
                "stripe sk_live_51Habcdefghijklmnop0123 x",
                "stripe [REDACTED] x",
            ),
            ("rk_live_0123456789abcdefghij", "[REDACTED]"),
            (
                "key=AIzaSyA-0123456789abcdefghijklmnopqrstu",
                "key=[REDACTED]",
            ),
            (
                "//registry/:_authToken=npm_0123456789abcdefghijklmnopqrstuvwxyz",
                "//registry/:_authToken=[REDACTED]",
            ),
            ("glpat-abcdefghij0123456789 push", "[REDACTED] push"),
            ("xapp-1-A0123456789-0123456789-abcdef", "[REDACTED]"),
            ("hf_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED]"),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "input: {input}");
        }
    }

    #[test]
    fn private_key_blocks_are_redacted_whole_even_when_cut() {
        let pem = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\nafter";
        assert_eq!(r(pem), "before\n[REDACTED]\nafter");
        let cut = "key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA";
        assert_eq!(r(cut), "key: [REDACTED]");
        // A certificate is public: left alone.
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(r(cert), cert);
    }

    #[test]
    fn jwts_bare_aws_secrets_and_password_flags_are_redacted() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(r(&format!("cookie {jwt};")), "cookie [REDACTED];");
        assert_eq!(
            r(
                "aws configure set aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY now"
            ),
            "aws configure set aws_secret_access_key [REDACTED] now"
        );
        assert_eq!(
            r("mytool --password hunter2 --user bob"),
            "mytool --password [REDACTED] --user bob"
        );
        assert_eq!(
            r("cli --api-key 'a b c' go"),
            "cli --api-key '[REDACTED]' go"
        );
        assert_eq!(
            r("mysql -u root -pS3cret db"),
            "mysql -u root -p[REDACTED] db"
        );
    }

    #[test]
    fn look_alikes_are_left_alone() {
        for s in [
            // A git object id, a path, a long word, a flag without a value.
            "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            "/usr/local/lib/python3.12/site-packages/Foo/Bar.py",
            "mkdir -p build && ssh -p22 host",
            "cargo test --token-file tok.txt",
            "--password",
            "eyJ is how base64 of {\" starts",
            "-----BEGIN PUBLIC KEY-----",
        ] {
            assert_eq!(r(s), s);
        }
    }

    #[test]
    fn secrets_as_json_keys_and_credentials_values_are_redacted() {
        let mut v = serde_json::json!({
            "ghp_0123456789abcdefghijABCDEFGHIJ0123": true,
            "credentials": {"user": "u", "pass": "p"},
            "aws_credentials": ["x"],
            "kept": 1,
        });
        Redactor::default().redact_value(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "[REDACTED]": true,
                "credentials": "[REDACTED]",
                "aws_credentials": "[REDACTED]",
                "kept": 1,
            })
        );
    }
}
