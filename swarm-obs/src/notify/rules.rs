//! Sound rules: which events become desktop notifications, with which sound.
//!
//! Defaults follow DESIGN.md: start is a banner without sound, done plays Glass
//! (`complete` on Linux), error Basso (`dialog-error`), attention Pop (`message`), and
//! info — subagent stops and other chatter — Ping (`message-new-instant`), off by
//! default. `[notify.kind.*]`, `[notify.hook.*]` and `[notify.source.*]` tables in
//! `config.toml` override them, in that order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Event, Kind, Level};

/// The five kinds of notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// Something started: a banner, no sound.
    Start,
    /// Something finished.
    Done,
    /// Something failed.
    Error,
    /// A person is needed.
    Attention,
    /// Everything else worth a quiet ping.
    Info,
}

impl NotifyKind {
    /// Every kind.
    pub const ALL: [NotifyKind; 5] = [
        NotifyKind::Start,
        NotifyKind::Done,
        NotifyKind::Error,
        NotifyKind::Attention,
        NotifyKind::Info,
    ];

    /// The lowercase name used in config and templates.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Start => "start",
            NotifyKind::Done => "done",
            NotifyKind::Error => "error",
            NotifyKind::Attention => "attention",
            NotifyKind::Info => "info",
        }
    }

    /// Parses a lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How insistent a notification is (freedesktop urgency levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Low.
    Low,
    /// Normal.
    Normal,
    /// Critical: stays until dismissed.
    Critical,
}

/// One notification, ready for a backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// What kind it is.
    pub kind: NotifyKind,
    /// Summary line.
    pub title: String,
    /// Body text.
    pub body: String,
    /// macOS sound name (`Glass`, `Basso`, …), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// freedesktop sound name (`complete`, `dialog-error`, …), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_sound: Option<String>,
    /// Urgency.
    pub urgency: Urgency,
    /// The event's source.
    pub source: String,
    /// The Claude Code session, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// Overrides for one kind, hook event or source; every key optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleOverride {
    /// Notify at all.
    pub enabled: Option<bool>,
    /// macOS sound name; `""` for none.
    pub sound: Option<String>,
    /// freedesktop sound name; `""` for none.
    pub linux_sound: Option<String>,
    /// Title template (`{source}`, `{msg}`, `{kind}`, `{hook}`, `{tool}`, `{session}`).
    pub title: Option<String>,
    /// Body template.
    pub body: Option<String>,
    /// `low`, `normal` or `critical`.
    pub urgency: Option<Urgency>,
}

/// The settings in force for one notification kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Rule {
    enabled: bool,
    pub(super) sound: Option<String>,
    pub(super) linux_sound: Option<String>,
    title: String,
    body: String,
    pub(super) urgency: Urgency,
}

impl Rule {
    pub(super) fn default_for(kind: NotifyKind) -> Self {
        let (enabled, sound, linux, title, urgency) = match kind {
            NotifyKind::Start => (true, None, None, "{source} started", Urgency::Low),
            NotifyKind::Done => (
                true,
                Some("Glass"),
                Some("complete"),
                "{source}: done",
                Urgency::Normal,
            ),
            NotifyKind::Error => (
                true,
                Some("Basso"),
                Some("dialog-error"),
                "{source}: error",
                Urgency::Critical,
            ),
            NotifyKind::Attention => (
                true,
                Some("Pop"),
                Some("message"),
                "{source} needs you",
                Urgency::Critical,
            ),
            NotifyKind::Info => (
                false,
                Some("Ping"),
                Some("message-new-instant"),
                "{source}",
                Urgency::Low,
            ),
        };
        Self {
            enabled,
            sound: sound.map(str::to_owned),
            linux_sound: linux.map(str::to_owned),
            title: title.to_owned(),
            body: "{msg}".to_owned(),
            urgency,
        }
    }

