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
//!
//! Ours come in one of two forms. Shell form, which every Claude Code release
//! runs, as `/bin/sh -c <command>`:
//!
//! ```json
//! { "type": "command", "command": "'/home/a b/.cargo/bin/swarm-hook'", "timeout": 10 }
//! ```
//!
//! Exec form, which Claude Code 2.1.139 and later spawn directly, no shell (the
//! path as it is, unquoted; `args` marks the form):
//!
//! ```json
//! { "type": "command", "command": "/home/a b/.cargo/bin/swarm-hook", "args": [], "timeout": 10 }
//! ```

use anyhow::{Result, bail};

use super::Json;
use crate::shell::{program_word, shell_word};

/// The hook program's name.
pub const HOOK_PROGRAM: &str = "swarm-hook";

/// How Claude Code starts the hook. (The variants' doc lines are the help of
/// `--form` and land in shell completion scripts: plain words only.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Form {
    /// Spawned directly, no shell (Claude Code 2.1.139 and later)
    Exec,
    /// Run through /bin/sh (every Claude Code release)
    Shell,
}

impl Form {
    /// Its name, as `--form` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Form::Exec => "exec",
            Form::Shell => "shell",
        }
    }
}

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
    /// Its command line: the shell command, or in exec form the program and its
    /// arguments as one line (`exec: ` first, so the two forms never compare equal).
    pub command: String,
    /// The program that command runs, unquoted.
    pub program: String,
    /// How Claude Code runs it.
    pub form: Form,
}

