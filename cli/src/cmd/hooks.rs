//! `swarm-obs hooks install|uninstall`: the `swarm-hook` entries in Claude Code's
//! settings files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::locate;
use crate::settings::claude::{ClaudeCli, EXEC_FORM_SINCE, Version};
use crate::settings::hooks::{self as entries, EVENTS, Form, HOOK_PROGRAM};
use crate::settings::{Json, Scope, SettingsFile};

/// Arguments of `swarm-obs hooks`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  swarm-obs hooks install\n  swarm-obs hooks install --scope project --dry-run\n  swarm-obs hooks uninstall --scope local"
)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Add swarm-hook to every hook event in a Claude Code settings file.
    #[command(
        after_help = "Examples:\n  swarm-obs hooks install                       # ~/.claude/settings.json\n  swarm-obs hooks install --dry-run             # show the change, write nothing\n  swarm-obs hooks install --scope project       # .claude/settings.json, shared with the team\n  swarm-obs hooks install --scope local --project-dir ~/src/app\n  swarm-obs hooks install --claude-version 2.1.337   # for a Claude Code not on PATH\n\nThe change is printed as a unified diff; the previous file is kept beside it as\nsettings.json.<time>.bak. Running it again changes nothing. Existing swarm-hook\nentries are updated in place; every other key and hook is left as it was.\n\nClaude Code 2.1.139 and later spawn a hook in exec form (\"args\": []) directly;\nolder releases run every hook through /bin/sh, a shell per event. The form follows\n--claude-version, else what the claude on PATH says it is, else shell."
    )]
    Install(InstallArgs),
    /// Remove every swarm-hook entry from a Claude Code settings file.
    #[command(
        after_help = "Examples:\n  swarm-obs hooks uninstall\n  swarm-obs hooks uninstall --scope project --dry-run\n\nOnly swarm-hook entries are removed; groups and event lists left empty by that go too."
    )]
    Uninstall(Target),
}

/// Which settings file, and whether to write it.
#[derive(Debug, clap::Args)]
struct Target {
    /// Which settings file: user (~/.claude/settings.json, or $CLAUDE_CONFIG_DIR/settings.json),
    /// project (.claude/settings.json) or local (.claude/settings.local.json).
    #[arg(long, value_enum, default_value = "user")]
    scope: Scope,
    /// The project the project and local scopes belong to (default: the current directory).
    #[arg(long, value_name = "DIR")]
    project_dir: Option<PathBuf>,
    /// Print the change as a diff and write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
struct InstallArgs {
    #[command(flatten)]
    target: Target,
    /// The swarm-hook binary to run (default: the one beside swarm-obs, else on PATH).
    #[arg(long, value_name = "PATH")]
    hook: Option<PathBuf>,
    /// How Claude Code starts the hook: exec (spawned directly, no shell; Claude
    /// Code 2.1.139 and later) or shell (through /bin/sh; every release). Default:
    /// exec when the Claude Code version (--claude-version, else what the claude on
    /// PATH says it is) runs it, else shell.
    #[arg(long, value_enum, value_name = "FORM")]
    form: Option<Form>,
    /// The version of the Claude Code that reads these settings, when it is not
    /// the claude on PATH (or none is there): exec form from 2.1.139.
    #[arg(long, value_name = "X.Y.Z", conflicts_with = "form")]
    claude_version: Option<Version>,
}

/// Runs `hooks install` or `hooks uninstall`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.action {
        Action::Install(a) => install(a),
        Action::Uninstall(t) => uninstall(t),
    }
}

fn install(args: InstallArgs) -> Result<ExitCode> {
    let hook = match args.hook {
        Some(p) => std::path::absolute(&p)
            .with_context(|| format!("cannot make {} absolute", p.display()))?,
        None => locate::find_program(HOOK_PROGRAM)?,
    };
    if !locate::is_executable(&hook) {
        bail!(
            "{} is not an executable file: build swarm-hook (`cargo build --release`) or pass its path with --hook",
            hook.display()
        );
    }
    if locate::in_build_dir(&hook) {
        eprintln!("swarm-obs: warning: {}.", locate::build_dir_advice(&hook));
    }
    let Some(hook_text) = hook.to_str() else {
        bail!(
            "the path {} is not UTF-8, which a settings file cannot hold: install swarm-hook elsewhere and pass it with --hook",
            hook.display()
        );
    };
    let (form, why) = choose_form(args.form, args.claude_version);
    let command = match form {
        Form::Exec => hook_text.to_owned(),
        Form::Shell => crate::shell::shell_word(hook_text),
    };
    let file = load(&args.target)?;
    let mut settings = file.value().clone();
    let shell_kept = entries::install(&mut settings, hook_text, form)
        .with_context(|| format!("cannot add swarm-hook to {}", file.path().display()))?;
    let scope = args.target.scope.name();
    let form_line = format!("{} form: {why}.", capitalised(form.name()));
    if file.exists() && settings == *file.value() {
        println!(
            "{} already runs {command} on all {} hook events ({scope} scope); nothing to change.",
            file.path().display(),
            EVENTS.len()
        );
        println!("{form_line}");
        say_shell_kept(shell_kept);
        return Ok(ExitCode::SUCCESS);
    }
    if !apply(&file, &args.target, &settings)? {
        println!("{form_line}");
        say_shell_kept(shell_kept);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "swarm-hook ({command}) now runs on {} hook events in {} ({scope} scope). Claude Code sessions started from now on record every event; `swarm-obs doctor` checks the whole setup.",
        EVENTS.len(),
        file.path().display()
    );
    println!("{form_line}");
    say_shell_kept(shell_kept);
    Ok(ExitCode::SUCCESS)
}