    fn apply(&mut self, o: &RuleOverride) {
        let sound = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
        if let Some(v) = o.enabled {
            self.enabled = v;
        }
        if let Some(v) = &o.sound {
            self.sound = sound(v);
        }
        if let Some(v) = &o.linux_sound {
            self.linux_sound = sound(v);
        }
        if let Some(v) = &o.title {
            self.title = v.clone();
        }
        if let Some(v) = &o.body {
            self.body = v.clone();
        }
        if let Some(v) = o.urgency {
            self.urgency = v;
        }
    }
}

/// The `[notify]` table of `config.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// `auto` (desktop where there is one), `desktop`, `command` or `off`.
    pub backend: String,
    /// Shell command for the `command` backend; it gets `SWARM_TITLE`, `SWARM_BODY`,
    /// `SWARM_KIND`, `SWARM_SOUND`, `SWARM_LINUX_SOUND`, `SWARM_URGENCY`,
    /// `SWARM_SOURCE` and `SWARM_SESSION` in its environment.
    pub command: Option<String>,
    /// One notification per (session or source, kind) within this window.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub debounce_ms: u64,
    /// At most this many notifications per `rate_window_ms`, all sources together.
    pub rate_limit: u32,
    /// The rate cap's window.
    #[serde(deserialize_with = "crate::duration::millis")]
    pub rate_window_ms: u64,
    /// Player for sounds when the notification server ignores sound hints:
    /// `auto` (canberra-gtk-play, then paplay), a program name, or `none`.
    pub sound_player: String,
    /// Overrides per notification kind (`start`, `done`, `error`, `attention`, `info`).
    pub kind: BTreeMap<String, RuleOverride>,
    /// Overrides per Claude Code hook event (`Stop`, `SubagentStop`, …).
    pub hook: BTreeMap<String, RuleOverride>,
    /// Overrides per source.
    pub source: BTreeMap<String, RuleOverride>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            backend: "auto".to_owned(),
            command: None,
            debounce_ms: 5_000,
            rate_limit: 5,
            rate_window_ms: 10_000,
            sound_player: "auto".to_owned(),
            kind: BTreeMap::new(),
            hook: BTreeMap::new(),
            source: BTreeMap::new(),
        }
    }
}

impl NotifyConfig {
    /// Checks what serde cannot: kind names and the backend name.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(k) = self.kind.keys().find(|k| NotifyKind::parse(k).is_none()) {
            return Err(format!(
                "unknown notification kind `notify.kind.{k}` (expected start, done, error, attention or info)"
            ));
        }
        if !matches!(
            self.backend.as_str(),
            "auto" | "desktop" | "command" | "off"
        ) {
            return Err(format!(
                "unknown `notify.backend = \"{}\"` (expected auto, desktop, command or off)",
                self.backend
            ));
        }
        if self.backend == "command" && self.command.as_deref().is_none_or(str::is_empty) {
            return Err("`notify.backend = \"command\"` needs `notify.command`".to_owned());
        }
        Ok(())
    }
}

/// Maps events to notifications.
///
/// ```
/// use swarm_obs::{Event, Kind};
/// use swarm_obs::notify::{NotifyConfig, SoundRules};
/// let rules = SoundRules::new(NotifyConfig::default());
/// let done = Event::new("backend", Kind::Done, "TASK_123 finished");
/// let n = rules.notification(&done).unwrap();
/// assert_eq!(n.title, "backend: done");
/// assert_eq!(n.sound.as_deref(), Some("Glass"));
/// assert!(rules.notification(&Event::new("backend", Kind::Log, "chatter")).is_none());
/// ```
#[derive(Clone, Debug)]
pub struct SoundRules {
    config: NotifyConfig,
}

impl SoundRules {
    /// Rules from a `[notify]` table.
    pub fn new(config: NotifyConfig) -> Self {
        Self { config }
    }

    /// The configuration in force.
    pub fn config(&self) -> &NotifyConfig {
        &self.config
    }