/// Adds `swarm-hook` (the program at `program`, a path) to every event in
/// [`EVENTS`], in `form`. Returns how many of our entries stayed in shell form
/// although exec form was asked for: their commands hold more than the program
/// (an environment assignment, arguments), which only a shell runs.
///
/// An event that already has our entry in a group matching everything keeps it,
/// updated in place (program, form and timeout; the user's own prefix and
/// arguments stay); any further entries of ours on that event are removed, so each
/// event runs the hook once. Everything else is left exactly as it was.
pub fn install(settings: &mut Json, program: &str, form: Form) -> Result<usize> {
    if settings.get("hooks").is_none_or(|h| *h == Json::Null) {
        settings.set("hooks", Json::object());
    }
    let Some(hooks) = settings
        .get_mut("hooks")
        .filter(|h| h.as_object().is_some())
    else {
        bail!("`hooks` is not a JSON object; fix it by hand (the file was not changed)");
    };
    let mut shell_kept = 0;
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
            if !update(handler, program, form, ev.timeout_secs) {
                shell_kept += 1;
            }
            true
        });
        if !kept {
            groups.push(Json::Object(vec![(
                "hooks".to_owned(),
                Json::Array(vec![handler(program, form, ev.timeout_secs)]),
            )]));
        }
    }
    Ok(shell_kept)
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
                if let Some((command, program, form)) = our_command(h) {
                    found.push(Installed {
                        event: event.clone(),
                        command,
                        program,
                        form,
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

/// A fresh handler object running `program` in `form`.
fn handler(program: &str, form: Form, timeout_secs: u64) -> Json {
    let mut h = vec![("type".to_owned(), Json::from("command"))];
    match form {
        Form::Shell => h.push(("command".to_owned(), Json::String(shell_word(program)))),
        Form::Exec => {
            h.push(("command".to_owned(), Json::from(program)));
            h.push(("args".to_owned(), Json::Array(Vec::new())));
        }
    }
    h.push(("timeout".to_owned(), Json::from(timeout_secs)));
    Json::Object(h)
}

/// Points an existing handler of ours at `program` in `form`, keeping its
/// arguments (and in shell form the words around the program, such as environment
/// assignments), and sets its timeout. Returns `false` when exec form was asked
/// for but the handler stays in shell form: its command holds more than the
/// program, which exec form has no shell to run.
fn update(h: &mut Json, program: &str, form: Form, timeout_secs: u64) -> bool {
    let exec_args: Option<Vec<String>> = h.get("args").and_then(Json::as_array).map(|a| {
        a.iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    });
    let old = h
        .get("command")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned();
    let converted = match (exec_args, form) {
        (Some(_), Form::Exec) => {
            h.set("command", Json::from(program));
            true
        }
        (Some(args), Form::Shell) => {
            let words: Vec<String> = std::iter::once(program)
                .chain(args.iter().map(String::as_str))
                .map(shell_word)
                .collect();
            h.set("command", Json::String(words.join(" ")));
            h.remove("args");
            true
        }
        (None, form) => match program_word(&old) {
            // Nothing but the program: exec form runs it the same.
            Some((range, _))
                if form == Form::Exec
                    && old[..range.start].trim().is_empty()
                    && old[range.end..].trim().is_empty() =>
            {
                h.set("command", Json::from(program));
                set_after(h, "command", "args", Json::Array(Vec::new()));
                true
            }
            Some((range, _)) => {
                let new = format!(
                    "{}{}{}",
                    &old[..range.start],
                    shell_word(program),
                    &old[range.end..]
                );
                h.set("command", Json::String(new));
                form == Form::Shell
            }
            None => form == Form::Shell,
        },
    };
    h.set("timeout", Json::from(timeout_secs));
    converted
}

/// Sets `key` in object `h`, placing it right after `after` when it is new.
fn set_after(h: &mut Json, after: &str, key: &str, value: Json) {
    let Some(members) = h.as_object_mut() else {
        return;
    };
    if let Some(m) = members.iter_mut().find(|(k, _)| k == key) {
        m.1 = value;
        return;
    }
    let at = members
        .iter()
        .position(|(k, _)| k == after)
        .map_or(members.len(), |i| i + 1);
    members.insert(at, (key.to_owned(), value));
}

/// The command line, program and form of a handler that runs `swarm-hook`.
fn our_command(h: &Json) -> Option<(String, String, Form)> {
    let command = h.get("command")?.as_str()?;
    let (line, program, form) = match h.get("args").and_then(Json::as_array) {
        // Exec form: the command is the program itself, no shell words.
        Some(args) => {
            let mut line = format!("exec: {}", shell_word(command));
            for a in args {
                line.push(' ');
                line.push_str(&shell_word(a.as_str().unwrap_or_default()));
            }
            (line, command.to_owned(), Form::Exec)
        }
        None => {
            let (_, program) = program_word(command)?;
            (command.to_owned(), program, Form::Shell)
        }
    };
    let name = program.rsplit(['/', '\\']).next().unwrap_or(&program);
    let name = name.strip_suffix(".exe").unwrap_or(name);
    (name == HOOK_PROGRAM).then_some((line, program, form))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Json {
        serde_json::from_str(s).unwrap()
    }

    /// A shell-form handler running exactly `command`.
    fn shell(command: &str) -> Json {
        parse(&format!(
            r#"{{"type": "command", "command": {}}}"#,
            serde_json::to_string(command).unwrap()
        ))
    }

    #[test]
    fn recognises_our_entries_only() {
        let ours = |c: &str| our_command(&shell(c)).is_some();
        assert!(ours("swarm-hook"));
        assert!(ours("/opt/bin/swarm-hook"));
        assert!(ours("SWARM_OBS_SOURCE=x '/a b/swarm-hook'"));
        assert!(ours(r"'C:\tools\swarm-hook.exe'"));
        assert!(!ours("swarm-hooks"));
        assert!(!ours("echo swarm-hook"));
        assert!(!ours("/opt/swarm-hook/run.sh"));
        // Exec form: the command is the path itself, spaces and all.
        let exec = our_command(&handler("/a b/swarm-hook", Form::Exec, 1)).unwrap();
        assert_eq!(
            exec,
            (
                "exec: '/a b/swarm-hook'".to_owned(),
                "/a b/swarm-hook".to_owned(),
                Form::Exec
            )
        );
        let theirs = parse(r#"{"type": "command", "command": "/a b/other", "args": []}"#);
        assert_eq!(our_command(&theirs), None);
        let shell_form = our_command(&handler("/a b/swarm-hook", Form::Shell, 1)).unwrap();
        assert_eq!(shell_form.0, "'/a b/swarm-hook'");
        assert_eq!(shell_form.2, Form::Shell);
    }

    #[test]
    fn forms_convert_both_ways_in_place() {
        let mut s = parse(
            r#"{"hooks": {
                "Stop": [{"hooks": [{"type": "command", "command": "'/old dir/swarm-hook'", "timeout": 3, "statusMessage": "x"}]}],
                "PreToolUse": [{"hooks": [{"type": "command", "command": "SWARM_OBS_SOURCE=x /old/swarm-hook"}]}]
            }}"#,
        );
        // The entry that sets a variable keeps the shell that runs it.
        assert_eq!(
            install(&mut s, "/new dir/swarm-hook", Form::Exec).unwrap(),
            1
        );
        let hooks = s.get("hooks").unwrap();
        assert_eq!(
            serde_json::to_string(hooks.get("Stop").unwrap()).unwrap(),
            r#"[{"hooks":[{"type":"command","command":"/new dir/swarm-hook","args":[],"timeout":10,"statusMessage":"x"}]}]"#
        );
        assert_eq!(
            serde_json::to_string(hooks.get("PreToolUse").unwrap()).unwrap(),
            r#"[{"hooks":[{"type":"command","command":"SWARM_OBS_SOURCE=x '/new dir/swarm-hook'","timeout":10}]}]"#
        );
        assert_eq!(
            serde_json::to_string(hooks.get("SessionEnd").unwrap()).unwrap(),
            r#"[{"hooks":[{"type":"command","command":"/new dir/swarm-hook","args":[],"timeout":1}]}]"#
        );
        let forms: Vec<Form> = installed(&s).iter().map(|i| i.form).collect();
        assert_eq!(
            forms.iter().filter(|f| **f == Form::Exec).count(),
            EVENTS.len() - 1
        );
        // Again: nothing changes.
        let before = s.clone();
        assert_eq!(
            install(&mut s, "/new dir/swarm-hook", Form::Exec).unwrap(),
            1
        );
        assert_eq!(s, before);
        // And back: exec entries become shell commands, arguments kept.
        if let Some(Json::Array(a)) = s
            .get_mut("hooks")
            .and_then(|h| h.get_mut("Stop"))
            .and_then(|g| g.as_array_mut())
            .and_then(|g| g[0].get_mut("hooks"))
            .and_then(|h| h.as_array_mut())
            .and_then(|h| h[0].get_mut("args"))
        {
            a.push(Json::from("--x y"));
        }
        assert_eq!(
            install(&mut s, "/new dir/swarm-hook", Form::Shell).unwrap(),
            0
        );
        let hooks = s.get("hooks").unwrap();
        assert_eq!(
            serde_json::to_string(hooks.get("Stop").unwrap()).unwrap(),
            r#"[{"hooks":[{"type":"command","command":"'/new dir/swarm-hook' '--x y'","timeout":10,"statusMessage":"x"}]}]"#
        );
        assert!(installed(&s).iter().all(|i| i.form == Form::Shell));
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
        install(&mut s, "/new/swarm-hook", Form::Shell).unwrap();
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
        install(&mut s, "swarm-hook", Form::Shell).unwrap();
        let mut t = parse(r#"{"hooks": {"Stop": null}}"#);
        install(&mut t, "swarm-hook", Form::Shell).unwrap();
        assert_eq!(installed(&s).len(), EVENTS.len());
        assert_eq!(installed(&t).len(), EVENTS.len());
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let mut s = parse(r#"{"hooks": []}"#);
        assert!(
            install(&mut s, "swarm-hook", Form::Shell)
                .unwrap_err()
                .to_string()
                .contains("`hooks`")
        );
        let mut s = parse(r#"{"hooks": {"Stop": {}}}"#);
        let e = install(&mut s, "swarm-hook", Form::Shell)
            .unwrap_err()
            .to_string();
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
        install(&mut s, "swarm-hook", Form::Shell).unwrap();
        assert_eq!(uninstall(&mut s), EVENTS.len());
        // Stop held only ours once installed; the user's empty group stays.
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"hooks":{"PreToolUse":[{"hooks":[]}]}}"#
        );
        let mut s = parse(r#"{"a": 1}"#);
        install(&mut s, "swarm-hook", Form::Shell).unwrap();
        uninstall(&mut s);
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"a":1}"#);
    }
}
