//! The `hooks` table of a settings file: adding, updating, finding and removing
//! the `swarm-hook` entries, and nothing else.
//!
//! ```json
//! "hooks": {
//!   "PreToolUse": [
//!     { "matcher": "Bash", "hooks": [ { "type": "command", "command": "their-own-hook" } ] },
//!     { "hooks": [ { "type": "command", "command": "/usr/local/bin/swarm-hook", "timeout": 10 } ] }
//!   ]
//! }
//! ```
//!
//! An entry is ours when its command runs a program named `swarm-hook`, wherever
//! it lives; every other entry is the user's and is never touched.

use anyhow::{Result, bail};

use super::Json;
use crate::shell::program_word;

/// The hook program's name.
pub const HOOK_PROGRAM: &str = "swarm-hook";

/// One hook event `swarm-hook` is installed for, and the timeout it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookEvent {
    /// Claude Code's event name.
    pub name: &'static str,
    /// Seconds before Claude Code cancels the hook.
    pub timeout_secs: u64,
}

/// Seconds for every event but `SessionEnd`: the hook takes milliseconds, and a
/// bound keeps a wedged machine from stalling an agent for Claude Code's 600 s.
const TIMEOUT_SECS: u64 = 10;

const fn event(name: &'static str) -> HookEvent {
    HookEvent {
        name,
        timeout_secs: TIMEOUT_SECS,
    }
}

/// Every event installed: the ones that tell what an agent is doing. Left out:
/// `MessageDisplay` (one process per streamed chunk of text), and events whose
/// hook changes what Claude Code does (`WorktreeCreate` replaces worktree creation,
/// `Elicitation` answers an MCP server).
pub const EVENTS: &[HookEvent] = &[
    event("SessionStart"),
    event("UserPromptSubmit"),
    event("PreToolUse"),
    event("PermissionRequest"),
    event("PostToolUse"),
    event("PostToolUseFailure"),
    event("PostToolBatch"),
    event("Notification"),
    event("SubagentStart"),
    event("SubagentStop"),
    event("PreCompact"),
    event("PostCompact"),
    event("Stop"),
    event("StopFailure"),
    // Claude Code gives every SessionEnd hook 1.5 s in all; stay inside it.
    HookEvent {
        name: "SessionEnd",
        timeout_secs: 1,
    },
];

/// One `swarm-hook` entry found in a settings file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The hook event it is under.
    pub event: String,
    /// Its command line.
    pub command: String,
    /// The program that command runs, unquoted.
    pub program: String,
}

/// Adds `swarm-hook` (as the shell word `command`) to every event in [`EVENTS`].
///
/// An event that already has our entry in a group matching everything keeps it,
/// updated in place (program and timeout; the user's own prefix and arguments stay);
/// any further entries of ours on that event are removed, so each event runs the
/// hook once. Everything else is left exactly as it was.
pub fn install(settings: &mut Json, command: &str) -> Result<()> {
    if settings.get("hooks").is_none_or(|h| *h == Json::Null) {
        settings.set("hooks", Json::object());
    }
    let Some(hooks) = settings
        .get_mut("hooks")
        .filter(|h| h.as_object().is_some())
    else {
        bail!("`hooks` is not a JSON object; fix it by hand (the file was not changed)");
    };
    for ev in EVENTS {
        if hooks.get(ev.name).is_none_or(|g| *g == Json::Null) {
            hooks.set(ev.name, Json::Array(Vec::new()));
        }
        let Some(groups) = hooks.get_mut(ev.name).and_then(Json::as_array_mut) else {
            bail!(
                "`hooks.{}` is not a JSON array; fix it by hand (the file was not changed)",
                ev.name
            );
        };
        let mut kept = false;
        remove_ours(groups, |handler, matches_all| {
            if kept || !matches_all {
                return false;
            }
            kept = true;
            update(handler, command, ev.timeout_secs);
            true
        });
        if !kept {
            groups.push(Json::Object(vec![(
                "hooks".to_owned(),
                Json::Array(vec![handler(command, ev.timeout_secs)]),
            )]));
        }
    }
    Ok(())
}

/// Removes every `swarm-hook` entry, on any event; groups, event lists and the
/// `hooks` table that only held ours go too. Returns how many were removed.
pub fn uninstall(settings: &mut Json) -> usize {
    let Some(events) = settings.get_mut("hooks").and_then(Json::as_object_mut) else {
        return 0;
    };
    let had_events = !events.is_empty();
    let mut removed = 0;
    events.retain_mut(|(_, groups)| {
        let Some(groups) = groups.as_array_mut() else {
            return true;
        };
        let before = groups.len();
        removed += remove_ours(groups, |_, _| false);
        before == 0 || !groups.is_empty()
    });
    if had_events && events.is_empty() {
        settings.remove("hooks");
    }
    removed
}

/// Every `swarm-hook` entry in the settings, in file order.
pub fn installed(settings: &Json) -> Vec<Installed> {
    let mut found = Vec::new();
    let Some(events) = settings.get("hooks").and_then(Json::as_object) else {
        return found;
    };
    for (event, groups) in events {
        for group in groups.as_array().unwrap_or_default() {
            let handlers = group.get("hooks").and_then(Json::as_array);
            for h in handlers.unwrap_or_default() {
                if let Some((command, program)) = our_command(h) {
                    found.push(Installed {
                        event: event.clone(),
                        command: command.to_owned(),
                        program,
                    });
                }
            }
        }
    }
    found
}

