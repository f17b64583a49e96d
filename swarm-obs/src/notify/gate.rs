//! Debounce and rate cap, shared by every process on the machine.
//!
//! Claude Code runs one hook process per event, so the memory of what was just
//! shown lives in `notify-state.json` under the state root, read and rewritten under
//! an exclusive file lock. A swarm of agents finishing together yields the first few
//! notifications and then one summary of the rest, not a wall of sounds.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Notification, NotifyConfig, NotifyKind};

/// The least time past its due time before a pending summary counts as abandoned.
const ABANDON_SLACK_MS: i64 = 5_000;

/// What to do with a notification.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Show it now.
    Show,
    /// Hold it back; it is counted for a summary.
    Suppressed {
        /// When a summary of suppressed notifications should be shown, if this
        /// caller is the one to arrange it (no summary was pending yet).
        summary_at_ms: Option<i64>,
    },
}

/// What was held back since the last summary.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressed {
    /// How many notifications.
    pub count: u32,
    /// How many of each kind.
    pub kinds: BTreeMap<NotifyKind, u32>,
    /// Sources they came from (at most a few, for the summary's text).
    pub sources: Vec<String>,
}

impl Suppressed {
    /// The summary notification, or `None` when nothing was held back.
    pub fn summary(&self) -> Option<Notification> {
        if self.count == 0 {
            return None;
        }
        let parts: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect();
        let worst = self.kinds.keys().copied().find(|k| *k == NotifyKind::Error);
        let kind = worst.unwrap_or_else(|| {
            self.kinds
                .keys()
                .next()
                .copied()
                .unwrap_or(NotifyKind::Info)
        });
        let template = super::rules::Rule::default_for(kind);
        Some(Notification {
            kind,
            title: format!(
                "swarm-obs: {} more notification{}",
                self.count,
                if self.count == 1 { "" } else { "s" }
            ),
            body: format!("{} from {}", parts.join(", "), self.sources.join(", ")),
            sound: template.sound,
            linux_sound: template.linux_sound,
            urgency: template.urgency,
            source: "swarm-obs".to_owned(),
            session: None,
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct GateState {
    /// Last time shown, per debounce key.
    #[serde(default)]
    last: BTreeMap<String, i64>,
    /// Times of recent notifications, for the rate cap.
    #[serde(default)]
    recent: Vec<i64>,
    #[serde(default)]
    suppressed: Suppressed,
    /// When the pending summary is due, if one is.
    #[serde(default)]
    summary_due: Option<i64>,
}

/// The debounce and rate cap, backed by a state file.
#[derive(Debug, Clone)]
pub struct NotifyGate {
    path: PathBuf,
    debounce_ms: i64,
    rate_limit: usize,
    window_ms: i64,
}

impl NotifyGate {
    /// A gate keeping its state in `path`, with the limits of `config`.
    pub fn new(path: impl Into<PathBuf>, config: &NotifyConfig) -> Self {
        Self {
            path: path.into(),
            debounce_ms: config.debounce_ms as i64,
            rate_limit: config.rate_limit as usize,
            window_ms: config.rate_window_ms.max(1) as i64,
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decides whether `n` is shown at `now_ms`, and records the decision.
    pub fn check(&self, n: &Notification, now_ms: i64) -> io::Result<Verdict> {
        self.with_state(|st| {
            st.recent.retain(|t| now_ms - t < self.window_ms);
            st.last
                .retain(|_, t| now_ms - *t < self.debounce_ms.max(self.window_ms));
            let key = format!(
                "{}|{}",
                n.session.as_deref().unwrap_or(&n.source),
                n.kind.as_str()
            );
            let debounced = st
                .last
                .get(&key)
                .is_some_and(|t| now_ms - t < self.debounce_ms);
            let capped = st.recent.len() >= self.rate_limit;
            if !debounced && !capped {
                st.last.insert(key, now_ms);
                st.recent.push(now_ms);
                return Verdict::Show;
            }
            let s = &mut st.suppressed;
            s.count += 1;
            *s.kinds.entry(n.kind).or_default() += 1;
            if !s.sources.contains(&n.source) && s.sources.len() < 5 {
                s.sources.push(n.source.clone());
            }
            // A summary is pending unless its due time is long past: then whoever
            // scheduled it died, or was dropped or killed before showing it, and
            // without a new one nothing held back would ever be summarised again.
            // The counts are kept for the new summary. Should the first one still
            // come late, it takes everything and the second finds nothing to show.
            let pending = st
                .summary_due
                .is_some_and(|due| now_ms <= due + self.abandon_after_ms());
            if pending {
                Verdict::Suppressed {
                    summary_at_ms: None,
                }
            } else {
                let due = now_ms + self.summary_delay_ms();
                st.summary_due = Some(due);
                Verdict::Suppressed {
                    summary_at_ms: Some(due),
                }
            }
        })
    }

    /// How long after the first suppressed notification its summary is due.
    fn summary_delay_ms(&self) -> i64 {
        self.debounce_ms.max(self.window_ms / 2).max(1000)
    }

    /// How long past its due time a pending summary counts as abandoned: long
    /// enough for a busy deliverer to get to it, short enough that the next
    /// suppressed notification soon schedules a new one.
    fn abandon_after_ms(&self) -> i64 {
        self.summary_delay_ms().max(ABANDON_SLACK_MS)
    }

    /// Takes what was suppressed, clearing it and the pending summary.
    pub fn take_suppressed(&self) -> io::Result<Suppressed> {
        self.with_state(|st| {
            st.summary_due = None;
            std::mem::take(&mut st.suppressed)
        })
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut GateState) -> T) -> io::Result<T> {
        if let Some(dir) = self.path.parent() {
            crate::ensure_private_dir(dir)?;
        }
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file: File = crate::no_follow(&mut opts).open(&self.path)?;
        file.lock()?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        // A damaged state file only costs one forgotten debounce.
        let mut state: GateState = serde_json::from_slice(&text).unwrap_or_default();
        let out = f(&mut state);
        let json = serde_json::to_vec(&state).map_err(io::Error::other)?;
        file.seek(SeekFrom::Start(0))?;
        file.set_len(0)?;
        file.write_all(&json)?;
        file.unlock()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(kind: NotifyKind, session: &str) -> Notification {
        Notification {
            kind,
            title: "t".into(),
            body: "b".into(),
            sound: None,
            linux_sound: None,
            urgency: super::super::Urgency::Normal,
            source: format!("src-{session}"),
            session: Some(session.into()),
        }
    }

    #[test]
    fn debounces_per_session_and_kind_then_summarises() {
        let dir = tempfile::tempdir().unwrap();
        let gate = NotifyGate::new(dir.path().join("state.json"), &NotifyConfig::default());
        assert_eq!(
            gate.check(&note(NotifyKind::Done, "a"), 0).unwrap(),
            Verdict::Show
        );
        assert_eq!(
            gate.check(&note(NotifyKind::Done, "a"), 100).unwrap(),
            Verdict::Suppressed {
                summary_at_ms: Some(5_100)
            }
        );
        assert_eq!(
            gate.check(&note(NotifyKind::Done, "a"), 200).unwrap(),
            Verdict::Suppressed {
                summary_at_ms: None
            }
        );
        // Another kind or session is not debounced.
        assert_eq!(
            gate.check(&note(NotifyKind::Error, "a"), 300).unwrap(),
            Verdict::Show
        );
        assert_eq!(
            gate.check(&note(NotifyKind::Done, "b"), 300).unwrap(),
            Verdict::Show
        );
        // After the window, the same key shows again.
        assert_eq!(
            gate.check(&note(NotifyKind::Done, "a"), 20_000).unwrap(),
            Verdict::Show
        );
        let s = gate.take_suppressed().unwrap();
        assert_eq!(s.count, 2);
        let summary = s.summary().unwrap();
        assert_eq!(summary.title, "swarm-obs: 2 more notifications");
        assert_eq!(summary.body, "2 done from src-a");
        assert!(gate.take_suppressed().unwrap().summary().is_none());
    }

    #[test]
    fn a_summary_nobody_showed_is_scheduled_again_with_its_counts() {
        let dir = tempfile::tempdir().unwrap();
        let gate = NotifyGate::new(dir.path().join("state.json"), &NotifyConfig::default());
        let a = note(NotifyKind::Done, "a");
        assert_eq!(gate.check(&a, 0).unwrap(), Verdict::Show);
        // Scheduled for 5_100 by a process that then dies: nobody takes it.
        assert_eq!(
            gate.check(&a, 100).unwrap(),
            Verdict::Suppressed {
                summary_at_ms: Some(5_100)
            }
        );
        // Shortly past due, the scheduler may just be slow: still pending.
        assert_eq!(gate.check(&a, 5_200).unwrap(), Verdict::Show);
        assert_eq!(
            gate.check(&a, 5_300).unwrap(),
            Verdict::Suppressed {
                summary_at_ms: None
            }
        );
        // Well past due (and the slack), it was abandoned: this caller arranges one.
        assert_eq!(gate.check(&a, 20_000).unwrap(), Verdict::Show);
        assert_eq!(
            gate.check(&a, 20_100).unwrap(),
            Verdict::Suppressed {
                summary_at_ms: Some(25_100)
            }
        );
        assert_eq!(
            gate.check(&a, 20_200).unwrap(),
            Verdict::Suppressed {
                summary_at_ms: None
            },
            "only one new summary"
        );
        // Nothing held back was lost.
        assert_eq!(gate.take_suppressed().unwrap().count, 4);
    }

    #[test]
    fn the_rate_cap_holds_across_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let gate = NotifyGate::new(dir.path().join("state.json"), &NotifyConfig::default());
        let shown = (0..20)
            .filter(|i| {
                gate.check(&note(NotifyKind::Done, &format!("s{i}")), i * 10)
                    .unwrap()
                    == Verdict::Show
            })
            .count();
        assert_eq!(shown, 5);
        assert_eq!(gate.take_suppressed().unwrap().count, 15);
    }

    #[test]
    fn a_damaged_state_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{garbage").unwrap();
        let gate = NotifyGate::new(&path, &NotifyConfig::default());
        assert_eq!(
            gate.check(&note(NotifyKind::Done, "a"), 0).unwrap(),
            Verdict::Show
        );
    }
}
