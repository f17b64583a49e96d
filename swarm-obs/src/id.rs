//! Event ids: UUIDv7 (RFC 9562), unique across processes and ordered by time.
//!
//! The top 48 bits are the Unix time in milliseconds, so ids sort like their events.
//! Within one process a 12-bit counter in `rand_a` keeps ids strictly increasing even
//! inside one millisecond; 62 random bits in `rand_b` keep processes apart.

use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Timestamp;

/// A unique, time-ordered event id, the dedup key everywhere.
///
/// ```
/// use swarm_obs::EventId;
/// let a = EventId::new();
/// let b = EventId::new();
/// assert!(a < b);
/// assert_eq!(a.to_string().len(), 36);
/// assert_eq!(a.to_string().parse::<EventId>().unwrap(), a);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(u128);

/// Why an event id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event id {0:?}: expected a UUID like 0192f5e4-6c1a-7c3e-8a4b-1d2e3f405162")]
pub struct EventIdError(String);

struct Generator {
    last_ms: u64,
    counter: u16,
    rng: u64,
}

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

impl EventId {
    /// A fresh id for the current time.
    #[allow(clippy::new_without_default)] // every call gives a different id
    pub fn new() -> Self {
        Self::at(Timestamp::now())
    }

    /// A fresh id whose time part is `ts` (or later, to stay monotonic in this process).
    pub fn at(ts: Timestamp) -> Self {
        let mut guard = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
        let g = guard.get_or_insert_with(|| Generator {
            last_ms: 0,
            counter: 0,
            rng: seed(),
        });
        let mut ms = ts.unix_ms().max(0) as u64 & 0xFFFF_FFFF_FFFF;
        if ms <= g.last_ms {
            ms = g.last_ms;
            g.counter += 1;
            if g.counter > 0x0FFF {
                // 4096 ids in one millisecond: borrow the next millisecond.
                ms += 1;
                g.counter = 0;
            }
        } else {
            g.counter = (next_random(&mut g.rng) & 0x01FF) as u16;
        }
        g.last_ms = ms;
        let rand_b = next_random(&mut g.rng) & 0x3FFF_FFFF_FFFF_FFFF;
        let value = (u128::from(ms) << 80)
            | (0x7u128 << 76)
            | (u128::from(g.counter) << 64)
            | (0b10u128 << 62)
            | u128::from(rand_b);
        Self(value)
    }

    /// An id for a record that arrives without one (an OTLP log record, say), the
    /// same for every delivery of that record: the time part from `ts`, the rest
    /// from `content_hash`, a hash of the record. Re-deliveries then deduplicate.
    ///
    /// ```
    /// use swarm_obs::{EventId, Timestamp};
    /// let ts = Timestamp::from_unix_ms(1_700_000_000_000);
    /// assert_eq!(EventId::derived(ts, 42), EventId::derived(ts, 42));
    /// assert_ne!(EventId::derived(ts, 42), EventId::derived(ts, 43));
    /// assert_eq!(EventId::derived(ts, 42).timestamp(), ts);
    /// ```
    pub fn derived(ts: Timestamp, content_hash: u64) -> Self {
        let ms = ts.unix_ms().max(0) as u64 & 0xFFFF_FFFF_FFFF;
        let value = (u128::from(ms) << 80)
            | (0x7u128 << 76)
            | (u128::from(content_hash >> 52) << 64)
            | (0b10u128 << 62)
            | u128::from(content_hash & 0x3FFF_FFFF_FFFF_FFFF);
        Self(value)
    }

    /// The millisecond timestamp embedded in the id.
    pub fn timestamp(self) -> Timestamp {
        Timestamp::from_unix_ms((self.0 >> 80) as i64)
    }
}

fn seed() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    // No OS randomness: fall back to time and pid, still distinct per process.
    let t = Timestamp::now().unix_ms() as u64;
    t ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15
}

// splitmix64: tiny, fast, and good enough to keep ids of concurrent processes apart.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex by hand: every event line carries an id.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut b = [b'-'; 36];
        let mut nibble = 32;
        for (pos, c) in b.iter_mut().enumerate() {
            if !matches!(pos, 8 | 13 | 18 | 23) {
                nibble -= 1;
                *c = HEX[((self.0 >> (nibble * 4)) & 0xF) as usize];
            }
        }
        f.write_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl std::str::FromStr for EventId {
    type Err = EventIdError;

    /// Accepts any UUID in its hyphenated form (case-insensitive), so ids minted by
    /// other producers are kept as they are.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EventIdError(s.chars().take(64).collect());
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return Err(bad());
        }
        let mut v: u128 = 0;
        for (i, c) in s.chars().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                continue;
            }
            v = (v << 4) | u128::from(c.to_digit(16).ok_or_else(bad)?);
        }
        Ok(Self(v))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_increasing_and_carry_their_time() {
        let ts = Timestamp::now();
        let ids: Vec<EventId> = (0..20_000).map(|_| EventId::at(ts)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        assert!(ids[0].timestamp() >= ts);
        let s = ids[0].to_string();
        assert_eq!(&s[14..15], "7", "version nibble: {s}");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "variant: {s}");
    }

    #[test]
    fn ids_from_many_threads_never_collide() {
        let all: Vec<EventId> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..5_000).map(|_| EventId::new()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
    }

    #[test]
    fn parse_rejects_non_uuids() {
        for s in [
            "",
            "nope",
            "0192f5e4-6c1a-7c3e-8a4b-1d2e3f40516",
            "0192f5e4x6c1a-7c3e-8a4b-1d2e3f405162",
            "0192f5e4-6c1a-7c3e-8a4b-1d2e3f40516g",
        ] {
            assert!(s.parse::<EventId>().is_err(), "{s}");
        }
        let upper = "0192F5E4-6C1A-7C3E-8A4B-1D2E3F405162"
            .parse::<EventId>()
            .unwrap();
        assert_eq!(upper.to_string(), "0192f5e4-6c1a-7c3e-8a4b-1d2e3f405162");
    }
}
