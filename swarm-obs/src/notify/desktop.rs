//! The desktop backend: freedesktop notifications over D-Bus (Linux, the BSDs) or
//! Notification Center (macOS). Built with the `desktop` feature.

use super::{Notification, NotifyBackend, NotifyError};

/// Shows notifications on this machine's desktop.
#[derive(Debug, Clone)]
pub struct DesktopBackend {
    #[cfg_attr(target_os = "macos", allow(dead_code))]
    sound_player: String,
}

impl DesktopBackend {
    /// A desktop backend; `sound_player` plays sounds where the notification server
    /// ignores sound hints (`auto`, a program name, or `none`).
    pub fn new(sound_player: &str) -> Self {
        Self {
            sound_player: sound_player.to_owned(),
        }
    }

    /// Asks the notification server who it is (`dunst 1.9.0 (dunst)`), proving one
    /// answers. On Linux this is a D-Bus call, which can block for ~25 s when the
    /// bus has no notification server: call it off the main path with a bound.
    pub fn server_information(&self) -> Result<String, NotifyError> {
        #[cfg(not(target_os = "macos"))]
        {
            let info = notify_rust::get_server_information()
                .map_err(|e| NotifyError::Desktop(e.to_string()))?;
            Ok(format!("{} {} ({})", info.name, info.version, info.vendor))
        }
        #[cfg(target_os = "macos")]
        {
            Ok("Notification Center".to_owned())
        }
    }
}

#[cfg(not(target_os = "macos"))]
impl NotifyBackend for DesktopBackend {
    fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        use notify_rust::{Hint, Timeout, Urgency as U};
        let mut note = notify_rust::Notification::new();
        note.appname("swarm-obs")
            .summary(&n.title)
            .body(&n.body)
            .urgency(match n.urgency {
                super::Urgency::Low => U::Low,
                super::Urgency::Normal => U::Normal,
                super::Urgency::Critical => U::Critical,
            })
            .hint(Hint::Category(format!("swarm-obs.{}", n.kind.as_str())))
            .timeout(Timeout::Default);
        if let Some(sound) = &n.linux_sound {
            note.hint(Hint::SoundName(sound.clone()));
        }
        note.show()
            .map_err(|e| NotifyError::Desktop(e.to_string()))?;
        if let Some(sound) = &n.linux_sound {
            let server_plays = notify_rust::get_capabilities()
                .map(|caps| caps.iter().any(|c| c == "sound"))
                .unwrap_or(false);
            if !server_plays {
                play_sound(&self.sound_player, sound);
            }
        }
        Ok(())
    }
    fn name(&self) -> &'static str {
        "desktop"
    }
}

/// Plays a freedesktop sound with whatever player is installed; silence when none is.
#[cfg(not(target_os = "macos"))]
fn play_sound(player: &str, sound: &str) {
    use std::process::{Command, Stdio};
    let quiet = |mut c: Command| {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.status().is_ok_and(|s| s.success())
    };
    let canberra = || {
        let mut c = Command::new("canberra-gtk-play");
        c.args(["-i", sound]);
        quiet(c)
    };
    let paplay = || {
        let file = format!("/usr/share/sounds/freedesktop/stereo/{sound}.oga");
        std::path::Path::new(&file).exists() && {
            let mut c = Command::new("paplay");
            c.arg(&file);
            quiet(c)
        }
    };
    match player {
        "none" => {}
        "auto" => {
            let _ = canberra() || paplay();
        }
        "canberra-gtk-play" => {
            canberra();
        }
        "paplay" => {
            paplay();
        }
        other => {
            let mut c = Command::new(other);
            c.arg(sound);
            quiet(c);
        }
    }
}

#[cfg(target_os = "macos")]
impl NotifyBackend for DesktopBackend {
    fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        use std::sync::Once;
        static APP: Once = Once::new();
        // Without an explicit application the first send can hang on recent macOS.
        APP.call_once(|| {
            let _ = mac_notification_sys::set_application("com.apple.Terminal");
        });
        let mut options = mac_notification_sys::Notification::new();
        options.asynchronous(true);
        if let Some(sound) = &n.sound {
            options.sound(sound);
        }
        mac_notification_sys::send_notification(&n.title, None, &n.body, Some(&options))
            .map(|_| ())
            .map_err(|e| NotifyError::Desktop(e.to_string()))
    }
    fn name(&self) -> &'static str {
        "desktop"
    }
}
