//! `swarm-obs doctor`: checks every part a working setup needs and says how to
//! fix what is broken.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use swarm_obs::notify::{DesktopBackend, OffReason, backend_for, off_reason};
use swarm_obs::otlp::{OtlpProtocol, OtlpTarget, PostOutcome, SignalSender};
use swarm_obs::{
    COLLECTOR_ENV, CollectorAddress, CollectorInfo, Config, ConfigError, LocalProcesses,
    OtlpConfig, ProcessStatus, ProcessTable, StateRoot,
};

use crate::locate;
use crate::settings::claude::{ClaudeCli, EXEC_FORM_SINCE};
use crate::settings::hooks::{EVENTS, Form, HOOK_PROGRAM, Installed, installed};
use crate::settings::{Json, Scope, SettingsFile};

/// How long the collector and the notification server get to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `swarm-obs doctor`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  swarm-obs doctor\n  swarm-obs doctor --json | jq '.checks[] | select(.status != \"ok\")'\n  swarm-obs doctor --home /tmp/swarm --project-dir ~/src/app\n\nExits 1 when any check fails; warnings alone exit 0."
)]
pub struct Args {
    /// Print the checks as one JSON object.
    #[arg(long)]
    json: bool,
    /// State root to check (default: $SWARM_OBS_HOME, else the platform state dir).
    #[arg(long)]
    home: Option<PathBuf>,
    /// The project whose project and local settings to check (default: the current directory).
    #[arg(long, value_name = "DIR")]
    project_dir: Option<PathBuf>,
}

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's result.
#[derive(Debug, Serialize)]
struct Check {
    check: String,
    status: Status,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn ok(check: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }
    fn warn(check: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Self::ok(check, message)
        }
    }
    fn fail(check: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            ..Self::warn(check, message, fix)
        }
    }
}

/// The `--json` output.
#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    checks: &'a [Check],
}

