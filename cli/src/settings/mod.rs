//! Claude Code's `settings.json` files: where each scope keeps one, reading them
//! without losing anything, and replacing them safely (backup, then atomic write).

pub mod claude;
pub mod hooks;
pub mod json;
mod splice;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use json::Json;

/// Environment variable that moves Claude Code's user configuration directory
/// away from `~/.claude`.
pub const CLAUDE_CONFIG_DIR_ENV: &str = "CLAUDE_CONFIG_DIR";

/// Which settings file: Claude Code merges all three, most specific last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// `~/.claude/settings.json` (or `$CLAUDE_CONFIG_DIR/settings.json`): every project.
    User,
    /// `.claude/settings.json` in the project: shared through version control.
    Project,
    /// `.claude/settings.local.json` in the project: this machine only.
    Local,
}

impl Scope {
    /// Every scope, broadest first.
    pub const ALL: [Scope; 3] = [Scope::User, Scope::Project, Scope::Local];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Project => "project",
            Scope::Local => "local",
        }
    }

    /// The settings file of this scope; `project_dir` is the project's root.
    pub fn settings_path(self, project_dir: &Path) -> Result<PathBuf> {
        Ok(match self {
            Scope::User => user_config_dir()?.join("settings.json"),
            Scope::Project => project_dir.join(".claude").join("settings.json"),
            Scope::Local => project_dir.join(".claude").join("settings.local.json"),
        })
    }
}

/// `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
fn user_config_dir() -> Result<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = env(CLAUDE_CONFIG_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    match env("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".claude")),
        None => bail!(
            "cannot find the user settings: neither {CLAUDE_CONFIG_DIR_ENV} nor HOME is set; set one, or use --scope project"
        ),
    }
}

/// One settings file as read from disk.
#[derive(Debug)]
pub struct SettingsFile {
    path: PathBuf,
    text: Option<String>,
    value: Json,
}

