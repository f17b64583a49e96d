//! Durations as people write them, on the command line and in `config.toml`:
//! `500ms`, `5s`, `2m`, `1h`.

use std::time::Duration;

/// Parses a duration: a number with a unit (`ms`, `s`, `m`, `h`), or a bare number
/// of seconds; the error says what is accepted.
///
/// ```
/// use std::time::Duration;
/// use swarm_obs::duration::parse_duration;
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (expected e.g. 500ms, 5s, 2m, 1h)"))?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?} (expected ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("duration {text:?} is out of range"))
}

/// Deserialises a `*_ms` key of `config.toml`: an integer is milliseconds (the
/// key's unit), a string is a duration with its unit (`"5s"`, `"250ms"`), as the
/// command line takes them.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct T {
///     #[serde(deserialize_with = "swarm_obs::duration::millis")]
///     wait_ms: u64,
/// }
/// let t: T = toml::from_str("wait_ms = \"2s\"").unwrap();
/// assert_eq!(t.wait_ms, 2000);
/// let t: T = toml::from_str("wait_ms = 150").unwrap();
/// assert_eq!(t.wait_ms, 150);
/// ```
pub fn millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Millis;
    impl serde::de::Visitor<'_> for Millis {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("milliseconds, or a duration with its unit such as \"500ms\" or \"5s\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("a duration cannot be negative ({v})")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            // A bare number in quotes would be seconds on the command line and
            // milliseconds by the key's name: make the writer say which.
            if v.trim().parse::<f64>().is_ok() {
                return Err(E::custom(format!(
                    "{v:?} has no unit: write a number of milliseconds without quotes, or a unit (\"{v}s\", \"{v}ms\")"
                )));
            }
            let d = parse_duration(v).map_err(E::custom)?;
            u64::try_from(d.as_millis()).map_err(|_| E::custom(format!("{v:?} is too long")))
        }
    }
    d.deserialize_any(Millis)
}

/// [`millis`] for an optional key.
pub fn millis_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    millis(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "5x", "-1s", "1e999s", "..s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
