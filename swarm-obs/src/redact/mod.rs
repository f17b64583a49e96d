//! Redaction of secrets and caps on size, applied before anything leaves a hook or a
//! worker.
//!
//! Two rules find secrets:
//! - **by key**: the value of any object key whose name ends in `_KEY`, `_TOKEN`,
//!   `_SECRET`, `PASSWORD` or `CREDENTIALS` (or is `authorization`, `token`,
//!   `secret`, `apikey`, `passwd`, `cookie`), compared case-insensitively with `-`
//!   read as `_`; the same names in `NAME=value` assignments and `--name value`
//!   flags inside strings;
//! - **by shape**: Anthropic (`sk-ant-…`), OpenAI (`sk-…`), GitHub (`ghp_…`,
//!   `github_pat_…`), AWS access key ids (`AKIA…`) and bare secret keys, Slack
//!   (`xoxb-…`, `xapp-…`), Stripe (`sk_live_…`), Google (`AIza…`), npm (`npm_…`),
//!   GitLab (`glpat-…`), Hugging Face and PyPI tokens, JWTs, PEM private key
//!   blocks, bearer tokens, `Authorization:` header values, passwords in URLs and
//!   a MySQL client's `-pPASSWORD`. A secret used as an object key is redacted too.
//!
//! `docs/security.md` has the table of what is and is not caught. Every secret
//! becomes `[REDACTED]`. Strings longer than the cap are cut with a
//! marker saying how much was dropped, and a whole payload over its cap is shrunk
//! until it fits.

mod shapes;

use serde::Deserialize;
use serde_json::{Map, Value};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Limits and extra patterns for [`Redactor`]; the `[redaction]` table of `config.toml`.
///
/// ```
/// use swarm_obs::RedactConfig;
/// let cfg = RedactConfig { max_string_bytes: 1024, ..RedactConfig::default() };
/// assert_eq!(cfg.max_payload_bytes, 64 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactConfig {
    /// Longest string kept whole, in bytes (default 4 KiB).
    pub max_string_bytes: usize,
    /// Largest payload kept, in bytes of JSON (default 64 KiB).
    pub max_payload_bytes: usize,
    /// Most array items kept (default 200).
    pub max_array_items: usize,
    /// Deepest nesting kept (default 32).
    pub max_depth: usize,
    /// More key names whose values are secret (exact, case-insensitive).
    pub secret_keys: Vec<String>,
    /// More token prefixes whose tokens are secret (e.g. `"glpat-"`).
    pub token_prefixes: Vec<String>,
}

impl Default for RedactConfig {
    fn default() -> Self {
        Self {
            max_string_bytes: 4 * 1024,
            max_payload_bytes: 64 * 1024,
            max_array_items: 200,
            max_depth: 32,
            secret_keys: Vec::new(),
            token_prefixes: Vec::new(),
        }
    }
}

/// Applies [`RedactConfig`] to strings and JSON values.
///
/// ```
/// use swarm_obs::Redactor;
/// let r = Redactor::default();
/// let mut v = serde_json::json!({
///     "command": "curl -H 'Authorization: Bearer abc.def.ghi' https://x",
///     "env": {"OPENAI_API_KEY": "sk-proj-0123456789abcdefghijklmn"},
/// });
/// r.redact_value(&mut v);
/// assert_eq!(v["env"]["OPENAI_API_KEY"], "[REDACTED]");
/// assert!(!v["command"].as_str().unwrap().contains("abc.def"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    config: RedactConfig,
}

impl Redactor {
    /// A redactor with the given limits and patterns.
    pub fn new(config: RedactConfig) -> Self {
        Self { config }
    }

    /// The limits in force.
    pub fn config(&self) -> &RedactConfig {
        &self.config
    }