impl SettingsFile {
    /// Reads and parses `path`. A missing or blank file is an empty object; bad
    /// JSON is an error naming the file, line and column.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read(path) {
            Ok(bytes) => Some(String::from_utf8(bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{}: not UTF-8 text (invalid byte at offset {}); Claude Code cannot read it either: fix or remove it",
                    path.display(),
                    e.utf8_error().valid_up_to()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let value = match text.as_deref().map(|t| t.trim_start_matches('\u{feff}')) {
            Some(t) if !t.trim().is_empty() => parse(t, path)?,
            _ => Json::object(),
        };
        Ok(Self {
            path: path.to_owned(),
            text,
            value,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file exists.
    pub fn exists(&self) -> bool {
        self.text.is_some()
    }

    /// The text as read; empty when the file is absent.
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }

    /// The parsed settings (always an object).
    pub fn value(&self) -> &Json {
        &self.value
    }

    /// `value` as the file's new text. When only one top-level member changed, the
    /// rest of the text is kept byte for byte and the member is written in the
    /// file's own indentation; otherwise the whole file is written with two-space
    /// indentation (as Claude Code writes it), ending in a newline unless the old
    /// file ended without one.
    pub fn render(&self, value: &Json) -> String {
        if let Some(text) = self.splice(value) {
            return text;
        }
        let mut out = value.to_pretty();
        if self
            .text
            .as_deref()
            .is_none_or(|t| t.trim().is_empty() || t.ends_with('\n'))
        {
            out.push('\n');
        }
        out
    }

    /// The old text with the one member that differs in `value` spliced in, when
    /// the result reads back as `value`.
    fn splice(&self, value: &Json) -> Option<String> {
        let old = self.text.as_deref().filter(|t| !t.trim().is_empty())?;
        let (before, after) = (self.value.as_object()?, value.as_object()?);
        let keys: Vec<&str> = before
            .iter()
            .chain(after)
            .map(|(k, _)| k.as_str())
            .filter(|k| self.value.get(k) != value.get(k))
            .collect();
        let key = *keys.first()?;
        if keys.iter().any(|k| *k != key) {
            return None;
        }
        let text = splice::set_member(old, key, value.get(key))?;
        let reread: Json = serde_json::from_str(text.trim_start_matches('\u{feff}')).ok()?;
        (reread == *value).then_some(text)
    }

    /// Replaces the file with `text`: first a copy of the old file beside it (its
    /// path is returned), then an atomic write that keeps the old permissions. A
    /// symbolic link is followed, so a settings file kept elsewhere stays there.
    ///
    /// Fails, writing nothing, when the file changed since it was read (Claude Code
    /// writes its settings too): nothing anyone wrote is lost.
    pub fn save(&self, text: &str) -> Result<Option<PathBuf>> {
        let now = match std::fs::read(&self.path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        if now.as_deref() != self.text.as_deref().map(str::as_bytes) {
            bail!(
                "{} changed while swarm-obs was editing it; nothing was written: run the command again",
                self.path.display()
            );
        }
        let backup = if self.exists() {
            let backup = backup_path(&self.path);
            std::fs::copy(&self.path, &backup).with_context(|| {
                format!(
                    "cannot back up {} to {}; nothing was changed",
                    self.path.display(),
                    backup.display()
                )
            })?;
            Some(backup)
        } else {
            None
        };
        let target = match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&self.path)
                .with_context(|| format!("cannot follow the link {}", self.path.display()))?,
            _ => self.path.clone(),
        };
        let permissions = std::fs::metadata(&target).ok().map(|m| m.permissions());
        swarm_obs::write_atomic(&target, text.as_bytes())
            .with_context(|| format!("cannot write {}", target.display()))?;
        if let Some(p) = permissions {
            std::fs::set_permissions(&target, p).with_context(|| {
                format!("cannot restore the permissions of {}", target.display())
            })?;
        }
        Ok(backup)
    }
}

/// Parses settings text into an object, or says where it is broken.
fn parse(text: &str, path: &Path) -> Result<Json> {
    let value: Json = serde_json::from_str(text).map_err(|e| {
        // serde_json appends " at line L column C"; say it once, editor-style.
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        anyhow::anyhow!(
            "{}:{}:{}: invalid JSON: {message}; fix it by hand (the file was not changed)",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if value.as_object().is_none() {
        bail!(
            "{}: the top level is not a JSON object, as Claude Code expects; fix it by hand (the file was not changed)",
            path.display()
        );
    }
    Ok(value)
}

/// `settings.json.YYYYMMDD-HHMMSS.bak` beside `path`, numbered when taken.
fn backup_path(path: &Path) -> PathBuf {
    let digits: String = swarm_obs::Timestamp::now()
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let (day, time) = digits.split_at(digits.len().min(8));
    let name = path
        .file_name()
        .map_or_else(|| "settings.json".into(), |n| n.to_string_lossy());
    let base = format!("{name}.{day}-{time}");
    let mut candidate = path.with_file_name(format!("{base}.bak"));
    // Bounded: two saves in one second are rare, a hundred never happen.
    for n in 2..100 {
        if !candidate.exists() {
            break;
        }
        candidate = path.with_file_name(format!("{base}-{n}.bak"));
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{\n  \"a\": 1,\n  \"b\": ,\n}\n").unwrap();
        let e = format!("{:#}", SettingsFile::load(&path).unwrap_err());
        assert!(e.contains("settings.json:3:8: invalid JSON"), "{e}");
        assert!(!e.contains(" at line "), "{e}");
        std::fs::write(&path, "{\"hooks\": {\"Stop\": [").unwrap();
        let e = format!("{:#}", SettingsFile::load(&path).unwrap_err());
        assert!(e.contains("settings.json:1:20: invalid JSON: EOF"), "{e}");
        std::fs::write(&path, "[".repeat(10_000)).unwrap();
        let e = format!("{:#}", SettingsFile::load(&path).unwrap_err());
        assert!(e.contains("recursion limit exceeded"), "{e}");
    }

    #[test]
    fn missing_blank_and_non_object_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let absent = SettingsFile::load(&path).unwrap();
        assert!(!absent.exists());
        assert_eq!(absent.render(absent.value()), "{}\n");
        std::fs::write(&path, "  \n").unwrap();
        assert_eq!(SettingsFile::load(&path).unwrap().value(), &Json::object());
        std::fs::write(&path, "[1]").unwrap();
        let e = SettingsFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("not a JSON object"), "{e}");
        std::fs::write(&path, b"{\"a\": \"\xff\"}").unwrap();
        let e = SettingsFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn save_backs_up_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let first = SettingsFile::load(&path).unwrap();
        let first = first.save("{\"a\": 1}").unwrap().unwrap();
        let second = SettingsFile::load(&path).unwrap();
        let second = second.save("{\"a\": 2}").unwrap().unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "{}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\": 2}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn save_refuses_a_file_changed_since_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{}").unwrap();
        let file = SettingsFile::load(&path).unwrap();
        std::fs::write(&path, "{\"theirs\": 1}").unwrap();
        let e = file.save("{\"ours\": 1}").unwrap_err().to_string();
        assert!(e.contains("changed while swarm-obs was editing it"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"theirs\": 1}");
        let absent = SettingsFile::load(&dir.path().join("new.json")).unwrap();
        std::fs::write(dir.path().join("new.json"), "{}").unwrap();
        assert!(absent.save("{}").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn save_writes_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-settings.json");
        let link = dir.path().join("settings.json");
        std::fs::write(&real, "{}").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        SettingsFile::load(&link)
            .unwrap()
            .save("{\"x\": 1}")
            .unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "{\"x\": 1}");
    }
}