/// The form to write the entries in, and why, for the user: `--form`, else what
/// the Claude Code version (`--claude-version`, else the claude on PATH) runs.
fn choose_form(form: Option<Form>, version: Option<Version>) -> (Form, String) {
    if let Some(form) = form {
        return (form, format!("--form {}", form.name()));
    }
    let (version, whose) = match version {
        Some(v) => (Ok(v), "--claude-version".to_owned()),
        None => match ClaudeCli::on_path() {
            Some(cli) => (cli.version, format!("{} on PATH", cli.path.display())),
            None => {
                return (
                    Form::Shell,
                    format!(
                        "no claude on PATH tells which Claude Code reads these settings, and exec form (no shell per event) needs {EXEC_FORM_SINCE} or later; pass --claude-version X.Y.Z or --form exec to use it"
                    ),
                );
            }
        },
    };
    match version {
        Ok(v) if v.runs_exec_form() => (
            Form::Exec,
            format!("Claude Code {v} ({whose}) spawns swarm-hook directly, without a shell"),
        ),
        Ok(v) => (
            Form::Shell,
            format!(
                "Claude Code {v} ({whose}) runs hooks through /bin/sh; exec form needs {EXEC_FORM_SINCE} or later"
            ),
        ),
        Err(e) => (
            Form::Shell,
            format!("{e}; exec form needs Claude Code {EXEC_FORM_SINCE} or later"),
        ),
    }
}

fn capitalised(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Says which entries kept the shell form exec form was asked for.
fn say_shell_kept(n: usize) {
    if n > 0 {
        println!(
            "{n} swarm-hook entries stay in shell form: their commands hold more than the program (an environment assignment, arguments), which only a shell runs."
        );
    }
}

fn uninstall(target: Target) -> Result<ExitCode> {
    let file = load(&target)?;
    let mut settings = file.value().clone();
    let removed = entries::uninstall(&mut settings);
    if removed == 0 {
        let what = if file.exists() {
            "has no swarm-hook entries"
        } else {
            "does not exist"
        };
        println!("{} {what}; nothing to change.", file.path().display());
        return Ok(ExitCode::SUCCESS);
    }
    if !apply(&file, &target, &settings)? {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Removed {removed} swarm-hook entries from {} ({} scope).",
        file.path().display(),
        target.scope.name()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads the target's settings file.
fn load(target: &Target) -> Result<SettingsFile> {
    let project_dir = match &target.project_dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot tell the current directory")?,
    };
    SettingsFile::load(&target.scope.settings_path(&project_dir)?)
}

/// Prints the change to `settings` as a diff and, unless this is a dry run,
/// writes it. Returns whether the file was written.
fn apply(file: &SettingsFile, target: &Target, settings: &Json) -> Result<bool> {
    let text = file.render(settings);
    print!(
        "{}",
        unified_diff(file.path(), file.exists(), file.text(), &text)
    );
    if target.dry_run {
        println!("Dry run: {} was not changed.", file.path().display());
        return Ok(false);
    }
    save(file, target.scope, &text)?;
    Ok(true)
}

/// Writes the new text, saying where the old file went.
fn save(file: &SettingsFile, scope: Scope, text: &str) -> Result<()> {
    let existed = file.exists();
    if let Some(backup) = file.save(text)? {
        println!("Previous version kept in {}", backup.display());
    }
    // A new project file is read by whoever works in the checkout (and goes into
    // version control); the atomic write made it private.
    #[cfg(unix)]
    if !existed && scope != Scope::User {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot make {} readable", file.path().display()))?;
    }
    Ok(())
}

/// A unified diff with three lines of context.
fn unified_diff(path: &Path, existed: bool, old: &str, new: &str) -> String {
    let name = path.display().to_string();
    let old_name = if existed { name.as_str() } else { "/dev/null" };
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, &name)
        .missing_newline_hint(true)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_of_a_new_file_comes_from_dev_null() {
        let d = unified_diff(Path::new("/h/.claude/settings.json"), false, "", "{\n}\n");
        assert!(
            d.starts_with("--- /dev/null\n+++ /h/.claude/settings.json\n@@ -0,0 +1,2 @@\n+{\n+}\n"),
            "{d}"
        );
    }
}