    /// Whether the value of a key with this name is a secret.
    ///
    /// ```
    /// use swarm_obs::Redactor;
    /// let r = Redactor::default();
    /// assert!(r.is_secret_key("GITHUB_TOKEN"));
    /// assert!(r.is_secret_key("db-password"));
    /// assert!(r.is_secret_key("Authorization"));
    /// assert!(!r.is_secret_key("input_tokens"));
    /// ```
    pub fn is_secret_key(&self, key: &str) -> bool {
        // Compared byte by byte with `-` read as `_` and ASCII case folded, without
        // allocating: this runs for every field of every event a worker logs.
        let k = key.as_bytes();
        let norm = |c: u8| {
            if c == b'-' {
                b'_'
            } else {
                c.to_ascii_uppercase()
            }
        };
        let ends = |suffix: &[u8]| {
            k.len() >= suffix.len()
                && k[k.len() - suffix.len()..]
                    .iter()
                    .zip(suffix)
                    .all(|(&a, &b)| norm(a) == b)
        };
        const NAMES: [&[u8]; 7] = [
            b"AUTHORIZATION",
            b"TOKEN",
            b"SECRET",
            b"APIKEY",
            b"PASSWD",
            b"COOKIE",
            b"SET_COOKIE",
        ];
        ends(b"_KEY")
            || ends(b"CREDENTIALS")
            || ends(b"_TOKEN")
            || ends(b"_SECRET")
            || ends(b"PASSWORD")
            || NAMES.iter().any(|n| k.len() == n.len() && ends(n))
            || self
                .config
                .secret_keys
                .iter()
                .any(|s| s.eq_ignore_ascii_case(key))
    }

    /// Redacts secrets in a JSON value in place and applies the string, array and
    /// depth caps. Does not apply the total payload cap: see [`Redactor::payload`].
    pub fn redact_value(&self, v: &mut Value) {
        self.walk(
            v,
            0,
            self.config.max_string_bytes,
            self.config.max_array_items,
        );
    }

    fn walk(&self, v: &mut Value, depth: usize, max_str: usize, max_items: usize) {
        match v {
            Value::String(s) => {
                if let Some(new) = self.redact_capped(s, max_str) {
                    *s = new;
                }
            }
            Value::Array(items) => {
                if depth >= self.config.max_depth {
                    *v = Value::String(format!("…[{} items deeper than {}]", items.len(), depth));
                    return;
                }
                if items.len() > max_items {
                    let dropped = items.len() - max_items;
                    items.truncate(max_items);
                    items.push(Value::String(format!("…[truncated {dropped} items]")));
                }
                for item in items {
                    self.walk(item, depth + 1, max_str, max_items);
                }
            }
            Value::Object(map) => {
                if depth >= self.config.max_depth {
                    *v = Value::String(format!("…[{} keys deeper than {}]", map.len(), depth));
                    return;
                }
                // A secret used as a key (`{"sk-ant-…": …}`) is renamed; rare, so
                // the keys are only collected when one is found.
                let renamed: Vec<(String, String)> = map
                    .keys()
                    .filter_map(|k| self.redact_secrets(k).map(|new| (k.clone(), new)))
                    .collect();
                for (old, new) in renamed {
                    if let Some(item) = map.remove(&old) {
                        map.insert(new, item);
                    }
                }
                for (k, item) in map.iter_mut() {
                    if self.is_secret_key(k) && !item.is_null() && *item != Value::Bool(false) {
                        *item = Value::String(REDACTED.to_owned());
                    } else {
                        self.walk(item, depth + 1, max_str, max_items);
                    }
                }
            }
            _ => {}
        }
    }

    /// Redacts every text an event carries out of the process: the message, task,
    /// tool, hook, agent type, ids, fields and payload (with the string, array and
    /// depth caps; the payload's total cap is [`payload`](Self::payload)'s job).
    /// Nothing is allocated for an event without secrets that fits the caps.
    ///
    /// ```
    /// use swarm_obs::{Event, Kind, Redactor};
    /// let mut ev = Event::new("w", Kind::Start, "Started echo sk-ant-api03-AbCdEf0123456789xyz");
    /// ev.task = Some("echo sk-ant-api03-AbCdEf0123456789xyz".into());
    /// Redactor::default().redact_event(&mut ev);
    /// assert_eq!(ev.task.as_deref(), Some("echo [REDACTED]"));
    /// assert_eq!(ev.msg, "Started echo [REDACTED]");
    /// ```
    pub fn redact_event(&self, ev: &mut crate::Event) {
        self.redact_string(&mut ev.msg);
        let texts = [
            &mut ev.task,
            &mut ev.tool,
            &mut ev.hook,
            &mut ev.agent_type,
            &mut ev.session,
            &mut ev.agent,
            &mut ev.prompt_id,
            &mut ev.tool_use_id,
        ];
        for text in texts.into_iter().flatten() {
            self.redact_string(text);
        }
        if !ev.fields.is_empty() {
            let mut v = Value::Object(std::mem::take(&mut ev.fields));
            self.redact_value(&mut v);
            if let Value::Object(m) = v {
                ev.fields = m;
            }
        }
        if let Some(p) = &mut ev.payload {
            self.redact_value(p);
        }
    }

