//! # swarm-hook
//!
//! The Claude Code hook of swarm-obs. Claude Code runs it on every hook event with
//! the event as JSON on stdin; it appends the event to the local event log first,
//! then offers it to the local collector within a tight budget.
//!
//! Its contract with Claude Code: it never writes to stdout (which may be fed to the
//! model), always exits 0 (exit 2 would block the action, any other code shows a
//! "hook error"), and finishes quickly whatever the input: bad input becomes an
//! `error` event and one line on stderr.
//!
//! ```json
//! { "hooks": { "PreToolUse": [ { "hooks": [ { "type": "command", "command": "swarm-hook" } ] } ] } }
//! ```

pub mod deliver;
pub mod input;
pub mod launcher;
pub mod mapping;

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use swarm_obs::{
    CollectorAddress, CollectorClient, Config, Event, EventLog, Kind, Redactor, StateRoot,
};

use swarm_obs::notify::{self, Notification, NotifyGate, SoundRules, Verdict};

pub use crate::deliver::Delivery;
use crate::input::{Input, InputLimits, read_input};
use crate::mapping::{Labels, hook_event};

/// Environment variable that names the source instead of the project directory.
pub const SOURCE_ENV: &str = "SWARM_OBS_SOURCE";

/// What one run of the hook did, for tests and the caller's exit path.
#[derive(Debug)]
pub struct Outcome {
    /// The event recorded (or that would have been).
    pub event: Event,
    /// Whether it reached the event log.
    pub logged: bool,
    /// Whether it went to the collector: written whole to its connection (an event
    /// in the log, whose answer the hook does not wait for) or, where an answer
    /// decides something and the hook waited, accepted.
    pub posted: bool,
    /// The notification handed to delivery, if any.
    pub notified: Option<Delivery>,
}

/// Runs the hook on `stdin`, reporting problems on `stderr`. Never panics on input.
pub fn run<R: std::io::Read + Send + 'static>(stdin: R, stderr: &mut dyn Write) -> Outcome {
    run_reading(|limits| read_input(stdin, limits), stderr)
}

/// Runs the hook on this process's stdin, read on this thread where the platform
/// allows (see [`input::read_stdin`]), reporting problems on `stderr`.
pub fn run_stdin(stderr: &mut dyn Write) -> Outcome {
    #[cfg(unix)]
    let read = input::read_stdin;
    #[cfg(not(unix))]
    let read = |limits| read_input(std::io::stdin(), limits);
    run_reading(read, stderr)
}

/// The hook, with its input taken by `read`.
fn run_reading(
    read: impl FnOnce(InputLimits) -> (Input, input::Drain),
    stderr: &mut dyn Write,
) -> Outcome {
    let started = Instant::now();
    let root = StateRoot::resolve();
    // A state root another user could write gets nothing: no line in its log, no
    // POST to the collector its collector.json names, no command its config runs.
    let trusted = root.check_trusted();
    let config = match &trusted {
        Ok(()) => Config::load(&root.config_file()).unwrap_or_else(|e| {
            let _ = writeln!(stderr, "swarm-hook: {e}; using defaults");
            Config::default()
        }),
        Err(_) => Config::default(),
    };
    let limits = InputLimits {
        deadline: Duration::from_millis(config.hook.stdin_timeout_ms),
        ..InputLimits::default()
    };
    let (input, drain) = read(limits);
    let redactor = Redactor::new(config.redaction.clone());
    let labels = Labels {
        source: std::env::var(SOURCE_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty()),
        fallback_project: std::env::current_dir()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "claude-code".to_owned()),
    };

    let (event, problem) = match input {
        Input::Object(bytes) => match serde_json::from_slice::<Map<String, Value>>(&bytes) {
            Ok(map) => (hook_event(map, &labels, &redactor), None),
            Err(e) => {
                let reason = format!("input is not valid JSON: {e}");
                invalid_input_event(&labels, &redactor, &reason, &bytes, bytes.len())
            }
        },
        Input::Invalid {
            reason,
            head,
            bytes,
        } => invalid_input_event(&labels, &redactor, &reason, &head, bytes),
    };
    let mut event = event;
    if let Err(e) = trusted {
        let _ = writeln!(stderr, "swarm-hook: {e}; the event was not recorded");
        if !drain.finished() {
            drain.wait(started + limits.deadline.max(Duration::from_millis(100)));
        }
        return Outcome {
            event,
            logged: false,
            posted: false,
            notified: None,
        };
    }
    // The Claude Code process behind this event: how the collector sees it die.
    if let Some((pid, started_at)) = launcher::claude_process() {
        event.claude_pid = Some(pid);
        event.claude_started_at = started_at;
    }

    let log = EventLog::new(root.clone());
    let logged = match log.append(&event) {
        Ok(path) => {
            if let Some(reason) = &problem {
                let _ = writeln!(
                    stderr,
                    "swarm-hook: {reason}; recorded as an error event in {}",
                    path.display()
                );
            }
            true
        }
        Err(e) => {
            let _ = writeln!(stderr, "swarm-hook: event not recorded: {e}");
            false
        }
    };

    // Claude Code waits for the hook's exit, so the hook waits only for answers
    // that decide something. An event in the log is sent, not waited for: a POST
    // the collector never takes (down, hung, killed mid-request) is read from the
    // log by its catch-up. A notification handed to a collector that shows them
    // waits for its answer (a refusal means the hook shows it itself), on the
    // POST's connection; so does an event the log could not take.
    let collector = CollectorAddress::discover(&root, &config).map(|addr| {
        let client = CollectorClient::new(addr, Duration::from_millis(config.hook.post_budget_ms));
        // No log line backs the event: the collector's answer must mean it is stored.
        if logged { client } else { client.not_logged() }
    });
    // The sound rules are cheap and pure; only an event they make a notification of
    // is worth more. The gate and delivery then matter only when someone can show
    // it: the collector, or a backend this process reaches. With `auto` and no
    // desktop session (SSH, CI) that is nobody, and each such event would pay for a
    // gate update and a delivery process that shows nothing.
    let shows = collector
        .as_ref()
        .is_some_and(|c| c.address().shows_notifications);
    let note = (config.notify.backend != "off")
        .then(|| SoundRules::new(config.notify.clone()))
        .and_then(|r| r.notification(&event))
        .filter(|_| shows || notify::backend_for(&config.notify).name() != "off");
    let events = std::slice::from_ref(&event);
    let (post, notified) = match (&collector, note) {
        (Some(client), Some(note)) if shows => {
            let done =
                client.post_logged_and_hand(events, || gate(&root, &config, &event, note, stderr));
            let notified = done.job.map(|(job, taken)| {
                // Refused or unanswered: show it with a process of our own.
                if taken.is_err() {
                    deliver_detached(&job, stderr);
                }
                job
            });
            (Some(done.posted), notified)
        }
        // Sent first: the collector works on it while the gate and the delivery
        // process start.
        (client, note) => (
            client.as_ref().map(|c| c.send_logged(events)),
            note.and_then(|n| gate_and_deliver(&root, &config, &event, n, stderr)),
        ),
    };
    let posted = match post {
        Some(Ok(())) => true,
        // Unreachable is normal when no collector runs: the event is on disk and the
        // collector catches up from the log. A refusal (heard only where the hook
        // waited for the answer) is worth a line.
        Some(Err(e @ swarm_obs::PostError::Rejected { .. })) => {
            let _ = writeln!(stderr, "swarm-hook: {e}");
            false
        }
        Some(Err(_)) | None => false,
    };

    // Bad input may have stopped reading early: let the writer finish, within the
    // input deadline, so it does not see a broken pipe.
    if problem.is_some() && !drain.finished() {
        drain.wait(started + limits.deadline.max(Duration::from_millis(100)));
    }
    Outcome {
        event,
        logged,
        posted,
        notified,
    }
}