/// Runs every check, prints them, and exits 1 when any failed.
pub fn run(args: Args) -> Result<ExitCode> {
    let root = args.home.map_or_else(StateRoot::resolve, StateRoot::new);
    let project_dir = match args.project_dir {
        Some(d) => d,
        None => std::env::current_dir().context("cannot tell the current directory")?,
    };
    let mut checks = vec![hook_binary()];
    checks.extend(settings(&project_dir));
    checks.push(state_dir(&root));
    let (config_check, config) = config(&root);
    checks.push(config_check);
    checks.push(collector(&root, &config));
    checks.push(notifications(&config));
    checks.extend(otlp_export(&config));

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    if args.json {
        let report = Report {
            ok: failed == 0,
            checks: &checks,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&checks, failed, warned);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_human(checks: &[Check], failed: usize, warned: usize) {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    for c in checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("{status:<5} {:<width$}  {}", c.check, c.message);
        if let Some(fix) = &c.fix {
            println!("{:<5} {:<width$}  fix: {fix}", "", "");
        }
    }
    println!();
    match (failed, warned) {
        (0, 0) => println!("All {} checks passed.", checks.len()),
        (0, w) => println!("No failures, {w} warning(s)."),
        (f, w) => println!(
            "{f} check(s) failed, {w} warning(s): apply the fixes above, then run `swarm-obs doctor` again."
        ),
    }
}

/// `swarm-hook` can be found and run.
fn hook_binary() -> Check {
    const NAME: &str = "swarm-hook";
    match locate::find_program(HOOK_PROGRAM) {
        Ok(path) if locate::is_executable(&path) && locate::in_build_dir(&path) => Check::warn(
            NAME,
            format!("{} (a build directory)", path.display()),
            locate::build_dir_advice(&path),
        ),
        Ok(path) if locate::is_executable(&path) => Check::ok(NAME, path.display().to_string()),
        Ok(path) => Check::fail(
            NAME,
            format!("{} is not executable", path.display()),
            format!("chmod +x {}", path.display()),
        ),
        Err(_) => Check::fail(
            NAME,
            "not found beside swarm-obs or on PATH",
            "build it with `cargo build --release` (it lands beside swarm-obs), or `cargo install --path hooks`",
        ),
    }
}

/// The `swarm-hook` entries of each settings scope, and their form against the
/// Claude Code on PATH.
fn settings(project_dir: &Path) -> Vec<Check> {
    let cli = ClaudeCli::on_path();
    let mut checks = Vec::new();
    let mut commands_seen: Vec<(Scope, BTreeSet<String>)> = Vec::new();
    let mut seen_files: Vec<(Scope, PathBuf)> = Vec::new();
    for scope in Scope::ALL {
        let name = format!("hooks ({})", scope.name());
        let install = format!("swarm-obs hooks install --scope {}", scope.name());
        let file = match scope
            .settings_path(project_dir)
            .and_then(|p| SettingsFile::load(&p))
        {
            Ok(f) => f,
            Err(e) => {
                checks.push(Check::fail(
                    name,
                    format!("{e:#}"),
                    "repair the file by hand: Claude Code cannot read it either",
                ));
                continue;
            }
        };
        let path = file.path().display().to_string();
        if let Some((other, _)) = seen_files.iter().find(|(_, p)| same_file(p, file.path())) {
            checks.push(Check::ok(
                name,
                format!("{path} is the {} scope's file", other.name()),
            ));
            continue;
        }
        seen_files.push((scope, file.path().to_owned()));
        if file.value().get("disableAllHooks") == Some(&Json::Bool(true)) {
            checks.push(Check::warn(
                name,
                format!(
                    "{path} sets disableAllHooks: Claude Code runs no hooks, swarm-hook included"
                ),
                format!("remove \"disableAllHooks\" from {path}"),
            ));
            continue;
        }
        let found = installed(file.value());
        if found.is_empty() {
            let what = if file.exists() {
                "no swarm-hook entries"
            } else {
                "no file"
            };
            checks.push(Check::ok(name, format!("{path}: {what}")));
            continue;
        }
        let broken: BTreeSet<&str> = found
            .iter()
            .map(|i| i.program.as_str())
            .filter(|p| !program_runs(p))
            .collect();
        let missing: Vec<&str> = EVENTS
            .iter()
            .map(|e| e.name)
            .filter(|e| !found.iter().any(|i| i.event == *e))
            .collect();
        let commands: BTreeSet<String> = found.iter().map(|i| i.command.clone()).collect();
        let twice = commands_seen
            .iter()
            .find(|(_, seen)| !seen.is_empty() && *seen != commands)
            .map(|(s, _)| *s);
        commands_seen.push((scope, commands));
        let fit = form_fit(&found, cli.as_ref());
        checks.push(if !broken.is_empty() {
            let list: Vec<&str> = broken.into_iter().collect();
            Check::fail(
                name,
                format!("{path} runs {}, which is not an executable file", list.join(", ")),
                format!("{install} (points the entries at the swarm-hook beside swarm-obs)"),
            )
        } else if let FormFit::Unsupported(why) = &fit {
            Check::fail(
                name,
                format!("{path}: {why}"),
                format!("{install} (writes the form that Claude Code runs)"),
            )
        } else if !missing.is_empty() {
            Check::warn(
                name,
                format!(
                    "{path}: swarm-hook on {} of {} events; missing {}",
                    EVENTS.len() - missing.len(),
                    EVENTS.len(),
                    missing.join(", ")
                ),
                install,
            )
        } else if let Some(p) = found
            .iter()
            .map(|i| Path::new(i.program.as_str()))
            .find(|p| locate::in_build_dir(p))
        {
            Check::warn(
                name,
                format!("{path} runs {} ({})", p.display(), fit.text()),
                locate::build_dir_advice(p),
            )
        } else if let Some(other) = twice {
            Check::warn(
                name,
                format!(
                    "{path} runs a different swarm-hook command than the {} scope: every event is recorded twice",
                    other.name()
                ),
                format!("swarm-obs hooks uninstall --scope {}", scope.name()),
            )
        } else if let FormFit::Slower(why) = &fit {
            Check::warn(
                name,
                format!("{path}: swarm-hook on all {} events; {why}", EVENTS.len()),
                format!("{install} (switches to exec form)"),
            )
        } else {
            Check::ok(
                name,
                format!("{path}: swarm-hook on all {} events, {}", EVENTS.len(), fit.text()),
            )
        });
    }
    if commands_seen.is_empty()
        && let Some(user) = checks.iter_mut().find(|c| c.status == Status::Ok)
    {
        *user = Check::warn(
            std::mem::take(&mut user.check),
            format!(
                "{}; swarm-hook is in no settings file, so Claude Code events are not recorded",
                user.message
            ),
            "swarm-obs hooks install",
        );
    }
    checks
}

/// How the form of the entries suits the Claude Code on PATH.
enum FormFit {
    /// It runs them as written; says which form, and what was checked.
    Fits(String),
    /// It runs them, through a shell it could do without.
    Slower(String),
    /// It predates their form.
    Unsupported(String),
}

impl FormFit {
    fn text(&self) -> &str {
        match self {
            FormFit::Fits(t) | FormFit::Slower(t) | FormFit::Unsupported(t) => t,
        }
    }
}

/// Judges the form of `found` (one scope's entries) against `cli`.
fn form_fit(found: &[Installed], cli: Option<&ClaudeCli>) -> FormFit {
    let exec = found.iter().filter(|i| i.form == Form::Exec).count();
    let form = match exec {
        0 => "shell form",
        n if n == found.len() => "exec form",
        _ => "exec and shell form mixed",
    };
    let Some(cli) = cli else {
        return FormFit::Fits(format!(
            "{form} (no claude on PATH to check it against; exec form needs Claude Code {EXEC_FORM_SINCE} or later)"
        ));
    };
    let claude = cli.path.display();
    let version = match &cli.version {
        Ok(v) => *v,
        Err(e) => return FormFit::Fits(format!("{form} ({e})")),
    };
    if exec > 0 && !version.runs_exec_form() {
        return FormFit::Unsupported(format!(
            "swarm-hook in {form}, which Claude Code {version} ({claude}) predates: exec form needs {EXEC_FORM_SINCE} or later"
        ));
    }
    // Shell entries that hold nothing but the program would run the same in exec form.
    let bare_shell = found.iter().filter(|i| i.form == Form::Shell).any(|i| {
        crate::shell::program_word(&i.command).is_some_and(|(r, _)| r == (0..i.command.len()))
    });
    if version.runs_exec_form() && bare_shell {
        return FormFit::Slower(format!(
            "in {form}: Claude Code {version} ({claude}) starts /bin/sh for each event, where exec form spawns swarm-hook directly"
        ));
    }
    FormFit::Fits(format!(
        "{form}, which Claude Code {version} runs ({claude})"
    ))
}

/// Whether two paths name one file: run from the home directory, Claude Code's
/// project settings are the user's.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Whether a hook command's program names an executable, as a path or on PATH.
fn program_runs(program: &str) -> bool {
    if program.contains('/') {
        locate::is_executable(Path::new(program))
    } else {
        locate::on_path(program).is_some_and(|p| locate::is_executable(&p))
    }
}

/// The state root exists, belongs to this user, is private and writable.
fn state_dir(root: &StateRoot) -> Check {
    const NAME: &str = "state dir";
    let dir = root.dir();
    let shown = dir.display();
    let elsewhere = "or set SWARM_OBS_HOME to a directory you own";
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::warn(
                NAME,
                format!("{shown} does not exist yet (the first event creates it)"),
                format!("mkdir -p -m 700 {shown}"),
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot inspect {shown}: {e}"),
                format!("check the permissions of its parent directories, {elsewhere}"),
            );
        }
    };
    if !meta.is_dir() {
        return Check::fail(
            NAME,
            format!("{shown} is not a directory"),
            format!("move it away, {elsewhere}"),
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Check::fail(
                NAME,
                format!(
                    "{shown} belongs to uid {}, not to you (uid {me})",
                    meta.uid()
                ),
                format!("chown {me} {shown}, {elsewhere}"),
            );
        }
    }
    let subdirs = [root.events_dir(), root.logs_dir(), root.heartbeats_dir()];
    if let Some(d) = subdirs.iter().find(|d| d.exists() && !d.is_dir()) {
        return Check::fail(
            NAME,
            format!("{} is not a directory", d.display()),
            format!("move it away (swarm-obs creates the directory), {elsewhere}"),
        );
    }
    for d in std::iter::once(dir.to_owned()).chain(subdirs) {
        if let Err(e) = probe_write(&d) {
            return Check::fail(
                NAME,
                format!("cannot write in {}: {e}", d.display()),
                format!("chmod u+rwx {}, {elsewhere}", d.display()),
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Check::fail(
                NAME,
                format!("{shown} is writable by other users (mode {mode:04o})"),
                format!("chmod 700 {shown}"),
            );
        }
        if mode & 0o077 != 0 {
            return Check::warn(
                NAME,
                format!(
                    "{shown} can be listed by other users (mode {mode:04o}); hook payloads may hold secrets"
                ),
                format!("chmod 700 {shown}"),
            );
        }
        Check::ok(NAME, format!("{shown} (mode {mode:04o}, writable)"))
    }
    #[cfg(not(unix))]
    Check::ok(NAME, format!("{shown} (writable)"))
}