    /// Redacts a payload and shrinks it until its JSON fits `max_payload_bytes`:
    /// first with the configured caps, then with tighter ones, and at last by keeping
    /// only short top-level scalars and a note of what was dropped.
    pub fn payload(&self, mut v: Value) -> Value {
        let max = self.config.max_payload_bytes;
        self.redact_value(&mut v);
        if json_len(&v) <= max {
            return v;
        }
        let tight_str = (self.config.max_string_bytes / 8).max(64);
        let tight_items = (self.config.max_array_items / 10).max(5);
        self.walk(&mut v, 0, tight_str, tight_items);
        let size = json_len(&v);
        if size <= max {
            return v;
        }
        let mut kept = Map::new();
        let mut kept_bytes = 0;
        if let Value::Object(map) = v {
            for (k, item) in map {
                let short = match &item {
                    Value::String(s) => s.len() <= 256,
                    Value::Number(_) | Value::Bool(_) | Value::Null => true,
                    _ => false,
                };
                let cost = k.len() + json_len(&item) + 4;
                if short && kept_bytes + cost <= max / 2 {
                    kept_bytes += cost;
                    kept.insert(k, item);
                }
            }
        }
        kept.insert(
            "_truncated".to_owned(),
            Value::String(format!("payload of {size} bytes over the {max}-byte cap")),
        );
        Value::Object(kept)
    }

    /// Redacts secrets in a string and caps its length; `Cow`-like: borrowed input is
    /// returned as is when nothing changed.
    ///
    /// ```
    /// use swarm_obs::Redactor;
    /// let r = Redactor::default();
    /// assert_eq!(r.redact_str("export GITHUB_TOKEN=ghp_abc123 && make"), "export GITHUB_TOKEN=[REDACTED] && make");
    /// assert_eq!(r.redact_str("plain text"), "plain text");
    /// ```
    pub fn redact_str(&self, s: &str) -> String {
        self.redact_capped(s, self.config.max_string_bytes)
            .unwrap_or_else(|| s.to_owned())
    }

    /// Like [`redact_str`](Self::redact_str), in place: `s` is left untouched, and
    /// nothing is allocated, when it holds no secret and fits the cap.
    ///
    /// ```
    /// let mut s = String::from("token ghp_0123456789abcdefghijklmnopqrstuvwxyz");
    /// swarm_obs::Redactor::default().redact_string(&mut s);
    /// assert_eq!(s, "token [REDACTED]");
    /// ```
    pub fn redact_string(&self, s: &mut String) {
        if let Some(new) = self.redact_capped(s, self.config.max_string_bytes) {
            *s = new;
        }
    }

    /// `None` when `s` needs no change.
    fn redact_capped(&self, s: &str, max: usize) -> Option<String> {
        // Redact a window a little past the cap, then cut: a secret is never split
        // by the cut with its head left readable.
        let window = floor_char_boundary(s, max.saturating_add(512));
        let redacted = self.redact_secrets(&s[..window]);
        let text = redacted.as_deref().unwrap_or(&s[..window]);
        if s.len() <= max {
            return redacted;
        }
        let cut = floor_char_boundary(text, max);
        let dropped = s.len() - window + (text.len() - cut);
        Some(format!("{}…[truncated {dropped} bytes]", &text[..cut]))
    }