    /// Which notification kind an event is, if any.
    pub fn kind_of(&self, ev: &Event) -> Option<NotifyKind> {
        let hook = ev.hook.as_deref();
        Some(match (ev.kind, hook) {
            // Subagents come and go by the dozen: quiet unless asked for.
            (_, Some("SubagentStop" | "SubagentStart")) => NotifyKind::Info,
            (Kind::Start, _) => NotifyKind::Start,
            (Kind::Done, _) => NotifyKind::Done,
            (Kind::Error, _) => NotifyKind::Error,
            (Kind::Attention, _) => NotifyKind::Attention,
            // Down and dead workers and probes are errors (level error); late,
            // recovered and stopped are worth a look, not the error sound.
            (Kind::Alert, _) if ev.level >= Level::Error => NotifyKind::Error,
            (Kind::Alert, _) => NotifyKind::Info,
            (Kind::Log | Kind::Progress, _) if ev.level == Level::Error => NotifyKind::Error,
            // A hook event named in the config is opted in.
            (Kind::Hook, Some(h)) if self.config.hook.contains_key(h) => NotifyKind::Info,
            _ => return None,
        })
    }

    /// The notification for an event, or `None` when the rules say nothing.
    pub fn notification(&self, ev: &Event) -> Option<Notification> {
        let kind = self.kind_of(ev)?;
        let mut rule = Rule::default_for(kind);
        if let Some(o) = self.config.kind.get(kind.as_str()) {
            rule.apply(o);
        }
        if let Some(o) = ev.hook.as_deref().and_then(|h| self.config.hook.get(h)) {
            rule.apply(o);
        }
        if let Some(o) = self.config.source.get(&ev.source) {
            rule.apply(o);
        }
        if !rule.enabled {
            return None;
        }
        Some(Notification {
            kind,
            title: render(&rule.title, ev, kind),
            body: render(&rule.body, ev, kind),
            sound: rule.sound,
            linux_sound: rule.linux_sound,
            urgency: rule.urgency,
            source: ev.source.clone(),
            session: ev.session.clone(),
        })
    }
}

