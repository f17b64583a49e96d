//! swarm-hook inside the real Claude Code CLI, offline. `swarm-obs hooks install
//! --scope project` puts the hook in a project; the real `claude -p` runs there
//! against a scripted Messages API on loopback (src/fake_anthropic.rs): a Bash
//! command, a failing one, and a foreground subagent that runs its own Bash. Then
//! both sides must agree: every hook the CLI reports in its stream-json output
//! (`--include-hook-events`) exited 0 with nothing on stdout, and a real collector
//! and the hook's event log hold exactly one event per hook that ran. It runs
//! twice: with the hook in shell form (`/bin/sh -c`), and in exec form as
//! `hooks install` writes it for a `claude` on PATH of 2.1.139 or later
//! (`"command": "<path>", "args": []`); the program registered notes its parent
//! before it becomes swarm-hook, so the test sees the CLI spawn the hook itself in
//! exec form, and a shell in between in shell form.
//!
//! The CLI is the npm package `@anthropic-ai/claude-code` that `.ci/run` installs
//! under `target/claude-code` (`SWARM_OBS_CLAUDE` names another `claude`). Without
//! it the test skips loudly; `SWARM_OBS_REQUIRE_SYSTEM_TESTS=1` makes that a
//! failure. `UPDATE_TRANSCRIPTS=1` copies the transcripts the CLI wrote into
//! tests/fixtures/claude-code-transcripts/.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use swarm_obs_suite::claude_cli::{ClaudeRun, claude_cli, claude_command};
use swarm_obs_suite::fake_anthropic::FINAL_TEXT;
use swarm_obs_suite::{Collector, FakeAnthropic, TestHome, UserHome, bin, workspace_root};

/// How long one run of the CLI may take before it is killed.
const CLI_BOUND: Duration = Duration::from_secs(120);

/// What the scripted model does, one tool call per line.
const PROMPT: &str = "Follow this script, one tool call per line:\n\
                      run: echo hello-from-bash\n\
                      run: ls /nonexistent-dir\n\
                      subagent: echo hello-from-subagent\n";

/// Hook events the script makes Claude Code fire in `-p` mode (SessionEnd aside:
/// it comes after the stream-json output has ended).
const EXPECTED_HOOKS: &[&str] = &[
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "SubagentStart",
    "SubagentStop",
    "Stop",
];

const TOOL_HOOKS: &[&str] = &["PreToolUse", "PostToolUse", "PostToolUseFailure"];

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// How many times each value occurs.
fn tally<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

/// Events of `session` in the collector, polled (bounded) until `ready` holds.
fn collector_events(c: &Collector, session: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let t = Instant::now();
    loop {
        let page = c.get_json("/v1/events?limit=1000");
        let events: Vec<Value> = page["events"]
            .as_array()
            .expect("events array")
            .iter()
            .filter(|e| e["session"] == session)
            .cloned()
            .collect();
        if ready(&events) {
            return events;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the collector's events of session {session} never became complete: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fields both sides must agree on, for one event.
fn essence(e: &Value) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        text(e, "kind"),
        text(e, "hook"),
        text(e, "tool"),
        text(e, "tool_use_id"),
        text(e, "agent"),
        text(e, "agent_type"),
        text(e, "session"),
    )
}

/// How `hooks install` registers the hook for one run of the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `"command": "<shell word>"`: Claude Code runs `/bin/sh -c <command>`.
    Shell,
    /// `"command": "<path>", "args": []`: Claude Code spawns it directly.
    Exec,
}

/// The first Claude Code release that runs a hook in exec form.
const EXEC_FORM_SINCE: (u32, u32, u32) = (2, 1, 139);

/// `2.1.337` of `2.1.337 (Claude Code)`.
fn version_number(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split_whitespace().next()?.split('.');
    let mut next = || parts.next()?.parse::<u32>().ok();
    Some((next()?, next()?, next()?))
}

