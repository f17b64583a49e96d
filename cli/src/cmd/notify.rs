//! `swarm-obs notify`: send a test notification through the configured backend and
//! sound rules.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use swarm_obs::notify::{SoundRules, backend_for, off_reason};
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
    if let Some(off) = off_reason(&config.notify) {
        bail!(
            "notifications are off: {} ({}); to turn them on, {}",
            off.describe(),
            config_file.display(),
            off.fix()
        );
    }
    let backend = backend_for(&config.notify);
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