/// Fills `{source}`, `{msg}`, `{kind}`, `{hook}`, `{tool}`, `{session}`, `{task}`.
fn render(template: &str, ev: &Event, kind: NotifyKind) -> String {
    let mut out = String::with_capacity(template.len() + ev.msg.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        // Event text is shown on a desktop or handed to a command: its control
        // characters are shown as escapes, never passed on.
        let mut put = |text: &str| crate::visible::push_visible(&mut out, text);
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        match &after[..close] {
            "source" => put(&ev.source),
            "msg" => put(&ev.msg),
            "kind" => out.push_str(kind.as_str()),
            "hook" => put(&opt(&ev.hook)),
            "tool" => put(&opt(&ev.tool)),
            "session" => put(&opt(&ev.session)),
            "task" => put(&opt(&ev.task)),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn hook_event(kind: Kind, hook: &str) -> Event {
        let mut ev = Event::new("proj", kind, format!("{hook}: text"));
        ev.hook = Some(hook.to_owned());
        ev.session = Some("s1".to_owned());
        ev
    }

    #[test]
    fn control_characters_from_events_are_shown_not_passed_on() {
        let mut ev = hook_event(Kind::Done, "Stop");
        ev.source = "pro\u{202e}j".into();
        ev.msg = "\x1b]0;pwned\x07 done\nsecond".into();
        let n = SoundRules::new(Default::default())
            .notification(&ev)
            .unwrap();
        for text in [&n.title, &n.body] {
            assert!(!text.chars().any(crate::visible::is_steering), "{text:?}");
        }
        assert!(n.body.contains("\\x1b]0;pwned"), "{}", n.body);
        assert!(n.title.contains("\\u{202e}"), "{}", n.title);
    }

    #[test]
    fn defaults_follow_the_design() {
        let rules = SoundRules::new(NotifyConfig::default());
        let n = |k, h| rules.notification(&hook_event(k, h));
        let stop = n(Kind::Done, "Stop").unwrap();
        assert_eq!(
            (stop.sound.as_deref(), stop.linux_sound.as_deref()),
            (Some("Glass"), Some("complete"))
        );
        let fail = n(Kind::Error, "PostToolUseFailure").unwrap();
        assert_eq!(
            (fail.sound.as_deref(), fail.urgency),
            (Some("Basso"), Urgency::Critical)
        );
        let perm = n(Kind::Attention, "PermissionRequest").unwrap();
        assert_eq!(perm.linux_sound.as_deref(), Some("message"));
        let start = n(Kind::Start, "SessionStart").unwrap();
        assert_eq!((start.sound, start.linux_sound), (None, None));
        assert!(
            n(Kind::Hook, "SubagentStop").is_none(),
            "info is off by default"
        );
        assert!(n(Kind::Start, "SubagentStart").is_none());
        assert!(n(Kind::Hook, "PreToolUse").is_none());
        let err_log = Event::new("w", Kind::Log, "boom").with_level(Level::Error);
        assert_eq!(rules.kind_of(&err_log), Some(NotifyKind::Error));
        let down = Event::new("w", Kind::Alert, "w is down").with_level(Level::Error);
        assert_eq!(rules.kind_of(&down), Some(NotifyKind::Error));
    }

    #[test]
    fn only_down_and_dead_alerts_are_errors() {
        let rules = SoundRules::new(NotifyConfig::default());
        // The levels the collector gives heartbeat and probe alerts.
        let alert = |msg: &str, level| Event::new("w", Kind::Alert, msg).with_level(level);
        for (msg, level) in [("w is down", Level::Error), ("w is dead", Level::Error)] {
            let n = rules.notification(&alert(msg, level)).unwrap();
            assert_eq!(
                (n.kind, n.sound.as_deref()),
                (NotifyKind::Error, Some("Basso"))
            );
        }
        for (msg, level) in [
            ("w is late", Level::Warn),
            ("w recovered", Level::Info),
            ("w stopped", Level::Info),
        ] {
            assert_eq!(
                rules.kind_of(&alert(msg, level)),
                Some(NotifyKind::Info),
                "{msg}"
            );
            assert!(
                rules.notification(&alert(msg, level)).is_none(),
                "{msg}: quiet by default"
            );
        }
    }

    #[test]
    fn overrides_apply_kind_then_hook_then_source() {
        let cfg = Config::parse(
            r#"
[notify.kind.done]
sound = "Hero"
title = "{source} finished {task}"
[notify.kind.info]
enabled = true
[notify.hook.PreToolUse]
body = "{tool}: {msg}"
[notify.source.quiet]
enabled = false
"#,
        )
        .unwrap();
        let rules = SoundRules::new(cfg.notify);
        let mut done = hook_event(Kind::Done, "Stop");
        done.task = Some("T1".into());
        let n = rules.notification(&done).unwrap();
        assert_eq!(
            (n.title.as_str(), n.sound.as_deref()),
            ("proj finished T1", Some("Hero"))
        );
        let mut pre = hook_event(Kind::Hook, "PreToolUse");
        pre.tool = Some("Bash".into());
        assert_eq!(
            rules.notification(&pre).unwrap().body,
            "Bash: PreToolUse: text"
        );
        assert!(
            rules
                .notification(&hook_event(Kind::Hook, "SubagentStop"))
                .is_some()
        );
        let mut quiet = hook_event(Kind::Error, "StopFailure");
        quiet.source = "quiet".into();
        assert!(rules.notification(&quiet).is_none());
    }

    #[test]
    fn templates_keep_unknown_placeholders() {
        let ev = Event::new("s", Kind::Done, "m");
        assert_eq!(
            render("{nope} {msg} {", &ev, NotifyKind::Done),
            "{nope} m {"
        );
    }

    #[test]
    fn config_errors_name_line_and_key() {
        let e = Config::parse("[notify]\ndebounce = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("debounce"), "{e}");
        let e = Config::parse("[notify.kind.done]\n\nsund = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("sund"), "{e}");
        let e = Config::parse("[notify.kind.finished]\nenabled = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("notify.kind.finished"), "{e}");
        let e = Config::parse("[notify]\nbackend = \"command\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("notify.command"), "{e}");
        let e = Config::parse("[notify.kind.done]\nurgency = \"loud\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("loud"), "{e}");
    }
}