/// A stand-in for swarm-hook that notes its pid, its parent's pid, name and
/// parent, then becomes the real swarm-hook (`exec`, same process): so the
/// test learns, per event (whose `pid` is the hook's), who spawned the hook.
fn noting_hook(dir: &Path, notes: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("create the hook's directory");
    let hook = dir.join("swarm-hook");
    let script = format!(
        "#!/bin/sh\n\
         read -r _ name _ grandparent _ < /proc/$PPID/stat\n\
         printf '%s %s %s %s\\n' \"$$\" \"$PPID\" \"$name\" \"$grandparent\" >> '{}'\n\
         exec '{}'\n",
        notes.display(),
        bin("swarm-hook").display()
    );
    std::fs::write(&hook, script).expect("write the noting hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .expect("make the noting hook executable");
    hook
}

#[test]
fn the_real_claude_code_cli_runs_the_hook_and_every_event_arrives_once() {
    scripted_session(Form::Shell);
}

/// The same session with the hook installed in exec form, as `hooks install`
/// writes it when the `claude` on PATH is 2.1.139 or later: every event arrives
/// once, and the process that ran swarm-hook was the CLI itself, no shell between.
#[test]
fn in_exec_form_the_cli_spawns_the_hook_itself_and_every_event_arrives_once() {
    scripted_session(Form::Exec);
}

fn scripted_session(form: Form) {
    let Some(cli) = claude_cli("claude_code") else {
        return;
    };
    let home = TestHome::new();
    // No desktop notifications from a test run.
    std::fs::write(
        home.path().join("config.toml"),
        "[notify]\nbackend = \"off\"\n",
    )
    .expect("write config.toml");
    let user = UserHome::new();
    let collector = Collector::start(&home);
    let api = FakeAnthropic::start();

    // The version, and proof the binary runs here at all.
    let mut version = ClaudeRun::spawn(claude_command(&cli, &user, &home, &api).arg("--version"));
    let (out, status) = version.finish(Duration::from_secs(60));
    assert!(status.success(), "claude --version: {status}: {out:?}");
    eprintln!("Claude Code CLI {}: {}", cli.display(), out.join(" "));
    let cli_version = version_number(&out.join(" "));
    if form == Form::Exec && cli_version.is_none_or(|v| v < EXEC_FORM_SINCE) {
        eprintln!(
            "claude_code: SKIPPED — exec form needs Claude Code 2.1.139 or later; {} is {out:?}",
            cli.display()
        );
        return;
    }

    // swarm-hook into the project's settings, as a user would; the program
    // registered notes who spawns it, then becomes swarm-hook.
    let notes = user.path().join("hook-parents");
    let hook = noting_hook(&user.path().join("hook-bin"), &notes);
    let mut install = user.command(bin("swarm-obs"));
    install
        .args(["hooks", "install", "--scope", "project", "--hook"])
        .arg(&hook);
    match form {
        Form::Shell => {
            install.args(["--form", "shell"]);
        }
        // The form follows the claude on PATH, as for a user who has it there.
        Form::Exec => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let dirs = std::iter::once(cli.parent().expect("the CLI's directory").to_owned())
                .chain(std::env::split_paths(&path));
            install.env("PATH", std::env::join_paths(dirs).expect("a PATH"));
        }
    }
    let install = swarm_obs_suite::output_retrying_busy(&mut install);
    let said = String::from_utf8_lossy(&install.stdout);
    assert!(
        install.status.success(),
        "swarm-obs hooks install --scope project: {said}{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let settings = std::fs::read_to_string(user.project().join(".claude/settings.json"))
        .expect("the project's settings.json");
    let settings_value: Value = serde_json::from_str(&settings).expect("settings JSON");
    let entry = &settings_value["hooks"]["Stop"][0]["hooks"][0];
    let hook_text = hook.to_str().expect("UTF-8 path");
    match form {
        Form::Shell => {
            assert_eq!(entry["command"], hook_text, "{settings}");
            assert!(entry.get("args").is_none(), "{settings}");
        }
        Form::Exec => {
            assert!(said.contains("Exec form: Claude Code"), "{said}");
            assert_eq!(entry["command"], hook_text, "{settings}");
            assert_eq!(entry["args"], serde_json::json!([]), "{settings}");
        }
    }

    // One scripted run of the real CLI.
    let mut run = ClaudeRun::spawn(claude_command(&cli, &user, &home, &api).args([
        "-p",
        PROMPT,
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-hook-events",
        "--allowedTools",
        "Bash,Agent",
    ]));
    let (lines, status) = run.finish(CLI_BOUND);
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let dump = || {
        format!(
            "stream-json:\n{}\nstderr:\n{}",
            lines.join("\n"),
            run.child.stderr()
        )
    };
    assert!(
        status.success(),
        "claude -p exited with {status}; {}",
        dump()
    );

    // ---- The CLI's side: what ran, and how each hook ended.
    let result = records
        .iter()
        .find(|r| r["type"] == "result")
        .unwrap_or_else(|| panic!("no result record; {}", dump()));
    assert_eq!(result["subtype"], "success", "{result}");
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["result"], FINAL_TEXT, "{result}");
    let session = text(result, "session_id").to_owned();
    assert!(!session.is_empty(), "{result}");
    assert!(
        records
            .iter()
            .all(|r| r["session_id"].is_null() || r["session_id"] == session),
        "records of another session; {}",
        dump()
    );

    let system = |subtype: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["type"] == "system" && r["subtype"] == subtype)
            .collect()
    };
    let started = system("hook_started");
    let responses = system("hook_response");
    assert!(!responses.is_empty(), "no hook records; {}", dump());
    let started_ids: BTreeSet<&str> = started.iter().map(|r| text(r, "hook_id")).collect();
    let response_ids: Vec<&str> = responses.iter().map(|r| text(r, "hook_id")).collect();
    assert_eq!(
        started_ids.len(),
        started.len(),
        "a hook started twice; {}",
        dump()
    );
    assert_eq!(
        started_ids,
        response_ids.iter().copied().collect::<BTreeSet<_>>(),
        "every hook that started must answer, once"
    );
    assert_eq!(response_ids.len(), started.len(), "a hook answered twice");
    for r in &responses {
        assert_eq!(r["exit_code"], 0, "hook exit code: {r}");
        assert_eq!(r["outcome"], "success", "{r}");
        assert_eq!(r["stdout"], "", "the hook wrote to stdout: {r}");
        assert_eq!(r["output"], "", "{r}");
        assert_eq!(r["stderr"], "", "the hook complained: {r}");
    }
    let ran = tally(responses.iter().map(|r| text(r, "hook_event")));
    for hook in EXPECTED_HOOKS {
        assert!(ran.contains_key(hook), "no {hook} hook ran: {ran:?}");
    }

    // What the scripted model asked for: main Bash ×2, Agent, the subagent's Bash.
    let issued = api.issued_tool_uses();
    let names: Vec<&str> = issued.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Bash", "Bash", "Agent", "Bash"], "{issued:#?}");
    let (echo, failing, agent_call, sub_echo) = (&issued[0], &issued[1], &issued[2], &issued[3]);
    assert_eq!(failing.input["command"], "ls /nonexistent-dir");
    assert_eq!(sub_echo.input["command"], "echo hello-from-subagent");
    // The subagent's id, as the CLI reports it on the subagent's own messages.
    let sub_ids: BTreeSet<&str> = records
        .iter()
        .filter(|r| r["parent_tool_use_id"] == agent_call.id.as_str())
        .filter_map(|r| r["agent_id"].as_str())
        .collect();
    assert_eq!(sub_ids.len(), 1, "one subagent; {}", dump());
    let subagent = sub_ids.into_iter().next().unwrap_or_default().to_owned();

    // ---- The collector's side: one event per hook that ran, none twice.
    let expected_total = responses.len() + 1; // + SessionEnd
    let events = collector_events(&collector, &session, |evs| {
        evs.len() >= expected_total && evs.iter().any(|e| e["hook"] == "SessionEnd")
    });
    let all = format!("{events:#?}");
    let ids: BTreeSet<&str> = events.iter().map(|e| text(e, "id")).collect();
    assert_eq!(ids.len(), events.len(), "an event id twice: {all}");
    assert!(
        events.iter().all(|e| e["hook"].is_string()),
        "a session event without its hook: {all}"
    );
    let mut want = ran.clone();
    want.insert("SessionEnd", 1);
    assert_eq!(
        tally(events.iter().map(|e| text(e, "hook"))),
        want,
        "hook events in the collector vs hooks the CLI ran (+ SessionEnd): {all}"
    );
    // Tool hooks match by name and tool, as the CLI names them (`PreToolUse:Bash`).
    assert_eq!(
        tally(
            events
                .iter()
                .filter(|e| TOOL_HOOKS.contains(&text(e, "hook")))
                .map(|e| format!("{}:{}", text(e, "hook"), text(e, "tool")))
        ),
        tally(
            responses
                .iter()
                .filter(|r| TOOL_HOOKS.contains(&text(r, "hook_event")))
                .map(|r| text(r, "hook_name").to_owned())
        ),
        "{all}"
    );
    // Lifecycle hooks once per agent; tool hooks once per tool call.
    for hook in [
        "SessionStart",
        "UserPromptSubmit",
        "SubagentStart",
        "SubagentStop",
        "Stop",
        "SessionEnd",
    ] {
        assert_eq!(want.get(hook), Some(&1), "{hook}: {want:?}");
    }
    let per_call: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| TOOL_HOOKS.contains(&text(e, "hook")))
        .map(|e| (text(e, "hook"), text(e, "tool_use_id")))
        .collect();
    assert_eq!(
        per_call.iter().collect::<BTreeSet<_>>().len(),
        per_call.len(),
        "a tool hook twice for one call: {all}"
    );

    // PreToolUse and PostToolUse(Failure) pair by tool_use_id, for exactly the
    // calls the model made, with the agent that made them.
    let find = |hooks: &[&str], id: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| hooks.contains(&text(e, "hook")) && e["tool_use_id"] == id)
            .collect()
    };
    let used: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["tool_use_id"].as_str())
        .collect();
    assert_eq!(
        used,
        issued
            .iter()
            .map(|t| t.id.as_str())
            .collect::<BTreeSet<_>>(),
        "{all}"
    );
    for call in &issued {
        let pre = find(&["PreToolUse"], &call.id);
        let post = find(&["PostToolUse", "PostToolUseFailure"], &call.id);
        assert_eq!((pre.len(), post.len()), (1, 1), "{}: {all}", call.id);
        let (pre, post) = (pre[0], post[0]);
        for e in [pre, post] {
            assert_eq!(e["tool"], call.name.as_str(), "{e}");
            assert_eq!(e["agent"], pre["agent"], "{e}");
        }
        let want_agent = if call.id == sub_echo.id {
            Some(subagent.as_str())
        } else {
            None
        };
        assert_eq!(pre["agent"].as_str(), want_agent, "{pre}");
        let want_hook = if call.id == failing.id {
            "PostToolUseFailure"
        } else {
            "PostToolUse"
        };
        assert_eq!(post["hook"], want_hook, "{post}");
    }
    // The failing command is an error; the others are not.
    let failure = find(&["PostToolUseFailure"], &failing.id)[0];
    assert_eq!(failure["kind"], "error", "{failure}");
    assert_eq!(failure["tool"], "Bash", "{failure}");
    for call in [echo, agent_call, sub_echo] {
        let post = find(&["PostToolUse"], &call.id)[0];
        assert_ne!(post["kind"], "error", "{post}");
    }

    // Subagent events carry the subagent's id and type; the main agent's none.
    for e in &events {
        let inside = matches!(text(e, "hook"), "SubagentStart" | "SubagentStop")
            || e["tool_use_id"] == sub_echo.id.as_str();
        let main = matches!(
            text(e, "hook"),
            "SessionStart" | "UserPromptSubmit" | "Stop" | "SessionEnd"
        ) || [echo, failing, agent_call]
            .iter()
            .any(|c| e["tool_use_id"] == c.id.as_str());
        if inside || e["agent"].is_string() {
            assert_eq!(e["agent"], subagent.as_str(), "{e}");
            assert_eq!(e["agent_type"], "general-purpose", "{e}");
        }
        if main {
            assert!(
                e["agent"].is_null(),
                "a main-agent event with an agent: {e}"
            );
            assert!(e["agent_type"].is_null(), "{e}");
        }
    }
    let kind_of = |hook: &str| -> &str {
        events
            .iter()
            .find(|e| e["hook"] == hook)
            .map_or("", |e| text(e, "kind"))
    };
    assert_eq!(kind_of("SessionStart"), "start");
    assert_eq!(kind_of("Stop"), "done");

    // The hook found the claude process it ran under.
    for e in &events {
        assert_eq!(e["claude_pid"], run.child.pid(), "{e}");
    }
    // And who spawned it: in exec form the CLI itself; in shell form a /bin/sh
    // that the CLI spawned.
    let notes = std::fs::read_to_string(&notes).expect("the hook's notes");
    let spawned_by: BTreeMap<u64, (u64, String, u64)> = notes
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let n = |i: usize| f.get(i).and_then(|t| t.parse().ok()).unwrap_or(0);
            (
                n(0),
                (n(1), f.get(2).copied().unwrap_or("").to_owned(), n(3)),
            )
        })
        .collect();
    let cli_pid = u64::from(run.child.pid());
    for e in &events {
        let pid = e["pid"].as_u64().expect("the hook's pid");
        let (parent, name, grandparent) = spawned_by
            .get(&pid)
            .unwrap_or_else(|| panic!("no note of hook {pid}: {notes}"));
        match form {
            Form::Exec => assert_eq!(
                *parent, cli_pid,
                "the hook's parent is {parent} {name}, not the CLI: {e}"
            ),
            Form::Shell => {
                assert_eq!(name, "(sh)", "{notes}");
                assert_eq!(*grandparent, cli_pid, "{notes}");
            }
        }
    }

    // The session ended (SessionEnd closes a -p run), with its subagent, its
    // tool calls and its one error.
    let s = collector.session_when(&session, |s| s["state"] == "ended");
    assert_eq!(s["claude_pid"], run.child.pid(), "{s:#}");
    assert_eq!(s["errors"], 1, "{s:#}");
    assert_eq!(s["tools"]["Bash"], 3, "{s:#}");
    assert_eq!(s["tools"]["Agent"], 1, "{s:#}");
    let agents = s["agents"].as_array().expect("the session's agents");
    let sub = agents
        .iter()
        .find(|a| a["agent"] == subagent.as_str())
        .unwrap_or_else(|| panic!("the session does not list its subagent {subagent}: {s:#}"));
    assert_eq!(sub["agent_type"], "general-purpose", "{sub}");
    assert_eq!(sub["state"], "ended", "{sub}");
    assert_eq!(sub["tool_calls"], 1, "{sub}");

    // ---- The hook's own event log holds the same events.
    let logged: Vec<Value> = home
        .event_lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("an event line is JSON"))
        .filter(|e: &Value| e["session"] == session.as_str())
        .collect();
    let by_id = |evs: &[Value]| -> BTreeMap<String, String> {
        evs.iter()
            .map(|e| (text(e, "id").to_owned(), essence(e)))
            .collect()
    };
    assert_eq!(logged.len(), events.len(), "{logged:#?}");
    assert_eq!(by_id(&logged), by_id(&events));

    // ---- The transcripts the CLI wrote, where the hook said they are.
    let start = events
        .iter()
        .find(|e| e["hook"] == "SessionStart")
        .expect("SessionStart");
    let transcript = PathBuf::from(text(&start["payload"], "transcript_path"));
    assert!(
        transcript.starts_with(user.path().join(".claude/projects")),
        "{}",
        transcript.display()
    );
    assert!(transcript.is_file(), "{}", transcript.display());
    let sub_transcript = transcript
        .with_extension("")
        .join(format!("subagents/agent-{subagent}.jsonl"));
    assert!(sub_transcript.is_file(), "{}", sub_transcript.display());
    // From the shell-form run only: both runs write the same files.
    if form == Form::Shell && std::env::var_os("UPDATE_TRANSCRIPTS").is_some() {
        let dir = workspace_root().join("tests/fixtures/claude-code-transcripts");
        std::fs::create_dir_all(&dir).expect("create the transcripts fixture dir");
        // Written afresh, not copied: the CLI's files are 0600.
        for (from, to) in [
            (transcript.clone(), "session.jsonl"),
            (sub_transcript.clone(), "subagent.jsonl"),
            (
                sub_transcript.with_extension("meta.json"),
                "subagent.meta.json",
            ),
        ] {
            let bytes =
                std::fs::read(&from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
            std::fs::write(dir.join(to), bytes).expect("write a transcript fixture");
        }
    }
}
