//! Millisecond UTC timestamps, written as RFC 3339 (`2026-01-05T14:32:15.123Z`).
//!
//! A small civil-calendar conversion keeps the library free of a date crate: every
//! part of swarm-obs only needs UTC milliseconds, their RFC 3339 form, the day of a
//! timestamp (for daily event files) and a fixed offset for human lines.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with millisecond precision, stored as milliseconds since the Unix epoch.
///
/// ```
/// use swarm_obs::Timestamp;
/// let ts: Timestamp = "2026-01-05T14:32:15.123Z".parse().unwrap();
/// assert_eq!(ts.to_string(), "2026-01-05T14:32:15.123Z");
/// assert_eq!(ts.day(), "2026-01-05");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {input:?}: {reason} (expected e.g. 2026-01-05T14:32:15.123Z)")]
pub struct TimestampError {
    input: String,
    reason: &'static str,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_ms(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_ms(self) -> i64 {
        self.0
    }

    /// The UTC day, `YYYY-MM-DD`: the name of the daily event file this timestamp belongs to.
    pub fn day(self) -> String {
        let (y, m, d, ..) = self.civil(0);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// Renders `YYYY-MM-DD HH:MM:SS` in the zone `offset_secs` east of UTC, the form used
    /// in human log lines.
    ///
    /// ```
    /// use swarm_obs::Timestamp;
    /// let ts: Timestamp = "2026-01-05T14:32:15.999Z".parse().unwrap();
    /// assert_eq!(ts.human(0), "2026-01-05 14:32:15");
    /// assert_eq!(ts.human(3600), "2026-01-05 15:32:15");
    /// ```
    pub fn human(self, offset_secs: i32) -> String {
        let mut out = String::with_capacity(19);
        self.push_human(&mut out, offset_secs);
        out
    }

    /// Appends [`human`](Self::human)'s form to `out` without allocating.
    pub fn push_human(self, out: &mut String, offset_secs: i32) {
        let (y, mo, d, h, mi, s, _) = self.civil(offset_secs);
        let mut b = *b"0000-00-00 00:00:00";
        if !put_digits(&mut b[0..4], y) {
            out.push_str(&format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"));
            return;
        }
        for (at, v) in [(5, mo), (8, d), (11, h), (14, mi), (17, s)] {
            put_digits(&mut b[at..at + 2], i64::from(v));
        }
        out.push_str(std::str::from_utf8(&b).unwrap_or_default());
    }

    /// The time elapsed from `self` to `later`, zero if `later` is earlier.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0).max(0) as u64)
    }

    /// Civil fields (year, month, day, hour, minute, second, millisecond) at an offset.
    fn civil(self, offset_secs: i32) -> (i64, u32, u32, u32, u32, u32, u32) {
        let ms = self.0 + i64::from(offset_secs) * 1000;
        let days = ms.div_euclid(86_400_000);
        let in_day = ms.rem_euclid(86_400_000);
        let (y, m, d) = civil_from_days(days);
        let secs = (in_day / 1000) as u32;
        (
            y,
            m,
            d,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            (in_day % 1000) as u32,
        )
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(d.as_millis() as i64),
            Err(e) => Self(-(e.duration().as_millis() as i64)),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, ms) = self.civil(0);
        // Formatted by hand: every event line carries a timestamp, and the general
        // formatting machinery costs several times more.
        let mut b = *b"0000-00-00T00:00:00.000Z";
        if !put_digits(&mut b[0..4], y) {
            return write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
        }
        for (at, v) in [(5, mo), (8, d), (11, h), (14, mi), (17, s)] {
            put_digits(&mut b[at..at + 2], i64::from(v));
        }
        put_digits(&mut b[20..23], i64::from(ms));
        f.write_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

/// Writes `v` as zero-padded decimal filling `out`; false (leaving `out` alone) when
/// it does not fit or is negative.
fn put_digits(out: &mut [u8], v: i64) -> bool {
    if v < 0 || v >= 10i64.pow(out.len() as u32) {
        return false;
    }
    let mut v = v;
    for c in out.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
    true
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    /// Accepts RFC 3339: `T` or space separator, optional fraction of any length,
    /// `Z` or a `±HH:MM` offset.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| TimestampError {
            input: input.chars().take(64).collect(),
            reason,
        };
        let b = input.as_bytes();
        if b.len() < 20 {
            return Err(err("too short"));
        }
        let num = |range: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            let s = &b[range];
            if !s.iter().all(u8::is_ascii_digit) {
                return Err(err("expected digits"));
            }
            Ok(s.iter().fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')))
        };
        if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return Err(err("misplaced separator"));
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(err("expected 'T' between date and time"));
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || d < 1 || d > i64::from(days_in_month(y, mo as u32)) {
            return Err(err("no such date"));
        }
        if h > 23 || mi > 59 || s > 60 {
            return Err(err("no such time of day"));
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 3 {
                    millis = millis * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            match i - start {
                0 => return Err(err("empty fraction")),
                1 => millis *= 100,
                2 => millis *= 10,
                _ => {}
            }
        }
        let offset_secs = match &b[i..] {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
                if *sign == b'-' { -off } else { off }
            }
            _ => return Err(err("expected 'Z' or a ±HH:MM offset at the end")),
        };
        let days = days_from_civil(y, mo as u32, d as u32);
        let secs = days * 86_400 + h * 3600 + mi * 60 + s.min(59) - offset_secs;
        Ok(Self(secs * 1000 + millis))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Proleptic Gregorian conversions (the well-known era-based algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders() {
        for s in [
            "1970-01-01T00:00:00.000Z",
            "2000-02-29T23:59:59.999Z",
            "2026-01-05T14:32:15.123Z",
            "2100-12-31T00:00:00.001Z",
            "1969-12-31T23:59:59.500Z",
        ] {
            let ts: Timestamp = s.parse().unwrap();
            assert_eq!(ts.to_string(), s);
        }
        let a: Timestamp = "2026-01-05T14:32:15.123Z".parse().unwrap();
        let b: Timestamp = "2026-01-05T14:32:15.124Z".parse().unwrap();
        assert!(a < b);
    }

    #[test]
    fn accepts_offsets_and_fractions() {
        let z: Timestamp = "2026-01-05T14:32:15Z".parse().unwrap();
        let off: Timestamp = "2026-01-05T16:32:15+02:00".parse().unwrap();
        assert_eq!(z, off);
        let micro: Timestamp = "2026-01-05T14:32:15.123456Z".parse().unwrap();
        assert_eq!(micro.unix_ms() - z.unix_ms(), 123);
        let tenth: Timestamp = "2026-01-05 14:32:15.1z".parse().unwrap();
        assert_eq!(tenth.unix_ms() - z.unix_ms(), 100);
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-05T24:00:00Z",
            "2026-01-05T14:32:15",
            "2026-01-05T14:32:15.Z",
            "2026-01-05T14:32:15+0200",
            "２０２６-01-05T14:32:15Z",
        ] {
            let e = s.parse::<Timestamp>().unwrap_err();
            assert!(e.to_string().contains("invalid RFC 3339"), "{s}: {e}");
        }
    }

    #[test]
    fn civil_conversion_matches_system_time() {
        // 2026-11-22T00:00:00Z is 1795305600 seconds after the epoch.
        let ts = Timestamp::from_unix_ms(1_795_305_600_000);
        assert_eq!(ts.day(), "2026-11-22");
        assert_eq!(ts.human(-3600), "2026-11-21 23:00:00");
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