    /// `None` when `s` holds no secret.
    fn redact_secrets(&self, s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if let Some(end) = self.secret_at(b, i) {
                let (start, end) = end;
                spans.push((start, end));
                i = end.max(i + 1);
            } else {
                i += 1;
            }
        }
        if spans.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for (start, end) in spans {
            out.push_str(&s[last..start]);
            out.push_str(REDACTED);
            last = end;
        }
        out.push_str(&s[last..]);
        Some(out)
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn json_len(v: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r() -> Redactor {
        Redactor::default()
    }

    #[test]
    fn token_shapes_are_redacted() {
        let cases = [
            (
                "key sk-ant-api03-AbCdEf0123456789_xyz-XYZ end",
                "key [REDACTED] end",
            ),
            ("sk-proj-0123456789abcdefghij0123", "[REDACTED]"),
            (
                "tok=ghp_0123456789abcdefghijABCDEFGHIJ0123",
                "tok=[REDACTED]",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
                "[REDACTED]",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE here", "aws [REDACTED] here"),
            ("slack xoxb-1234567890-abcdef", "slack [REDACTED]"),
            (
                "-H 'Authorization: Bearer abc.def.ghi'",
                "-H 'Authorization: [REDACTED]'",
            ),
            ("bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "bearer [REDACTED]"),
            (
                "postgres://app:hunter2@db:5432/x",
                "postgres://app:[REDACTED]@db:5432/x",
            ),
            (
                "export OPENAI_API_KEY=abc123; ls",
                "export OPENAI_API_KEY=[REDACTED]; ls",
            ),
            (
                "DB_PASSWORD='s3cret pw' run",
                "DB_PASSWORD='[REDACTED]' run",
            ),
            (
                r#"{"client_secret": "abc"}"#,
                r#"{"client_secret": "[REDACTED]"}"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r().redact_str(input), want, "input: {input}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in [
            "ask-me anything",
            "sk-short",
            "task-123 done",
            "email a@b.c",
            "https://example.com/path@v2",
            "see https://x.io/a:b@c",
            "input_tokens: 50",
            "AKIA is a prefix",
        ] {
            assert_eq!(r().redact_str(s), s);
        }
    }

    #[test]
    fn keys_redact_whole_values() {
        let mut v = json!({
            "headers": {"Authorization": "Basic dXNlcjpwYXNz", "x-api-key": 42},
            "usage": {"input_tokens": 50, "output_tokens": 10},
            "list": [{"password": {"nested": true}}],
            "session_token": null,
        });
        r().redact_value(&mut v);
        assert_eq!(v["headers"]["Authorization"], REDACTED);
        assert_eq!(v["headers"]["x-api-key"], REDACTED);
        assert_eq!(v["usage"]["input_tokens"], 50);
        assert_eq!(v["list"][0]["password"], REDACTED);
        assert!(v["session_token"].is_null());
    }

    #[test]
    fn extra_patterns_from_config() {
        let r = Redactor::new(RedactConfig {
            secret_keys: vec!["pin".into()],
            token_prefixes: vec!["glpat-".into()],
            ..RedactConfig::default()
        });
        let mut v = json!({"PIN": "1234", "cmd": "git push glpat-abcdef"});
        r.redact_value(&mut v);
        assert_eq!(v, json!({"PIN": REDACTED, "cmd": "git push [REDACTED]"}));
    }

    #[test]
    fn long_strings_are_cut_with_a_marker() {
        let r = Redactor::new(RedactConfig {
            max_string_bytes: 10,
            ..RedactConfig::default()
        });
        assert_eq!(
            r.redact_str("0123456789abc"),
            "0123456789…[truncated 3 bytes]"
        );
        // A cut inside a multi-byte character moves back to a boundary.
        assert_eq!(r.redact_str("ééééééé"), "ééééé…[truncated 4 bytes]");
        // A secret straddling the cut is redacted, not half shown.
        let s = format!("12345 {}", "sk-ant-0123456789abcdefghij");
        assert_eq!(r.redact_str(&s), "12345 [RED…[truncated 6 bytes]");
        let huge = "x".repeat(10_000_000);
        assert!(r.redact_str(&huge).ends_with("…[truncated 9999990 bytes]"));
    }

    #[test]
    fn payload_cap_always_holds() {
        let r = Redactor::new(RedactConfig {
            max_payload_bytes: 2048,
            ..RedactConfig::default()
        });
        let big = json!({
            "hook_event_name": "PostToolUse",
            "tool_response": {"content": "y".repeat(100_000), "lines": vec!["line"; 5000]},
            "many": (0..3000).map(|i| json!({"k": i})).collect::<Vec<_>>(),
        });
        let out = r.payload(big.clone());
        assert!(json_len(&out) <= 2048, "{}", json_len(&out));
        assert_eq!(out["hook_event_name"], "PostToolUse");

        let tiny = Redactor::new(RedactConfig {
            max_payload_bytes: 300,
            ..RedactConfig::default()
        });
        let out = tiny.payload(big);
        assert!(json_len(&out) <= 300, "{}", json_len(&out));
        assert_eq!(out["hook_event_name"], "PostToolUse");
        assert!(out["_truncated"].as_str().unwrap().contains("cap"));

        let deep = (0..200).fold(json!("leaf"), |acc, _| json!([acc]));
        let out = r.payload(deep);
        assert!(out.to_string().contains("deeper than"));
    }
}
