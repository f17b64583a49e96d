//! Delivery backends behind one trait: the desktop (D-Bus on Linux and the BSDs,
//! Notification Center on macOS), a user's command, or nothing.

use std::process::{Command, Stdio};

use super::{Notification, NotifyConfig, Urgency};

/// A notification could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The desktop notification service failed or is absent.
    #[error("desktop notification failed: {0}")]
    Desktop(String),
    /// The notification command could not run or failed.
    #[error("notification command `{command}` failed: {message}")]
    Command {
        /// The command line.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// This build has no desktop backend.
    #[error(
        "this build has no desktop notification backend (enable the `desktop` feature of swarm-obs)"
    )]
    Unsupported,
}

/// Something that shows notifications.
pub trait NotifyBackend: Send + Sync {
    /// Shows one notification; must not wait for the user to click.
    fn send(&self, n: &Notification) -> Result<(), NotifyError>;

    /// A short name for messages (`desktop`, `command`, `off`).
    fn name(&self) -> &'static str;
}

/// Shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct OffBackend;

impl NotifyBackend for OffBackend {
    fn send(&self, _: &Notification) -> Result<(), NotifyError> {
        Ok(())
    }
    fn name(&self) -> &'static str {
        "off"
    }
}

/// Runs a shell command per notification, with its fields in the environment:
/// `SWARM_TITLE`, `SWARM_BODY`, `SWARM_KIND`, `SWARM_SOUND`, `SWARM_LINUX_SOUND`,
/// `SWARM_URGENCY`, `SWARM_SOURCE`, `SWARM_SESSION`.
///
/// ```no_run
/// use swarm_obs::notify::{CommandBackend, NotifyBackend};
/// let ntfy = CommandBackend::new(r#"ntfy publish swarm "$SWARM_TITLE: $SWARM_BODY""#);
/// # let _ = ntfy.name();
/// ```
#[derive(Debug, Clone)]
pub struct CommandBackend {
    command: String,
}

impl CommandBackend {
    /// A backend running `command` with `sh -c`.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
        }
    }
}

impl NotifyBackend for CommandBackend {
    fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let fail = |message: String| NotifyError::Command {
            command: self.command.clone(),
            message,
        };
        let status = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env("SWARM_TITLE", &n.title)
            .env("SWARM_BODY", &n.body)
            .env("SWARM_KIND", n.kind.as_str())
            .env("SWARM_SOUND", n.sound.as_deref().unwrap_or(""))
            .env("SWARM_LINUX_SOUND", n.linux_sound.as_deref().unwrap_or(""))
            .env("SWARM_URGENCY", urgency_name(n.urgency))
            .env("SWARM_SOURCE", &n.source)
            .env("SWARM_SESSION", n.session.as_deref().unwrap_or(""))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| fail(e.to_string()))?;
        if status.success() {
            Ok(())
        } else {
            Err(fail(format!("exited with {status}")))
        }
    }
    fn name(&self) -> &'static str {
        "command"
    }
}

fn urgency_name(u: Urgency) -> &'static str {
    match u {
        Urgency::Low => "low",
        Urgency::Normal => "normal",
        Urgency::Critical => "critical",
    }
}

/// The backend a configuration asks for. `auto` picks the desktop when this build
/// has one and a session to show it in (on Linux, a D-Bus session bus: without a
/// notification server a D-Bus call can hang for half a minute), else nothing.
pub fn backend_for(config: &NotifyConfig) -> Box<dyn NotifyBackend> {
    match config.backend.as_str() {
        "off" => Box::new(OffBackend),
        "command" => match &config.command {
            Some(c) if !c.is_empty() => Box::new(CommandBackend::new(c.clone())),
            _ => Box::new(OffBackend),
        },
        "desktop" => desktop_backend(config).unwrap_or_else(|| Box::new(OffBackend)),
        _ => match (&config.command, desktop_backend(config)) {
            (Some(c), _) if !c.is_empty() => Box::new(CommandBackend::new(c.clone())),
            (_, Some(desktop)) if desktop_session_present() => desktop,
            _ => Box::new(OffBackend),
        },
    }
}

/// Why [`backend_for`] picks no backend for a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffReason {
    /// `[notify] backend = "off"`.
    Configured,
    /// `backend = "command"` with no command.
    NoCommand,
    /// `auto`, no command, and no desktop session to show them in.
    NoDesktopSession,
    /// `auto` or `desktop`, no command, and a build without the desktop backend.
    NoDesktopBackend,
}