/// Passes the notification the sound rules made of `event` through the shared
/// gate: the job to deliver, or `None` when it is held back with no summary to
/// arrange. A gate that cannot be read shows the notification rather than lose it.
fn gate(
    root: &StateRoot,
    config: &Config,
    event: &Event,
    note: Notification,
    stderr: &mut dyn Write,
) -> Option<Delivery> {
    let gate = NotifyGate::new(notify::gate_file(root), &config.notify);
    match gate.check(&note, event.ts.unix_ms()) {
        Ok(Verdict::Show) => Some(Delivery::Show(note)),
        Ok(Verdict::Suppressed {
            summary_at_ms: Some(due),
        }) => Some(Delivery::SummaryAt(due)),
        Ok(Verdict::Suppressed {
            summary_at_ms: None,
        }) => None,
        Err(e) => {
            let _ = writeln!(
                stderr,
                "swarm-hook: notification state {}: {e}",
                gate.path().display()
            );
            Some(Delivery::Show(note))
        }
    }
}

/// [`gate`], then what it lets through goes to a detached delivery process.
fn gate_and_deliver(
    root: &StateRoot,
    config: &Config,
    event: &Event,
    note: Notification,
    stderr: &mut dyn Write,
) -> Option<Delivery> {
    let job = gate(root, config, event, note, stderr)?;
    deliver_detached(&job, stderr);
    Some(job)
}

/// Hands `job` to a detached `swarm-hook --deliver`, so the hook never waits for a
/// notification server.
fn deliver_detached(job: &Delivery, stderr: &mut dyn Write) {
    if let Err(e) = deliver::spawn_detached(job) {
        let _ = writeln!(
            stderr,
            "swarm-hook: cannot start notification delivery: {e}"
        );
    }
}

fn invalid_input_event(
    labels: &Labels,
    redactor: &Redactor,
    reason: &str,
    head: &[u8],
    bytes: usize,
) -> (Event, Option<String>) {
    let source = labels
        .source
        .clone()
        .unwrap_or_else(|| labels.fallback_project.clone());
    let mut ev = Event::new(
        source,
        Kind::Error,
        format!("swarm-hook: invalid hook input: {reason}"),
    );
    let head = String::from_utf8_lossy(&head[..head.len().min(256)]).into_owned();
    let mut payload =
        serde_json::json!({ "input_head": head, "input_bytes": bytes, "reason": reason });
    redactor.redact_value(&mut payload);
    ev.payload = Some(payload);
    ev.hook = Some("InvalidInput".to_owned());
    (ev, Some(format!("invalid hook input: {reason}")))
}
