//! `swarm-obs notify`: send a test notification through the configured backend and
//! sound rules.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use swarm_obs::notify::{NotifyConfig, SoundRules, backend_for, desktop_session_present};
use swarm_obs::{Config, Event, Kind, StateRoot};

/// Arguments of `swarm-obs notify`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  swarm-obs notify --kind done \"build finished\"\n  swarm-obs notify --kind error --source backend \"TASK_123 failed\""
)]
pub struct Args {
    /// Kind of notification: start, done, error, attention or info.
    #[arg(long, default_value = "done")]
    kind: String,
    /// Source named in the title.
    #[arg(long, default_value = "swarm-obs")]
    source: String,
    /// The message.
    message: String,
}

/// Sends the notification now, bypassing the debounce, and says how it went.
///
/// Fails when notifications, or those of this kind, are off: the test one asked
/// for cannot be shown, and the message says which setting turns them on.
pub fn run(args: Args) -> Result<ExitCode> {
    let root = StateRoot::resolve();
    let config_file = root.config_file();
    let config = Config::load(&config_file).context("cannot use the configuration")?;
    let (kind, hook) = match args.kind.as_str() {
        "start" => (Kind::Start, None),
        "done" => (Kind::Done, None),
        "error" => (Kind::Error, None),
        "attention" => (Kind::Attention, None),
        "info" => (Kind::Hook, Some("SubagentStop")),
        other => bail!("unknown kind {other:?}: expected start, done, error, attention or info"),
    };
    let backend = backend_for(&config.notify);
    if backend.name() == "off" {
        bail!(
            "notifications are off: {}",
            why_off(&config.notify, &config_file)
        );
    }
    let mut event = Event::new(args.source, kind, args.message);
    event.hook = hook.map(str::to_owned);
    let rules = SoundRules::new(config.notify.clone());
    let Some(note) = rules.notification(&event) else {
        bail!(
            "the sound rules in {} turn {kind} notifications from {source:?} off; \
             [notify.kind.{kind}] enabled = true turns the kind on (and check \
             [notify.source.{source}] there)",
            config_file.display(),
            kind = args.kind,
            source = event.source,
        );
    };
    backend.send(&note).with_context(|| {
        format!(
            "the {} backend could not show the notification",
            backend.name()
        )
    })?;
    let sound = note
        .linux_sound
        .as_deref()
        .or(note.sound.as_deref())
        .unwrap_or("no sound");
    println!(
        "Sent {:?} through the {} backend ({sound}).",
        note.title,
        backend.name()
    );
    Ok(ExitCode::SUCCESS)
}

/// Why the configuration leaves notifications off, and which setting in `config`
/// (the config file's path) turns them on.
fn why_off(notify: &NotifyConfig, config: &Path) -> String {
    const COMMAND: &str = "backend = \"command\" and command = '...'";
    let config = config.display();
    if notify.backend == "off" {
        format!(
            "[notify] backend = \"off\" in {config}; to turn them on, set backend = \"auto\" \
             (the desktop) or {COMMAND} there"
        )
    } else if !desktop_session_present() {
        format!(
            "no desktop session to show them in (DBUS_SESSION_BUS_ADDRESS unset, no \
             $XDG_RUNTIME_DIR/bus) and no [notify] command; run this inside a desktop \
             session, or set [notify] {COMMAND} in {config}"
        )
    } else {
        format!("this build has no desktop backend; set [notify] {COMMAND} in {config}")
    }
}