/// Creates and removes a file in the directory `dir`; one that does not exist
/// yet is fine (it is created on first use).
fn probe_write(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let probe = dir.join(format!(".doctor-{}.probe", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// `config.toml` parses; the configuration the other checks use.
fn config(root: &StateRoot) -> (Check, Config) {
    const NAME: &str = "config";
    let path = root.config_file();
    match Config::load(&path) {
        Ok(c) if path.exists() => (Check::ok(NAME, format!("{} parses", path.display())), c),
        Ok(c) => (
            Check::ok(NAME, format!("no {}; defaults in use", path.display())),
            c,
        ),
        Err(e) => {
            let fix = match e {
                ConfigError::Read { .. } => format!(
                    "make {} a readable file, or set SWARM_OBS_HOME to another directory",
                    path.display()
                ),
                _ => format!(
                    "correct the line named, or move {} away to use the defaults",
                    path.display()
                ),
            };
            (Check::fail(NAME, e.to_string(), fix), Config::default())
        }
    }
}

/// The collector hooks and workers would post to answers `/healthz`.
fn collector(root: &StateRoot, config: &Config) -> Check {
    const NAME: &str = "collector";
    let serve = "start it with `swarm-obs serve` (it writes collector.json, where hooks and workers find it)";
    if let Ok(v) = std::env::var(COLLECTOR_ENV) {
        if v.is_empty() || v.eq_ignore_ascii_case("off") {
            return Check::warn(
                NAME,
                format!("{COLLECTOR_ENV}={v:?}: events stay on disk, nothing is posted"),
                format!("unset {COLLECTOR_ENV}"),
            );
        }
        if let Err(e) = CollectorAddress::parse(&v) {
            return Check::fail(
                NAME,
                format!("{COLLECTOR_ENV}: {e}"),
                format!("set {COLLECTOR_ENV} to host:port, or unset it"),
            );
        }
    }
    let info_file = root.collector_file();
    let info = CollectorInfo::read(&info_file);
    // The collector is optional: without one, hooks and workers write the event log
    // and a collector started later catches up from it.
    let Some(address) = CollectorAddress::discover(root, config) else {
        return Check::warn(
            NAME,
            format!(
                "none running: no {} and no [collector] address in config.toml; events stay in the event log, and a collector started later catches up from it",
                info_file.display()
            ),
            serve,
        );
    };
    let base = &address.base_url;
    let origin = if std::env::var_os(COLLECTOR_ENV).is_some() {
        format!("from {COLLECTOR_ENV}")
    } else if let Some(i) = &info {
        format!("pid {} per collector.json", i.pid)
    } else {
        "from config.toml".to_owned()
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(PROBE_TIMEOUT))
        .build()
        .into();
    let mut request = agent.get(address.url("/healthz"));
    if let Some(t) = &address.token {
        request = request.header("authorization", &format!("Bearer {t}"));
    }
    match request.call() {
        Ok(resp) if resp.status() == 200 => {
            let shows = match info.as_ref().and_then(|i| i.notifications.as_deref()) {
                Some(backend) if address.shows_notifications => {
                    format!("; it shows the hooks' notifications ({backend})")
                }
                _ => String::new(),
            };
            Check::ok(NAME, format!("{base} answers /healthz ({origin}){shows}"))
        }
        Ok(resp) if resp.status() == 401 => Check::fail(
            NAME,
            format!("{base} ({origin}) refused the token sent (HTTP 401)"),
            "send the collector's token: it is in collector.json; SWARM_OBS_TOKEN or [collector] token in config.toml override it",
        ),
        Ok(resp) => Check::fail(
            NAME,
            format!(
                "{base} ({origin}) answered /healthz with HTTP {}",
                resp.status().as_u16()
            ),
            format!("something else may listen there; {serve}"),
        ),
        Err(e) => {
            let stale = info
                .filter(|i| LocalProcesses.status(i.pid) == ProcessStatus::Gone)
                .map(|i| {
                    format!(
                        "; {} names pid {}, which is not running",
                        info_file.display(),
                        i.pid
                    )
                })
                .unwrap_or_default();
            Check::fail(
                NAME,
                format!("{base} ({origin}) does not answer: {e}{stale}"),
                serve,
            )
        }
    }
}

/// OTLP export, when an endpoint is configured: the settings resolve, the TLS
/// files load, and each OTLP/HTTP receiver takes an empty export request (valid
/// OTLP that stores nothing), so a wrong URL, token or certificate shows here
/// rather than as events piling up. gRPC receivers are not called.
fn otlp_export(config: &Config) -> Option<Check> {
    const NAME: &str = "otlp export";
    let fix_settings = "fix the OTEL_EXPORTER_OTLP_* variables or [otlp] in config.toml";
    let mut target = match OtlpTarget::from_env(&OtlpConfig::default(), &config.otlp) {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => return Some(Check::fail(NAME, e.to_string(), fix_settings)),
    };
    target.timeout = target.timeout.min(PROBE_TIMEOUT);
    let mut seen = Vec::new();
    for (signal, s) in [("logs", &target.logs), ("metrics", &target.metrics)] {
        let Some(s) = s else { continue };
        let url = &s.url;
        if target.protocol == OtlpProtocol::Grpc {
            if let Err(e) = s.tls.load() {
                return Some(Check::fail(
                    NAME,
                    format!("{signal} to {url}: {e}"),
                    fix_settings,
                ));
            }
            seen.push(format!("{signal} to {url} over gRPC (not called)"));
            continue;
        }
        let sender = match SignalSender::new(&target, s) {
            Ok(sender) => sender,
            Err(e) => {
                return Some(Check::fail(
                    NAME,
                    format!("{signal} to {url}: {e}"),
                    fix_settings,
                ));
            }
        };
        match sender.send(&[]) {
            PostOutcome::Accepted => seen.push(format!("{url} accepts {signal}")),
            PostOutcome::Refused(status) => {
                return Some(Check::fail(
                    NAME,
                    format!("{url} refused an empty {signal} export with HTTP {status}"),
                    "check the endpoint URL and the headers (OTEL_EXPORTER_OTLP_HEADERS or [otlp] headers)",
                ));
            }
            PostOutcome::Retry(why) => {
                return Some(Check::fail(
                    NAME,
                    format!("{signal} to {url}: {why}"),
                    "check that the receiver runs and that its certificate is trusted (OTEL_EXPORTER_OTLP_CERTIFICATE or [otlp] certificate names its CA)",
                ));
            }
        }
    }
    Some(Check::ok(NAME, seen.join("; ")))
}

/// The configured notification backend can deliver.
fn notifications(config: &Config) -> Check {
    const NAME: &str = "notifications";
    let notify = &config.notify;
    let backend = backend_for(notify);
    match backend.name() {
        "command" => {
            let command = notify.command.as_deref().unwrap_or_default();
            let program = crate::shell::program_word(command)
                .map(|(_, p)| p)
                .unwrap_or_default();
            match shell_finds(&program) {
                Ok(found) => Check::ok(NAME, format!("command backend: `{command}` ({found})")),
                Err(e) => Check::fail(
                    NAME,
                    format!("command backend: `{command}`: {e}"),
                    "install that program, or change [notify] command in config.toml",
                ),
            }
        }
        "desktop" => match probe_desktop(&notify.sound_player) {
            Ok(server) => Check::ok(NAME, format!("desktop backend: {server}")),
            Err(e) => Check::fail(
                NAME,
                format!("desktop backend: {e}"),
                "start a notification server (your desktop's, dunst, mako), or set [notify] backend = \"off\" in config.toml",
            ),
        },
        _ => match off_reason(notify) {
            // Asked for: nothing to fix.
            Some(OffReason::Configured) | None => {
                Check::ok(NAME, "off ([notify] backend = \"off\")")
            }
            Some(off) => Check::warn(NAME, format!("off: {}", off.describe()), off.fix()),
        },
    }
}

/// Asks the desktop notification server who it is, giving up after
/// [`PROBE_TIMEOUT`] (a bus without a server can stall a call for ~25 s).
fn probe_desktop(sound_player: &str) -> Result<String, String> {
    let backend = DesktopBackend::new(sound_player);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(backend.server_information().map_err(|e| e.to_string()));
    });
    rx.recv_timeout(PROBE_TIMEOUT).unwrap_or_else(|_| {
        Err(format!(
            "no notification server answered on the D-Bus session bus within {} s",
            PROBE_TIMEOUT.as_secs()
        ))
    })
}

/// Where `sh` finds `program` (a builtin, a function or a file on PATH).
fn shell_finds(program: &str) -> Result<String, String> {
    if program.is_empty() {
        return Err("the command is empty".to_owned());
    }
    let out = Command::new("sh")
        .args(["-c", "command -v -- \"$1\"", "sh", program])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !found.is_empty() {
        Ok(found)
    } else {
        Err(format!("`{program}` is not found on PATH"))
    }
}