impl OffReason {
    /// Why, in a few words.
    ///
    /// ```
    /// use swarm_obs::notify::{NotifyConfig, off_reason};
    /// let off = NotifyConfig { backend: "off".into(), ..NotifyConfig::default() };
    /// assert_eq!(off_reason(&off).unwrap().describe(), "[notify] backend = \"off\"");
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            OffReason::Configured => "[notify] backend = \"off\"",
            OffReason::NoCommand => "[notify] backend = \"command\" with no command",
            OffReason::NoDesktopSession => {
                "no desktop session (DBUS_SESSION_BUS_ADDRESS unset, no $XDG_RUNTIME_DIR/bus) and no [notify] command"
            }
            OffReason::NoDesktopBackend => "this build has no desktop backend",
        }
    }

    /// What turns notifications on, in `config.toml` or around it.
    pub fn fix(self) -> &'static str {
        match self {
            OffReason::Configured => {
                "set [notify] backend = \"auto\" (the desktop), or backend = \"command\" and a command, in config.toml"
            }
            OffReason::NoCommand => "set [notify] command in config.toml",
            OffReason::NoDesktopSession => {
                "run inside a desktop session, or set [notify] backend = \"command\" and a command in config.toml"
            }
            OffReason::NoDesktopBackend => {
                "set [notify] backend = \"command\" and a command in config.toml"
            }
        }
    }
}

/// Why notifications are off under `config`, or `None` when [`backend_for`] picks
/// a backend that shows them.
pub fn off_reason(config: &NotifyConfig) -> Option<OffReason> {
    if backend_for(config).name() != "off" {
        return None;
    }
    Some(match config.backend.as_str() {
        "off" => OffReason::Configured,
        "command" => OffReason::NoCommand,
        _ if desktop_backend(config).is_none() => OffReason::NoDesktopBackend,
        _ => OffReason::NoDesktopSession,
    })
}

/// Whether this process can reach a desktop to show notifications on: always on
/// macOS; elsewhere, a D-Bus session bus named in the environment or at
/// `$XDG_RUNTIME_DIR/bus`.
pub fn desktop_session_present() -> bool {
    if cfg!(target_os = "macos") {
        return true;
    }
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|d| std::path::Path::new(&d).join("bus").exists())
}

#[cfg(feature = "desktop")]
fn desktop_backend(config: &NotifyConfig) -> Option<Box<dyn NotifyBackend>> {
    Some(Box::new(super::desktop::DesktopBackend::new(
        &config.sound_player,
    )))
}

#[cfg(not(feature = "desktop"))]
fn desktop_backend(_: &NotifyConfig) -> Option<Box<dyn NotifyBackend>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotifyKind;

    #[test]
    fn command_backend_passes_fields_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        let cmd = format!(
            "printf '%s|%s|%s|%s|%s' \"$SWARM_TITLE\" \"$SWARM_BODY\" \"$SWARM_KIND\" \"$SWARM_SOUND\" \"$SWARM_URGENCY\" > '{}'",
            out.display()
        );
        let n = Notification {
            kind: NotifyKind::Done,
            title: "proj: done".into(),
            body: "it's \"done\"; $(not run)".into(),
            sound: Some("Glass".into()),
            linux_sound: Some("complete".into()),
            urgency: Urgency::Normal,
            source: "proj".into(),
            session: None,
        };
        CommandBackend::new(cmd).send(&n).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "proj: done|it's \"done\"; $(not run)|done|Glass|normal"
        );
        let e = CommandBackend::new("exit 3")
            .send(&n)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exit 3") && e.contains("exit status: 3"), "{e}");
    }

    #[test]
    fn off_reasons_follow_the_configuration() {
        let with = |backend: &str, command: Option<&str>| NotifyConfig {
            backend: backend.into(),
            command: command.map(str::to_owned),
            ..NotifyConfig::default()
        };
        assert_eq!(
            off_reason(&with("off", Some("x"))),
            Some(OffReason::Configured)
        );
        assert_eq!(
            off_reason(&with("command", None)),
            Some(OffReason::NoCommand)
        );
        assert_eq!(
            off_reason(&with("command", Some(""))),
            Some(OffReason::NoCommand)
        );
        assert_eq!(off_reason(&with("command", Some("true"))), None);
        assert_eq!(off_reason(&with("auto", Some("true"))), None);
        #[cfg(not(feature = "desktop"))]
        assert_eq!(
            off_reason(&with("desktop", None)),
            Some(OffReason::NoDesktopBackend)
        );
        #[cfg(feature = "desktop")]
        assert_eq!(off_reason(&with("desktop", None)), None);
    }
}