/// Removes our handlers from `groups` except those `keep` (given the handler and
/// whether its group matches every tool) decides to keep, then the groups that
/// held only removed handlers. Returns how many handlers were removed.
fn remove_ours(groups: &mut Vec<Json>, mut keep: impl FnMut(&mut Json, bool) -> bool) -> usize {
    let mut removed = 0;
    let mut emptied = Vec::with_capacity(groups.len());
    for group in groups.iter_mut() {
        let matches_all = group
            .get("matcher")
            .is_none_or(|m| matches!(m.as_str(), Some("" | "*")));
        let Some(handlers) = group.get_mut("hooks").and_then(Json::as_array_mut) else {
            emptied.push(false);
            continue;
        };
        let before = handlers.len();
        handlers.retain_mut(|h| our_command(h).is_none() || keep(h, matches_all));
        removed += before - handlers.len();
        emptied.push(before > 0 && handlers.is_empty());
    }
    let mut emptied = emptied.into_iter();
    groups.retain(|_| !emptied.next().unwrap_or(false));
    removed
}

/// A fresh handler object.
fn handler(command: &str, timeout_secs: u64) -> Json {
    Json::Object(vec![
        ("type".to_owned(), Json::from("command")),
        ("command".to_owned(), Json::from(command)),
        ("timeout".to_owned(), Json::from(timeout_secs)),
    ])
}

/// Points an existing handler of ours at `command`, keeping what surrounds the
/// program word (environment assignments, arguments), and sets its timeout.
fn update(h: &mut Json, command: &str, timeout_secs: u64) {
    if let Some(old) = h.get("command").and_then(Json::as_str)
        && let Some((range, _)) = program_word(old)
    {
        let new = format!("{}{command}{}", &old[..range.start], &old[range.end..]);
        h.set("command", Json::String(new));
    }
    h.set("timeout", Json::from(timeout_secs));
}

/// The command line and program of a handler that runs `swarm-hook`.
fn our_command(h: &Json) -> Option<(&str, String)> {
    let command = h.get("command")?.as_str()?;
    let (_, program) = program_word(command)?;
    let name = program.rsplit(['/', '\\']).next().unwrap_or(&program);
    let name = name.strip_suffix(".exe").unwrap_or(name);
    (name == HOOK_PROGRAM).then_some((command, program))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Json {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn recognises_our_entries_only() {
        let ours = |c: &str| our_command(&handler(c, 1)).is_some();
        assert!(ours("swarm-hook"));
        assert!(ours("/opt/bin/swarm-hook"));
        assert!(ours("SWARM_OBS_SOURCE=x '/a b/swarm-hook'"));
        assert!(ours(r"'C:\tools\swarm-hook.exe'"));
        assert!(!ours("swarm-hooks"));
        assert!(!ours("echo swarm-hook"));
        assert!(!ours("/opt/swarm-hook/run.sh"));
    }

    #[test]
    fn install_updates_in_place_and_drops_duplicates() {
        let mut s = parse(
            r#"{"hooks": {"Stop": [
                {"matcher": "x", "hooks": [{"type": "command", "command": "old/swarm-hook"}]},
                {"hooks": [{"type": "command", "command": "mine"},
                           {"type": "command", "command": "FOO=1 swarm-hook --q", "timeout": 99}]},
                {"hooks": [{"type": "command", "command": "swarm-hook"}]}
            ]}}"#,
        );
        install(&mut s, "/new/swarm-hook").unwrap();
        let stop = s.get("hooks").unwrap().get("Stop").unwrap();
        assert_eq!(
            serde_json::to_string(stop).unwrap(),
            r#"[{"hooks":[{"type":"command","command":"mine"},{"type":"command","command":"FOO=1 /new/swarm-hook --q","timeout":10}]}]"#
        );
        let end = s.get("hooks").unwrap().get("SessionEnd").unwrap();
        assert_eq!(
            serde_json::to_string(end).unwrap(),
            r#"[{"hooks":[{"type":"command","command":"/new/swarm-hook","timeout":1}]}]"#
        );
        assert_eq!(installed(&s).len(), EVENTS.len());
    }

    #[test]
    fn null_is_taken_as_absent() {
        let mut s = parse(r#"{"hooks": null}"#);
        install(&mut s, "swarm-hook").unwrap();
        let mut t = parse(r#"{"hooks": {"Stop": null}}"#);
        install(&mut t, "swarm-hook").unwrap();
        assert_eq!(installed(&s).len(), EVENTS.len());
        assert_eq!(installed(&t).len(), EVENTS.len());
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let mut s = parse(r#"{"hooks": []}"#);
        assert!(
            install(&mut s, "swarm-hook")
                .unwrap_err()
                .to_string()
                .contains("`hooks`")
        );
        let mut s = parse(r#"{"hooks": {"Stop": {}}}"#);
        let e = install(&mut s, "swarm-hook").unwrap_err().to_string();
        assert!(e.contains("`hooks.Stop`"), "{e}");
    }

    #[test]
    fn uninstall_tidies_only_what_it_emptied() {
        let mut s = parse(r#"{"hooks": {"Stop": [], "PreToolUse": [{"hooks": []}]}}"#);
        assert_eq!(uninstall(&mut s), 0);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"hooks":{"Stop":[],"PreToolUse":[{"hooks":[]}]}}"#
        );
        install(&mut s, "swarm-hook").unwrap();
        assert_eq!(uninstall(&mut s), EVENTS.len());
        // Stop held only ours once installed; the user's empty group stays.
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"hooks":{"PreToolUse":[{"hooks":[]}]}}"#
        );
        let mut s = parse(r#"{"a": 1}"#);
        install(&mut s, "swarm-hook").unwrap();
        uninstall(&mut s);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"a":1}"#);
    }
}
