//! `swarm-obs hooks install|uninstall` on real settings files, compared with the
//! golden files in tests/fixtures/settings/ (`{{HOOK}}` stands for the path of
//! the swarm-hook binary). `UPDATE_GOLDEN=1` rewrites the golden files.

use std::path::{Path, PathBuf};
use std::process::Output;

use swarm_obs_suite::{UserHome, bin, lone_swarm_obs, output_retrying_busy, workspace_root};

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures/settings").join(name)
}

fn hook_path() -> String {
    bin("swarm-hook").to_str().expect("UTF-8 path").to_owned()
}

/// Asserts `actual` equals the golden file `name`, or rewrites it under `UPDATE_GOLDEN=1`.
fn assert_golden(actual: &str, name: &str) {
    let hook = hook_path();
    let path = fixture(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual.replace(&hook, "{{HOOK}}")).expect("write golden file");
        return;
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .replace("{{HOOK}}", &hook);
    assert_eq!(actual, golden, "differs from {}", path.display());
}

/// A directory holding a stand-in `claude` whose `--version` prints `version` as
/// the real CLI does (`2.1.337 (Claude Code)`), for PATH.
fn claude_of_version(home: &UserHome, version: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = home.path().join(format!("claude-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let claude = dir.join("claude");
    std::fs::write(
        &claude,
        format!("#!/bin/sh\necho '{version} (Claude Code)'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `PATH` with `dir` first.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_owned()).chain(std::env::split_paths(&rest)))
        .expect("a PATH")
}

/// Runs swarm-obs with a Claude Code that predates exec form first on PATH, so
/// entries come out in shell form whatever `claude` this machine has.
fn swarm_obs(home: &UserHome, args: &[&str]) -> Output {
    swarm_obs_with_claude(home, "2.1.100", args)
}

/// Runs swarm-obs with a `claude` of `version` first on PATH.
fn swarm_obs_with_claude(home: &UserHome, version: &str, args: &[&str]) -> Output {
    let out = output_retrying_busy(
        home.command(bin("swarm-obs"))
            .args(args)
            .env("PATH", path_with(&claude_of_version(home, version))),
    );
    eprintln!(
        "swarm-obs {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(home: &UserHome, args: &[&str]) -> String {
    let out = swarm_obs(home, args);
    assert!(out.status.success(), "swarm-obs {args:?} failed");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// [`ok`] with a `claude` of `version` first on PATH.
fn ok_with_claude(home: &UserHome, version: &str, args: &[&str]) -> String {
    let out = swarm_obs_with_claude(home, version, args);
    assert!(out.status.success(), "swarm-obs {args:?} failed");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The names of the files in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn backups(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|n| n.ends_with(".bak"))
        .collect()
}

fn place(home: &UserHome, fixture_name: &str) -> PathBuf {
    let path = home.user_settings();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(fixture(fixture_name), &path).expect("copy fixture");
    path
}

#[test]
fn absent_file_gets_every_event_and_no_backup() {
    let home = UserHome::new();
    let stdout = ok(&home, &["hooks", "install"]);
    let settings = home.user_settings();
    assert!(
        stdout.starts_with(&format!("--- /dev/null\n+++ {}\n", settings.display())),
        "{stdout}"
    );
    assert!(stdout.contains("now runs on 15 hook events"), "{stdout}");
    assert_golden(&read(&settings), "absent.installed.json");
    assert_eq!(listing(settings.parent().unwrap()), ["settings.json"]);
}

#[test]
fn an_empty_file_is_an_empty_object() {
    let home = UserHome::new();
    let settings = home.user_settings();
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "").unwrap();
    ok(&home, &["hooks", "install"]);
    assert_golden(&read(&settings), "absent.installed.json");
    assert_eq!(backups(settings.parent().unwrap()).len(), 1);
}

#[test]
fn user_hooks_and_other_keys_are_kept_and_uninstall_restores_them() {
    let home = UserHome::new();
    let settings = place(&home, "user_hooks.json");
    let original = read(&settings);

    let stdout = ok(&home, &["hooks", "install"]);
    assert!(stdout.contains("+            \"timeout\": 1\n"), "{stdout}");
    assert_golden(&read(&settings), "user_hooks.installed.json");

    let dir = settings.parent().unwrap();
    let backup = backups(dir);
    assert_eq!(backup.len(), 1, "{backup:?}");
    assert_eq!(
        read(&dir.join(&backup[0])),
        original,
        "backup is the old file"
    );
    assert!(stdout.contains(&format!("kept in {}", dir.join(&backup[0]).display())));

    let stdout = ok(&home, &["hooks", "uninstall"]);
    assert!(stdout.contains("Removed 15 swarm-hook entries"), "{stdout}");
    assert_eq!(
        read(&settings),
        original,
        "uninstall restores the file exactly"
    );
}

#[test]
fn a_hand_formatted_file_keeps_its_layout() {
    let home = UserHome::new();
    let settings = place(&home, "hand_formatted.json");
    let original = read(&settings);

    let stdout = ok(&home, &["hooks", "install"]);
    assert_golden(&read(&settings), "hand_formatted.installed.json");
    // The diff adds the hooks and a comma after the last member, nothing else.
    let removed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    assert_eq!(removed, ["-    \"cleanupPeriodDays\": 30"], "{stdout}");
    assert!(
        stdout.contains("+    \"cleanupPeriodDays\": 30,\n+    \"hooks\": {\n"),
        "{stdout}"
    );

    ok(&home, &["hooks", "uninstall"]);
    assert_eq!(
        read(&settings),
        original,
        "uninstall restores the file exactly"
    );
}

#[test]
fn existing_entries_are_updated_in_place_without_duplicates() {
    let home = UserHome::new();
    let settings = place(&home, "existing_swarm_hook.json");
    ok(&home, &["hooks", "install"]);
    let installed = read(&settings);
    assert_golden(&installed, "existing_swarm_hook.installed.json");
    // One entry per installed event; the hand-made MessageDisplay entry (an event
    // install does not manage) is left as it was.
    assert_eq!(installed.matches(&hook_path()).count(), 15, "{installed}");
    assert!(
        installed.contains("\"command\": \"swarm-hook\"\n"),
        "{installed}"
    );

    // A second run is a no-op: same bytes, no new backup.
    let stdout = ok(&home, &["hooks", "install"]);
    assert!(stdout.contains("nothing to change"), "{stdout}");
    assert_eq!(read(&settings), installed);
    assert_eq!(backups(settings.parent().unwrap()).len(), 1);

    // Uninstall takes every entry of ours, on any event, and nothing else.
    ok(&home, &["hooks", "uninstall"]);
    let after = read(&settings);
    assert!(!after.contains("swarm-hook"), "{after}");
    assert!(after.contains("~/bin/guard-bash.sh"), "{after}");
    assert!(after.contains("\"model\": \"sonnet\""), "{after}");
}

#[test]
fn malformed_json_is_reported_and_left_byte_for_byte() {
    let home = UserHome::new();
    let settings = place(&home, "malformed.json");
    let before = std::fs::read(&settings).unwrap();
    for args in [&["hooks", "install"][..], &["hooks", "uninstall"]] {
        let out = swarm_obs(&home, args);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let at = format!("{}:6:3: invalid JSON", settings.display());
        assert!(stderr.contains(&at), "{stderr}");
        assert!(stderr.contains("was not changed"), "{stderr}");
        assert_eq!(std::fs::read(&settings).unwrap(), before);
        assert_eq!(listing(settings.parent().unwrap()), ["settings.json"]);
    }
}

#[test]
fn dry_run_prints_the_diff_and_writes_nothing() {
    let home = UserHome::new();
    // An absent file stays absent, and so does its directory.
    let stdout = ok(&home, &["hooks", "install", "--dry-run"]);
    assert!(stdout.contains("+  \"hooks\": {"), "{stdout}");
    assert!(stdout.contains("Dry run"), "{stdout}");
    assert!(!home.path().join(".claude").exists());

    let settings = place(&home, "user_hooks.json");
    let before = read(&settings);
    let stdout = ok(&home, &["hooks", "install", "--dry-run"]);
    assert!(stdout.contains("@@"), "{stdout}");
    assert_eq!(read(&settings), before);

    ok(&home, &["hooks", "install"]);
    let installed = read(&settings);
    let stdout = ok(&home, &["hooks", "uninstall", "--dry-run"]);
    assert!(stdout.contains(&format!("-            \"command\": \"{}\"", hook_path())));
    assert_eq!(read(&settings), installed);
    assert_eq!(backups(settings.parent().unwrap()).len(), 1);
}

#[test]
fn scopes_pick_their_files() {
    let home = UserHome::new();
    ok(&home, &["hooks", "install", "--scope", "project"]);
    ok(&home, &["hooks", "install", "--scope", "local"]);
    let project = home.project().join(".claude");
    assert_eq!(listing(&project), ["settings.json", "settings.local.json"]);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&project.join("settings.json")), 0o644);
        ok(&home, &["hooks", "install"]);
        assert_eq!(mode(&home.user_settings()), 0o600);
        std::fs::remove_file(home.user_settings()).unwrap();
    }
    assert!(!home.user_settings().exists());

    // --project-dir names another project.
    let other = home.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let other_arg = other.to_str().unwrap();
    ok(
        &home,
        &[
            "hooks",
            "install",
            "--scope",
            "local",
            "--project-dir",
            other_arg,
        ],
    );
    assert!(other.join(".claude/settings.local.json").is_file());

    // CLAUDE_CONFIG_DIR moves the user scope.
    let config_dir = home.path().join("claude-config");
    let out = home
        .command(bin("swarm-obs"))
        .args(["hooks", "install"])
        .env("CLAUDE_CONFIG_DIR", &config_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(config_dir.join("settings.json").is_file());
    assert!(!home.user_settings().exists());
}

#[test]
fn a_missing_hook_binary_is_named_and_nothing_is_written() {
    let home = UserHome::new();
    // swarm-obs alone in a directory, and a PATH without swarm-hook.
    let lone = lone_swarm_obs(&home.path().join("bin"));
    let out = output_retrying_busy(
        home.command(&lone)
            .args(["hooks", "install"])
            .env("PATH", lone.parent().unwrap()),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot find swarm-hook beside this binary or on PATH"),
        "{stderr}"
    );
    assert!(!home.path().join(".claude").exists());

    // --hook names one explicitly; a path that is not executable is refused.
    let not_exec = home.path().join("swarm-hook");
    std::fs::write(&not_exec, "").unwrap();
    let out = output_retrying_busy(
        home.command(&lone)
            .args(["hooks", "install", "--hook"])
            .arg(&not_exec),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not an executable file"), "{stderr}");
    let out = output_retrying_busy(
        home.command(&lone)
            .args(["hooks", "install", "--hook"])
            .arg(bin("swarm-hook")),
    );
    assert!(out.status.success());
    assert!(read(&home.user_settings()).contains(&hook_path()));
}

#[test]
fn exec_form_follows_the_claude_code_version() {
    let home = UserHome::new();
    let settings = home.user_settings();
    // The claude on PATH runs exec form: the path as it is, "args": [], no shell.
    let stdout = ok_with_claude(&home, "2.1.337", &["hooks", "install"]);
    assert!(
        stdout.contains("Exec form: Claude Code 2.1.337 (")
            && stdout.contains("on PATH) spawns swarm-hook directly"),
        "{stdout}"
    );
    let exec = read(&settings);
    assert_golden(&exec, "absent.installed.exec.json");
    let value: serde_json::Value = serde_json::from_str(&exec).unwrap();
    for (event, groups) in value["hooks"].as_object().unwrap() {
        let h = &groups[0]["hooks"][0];
        assert_eq!(h["command"], hook_path().as_str(), "{event}");
        assert_eq!(h["args"], serde_json::json!([]), "{event}");
    }
    // Again: nothing changes, whichever way the version is given.
    let stdout = ok_with_claude(&home, "2.1.337", &["hooks", "install"]);
    assert!(stdout.contains("nothing to change"), "{stdout}");
    let stdout = ok(&home, &["hooks", "install", "--claude-version", "2.1.139"]);
    assert!(stdout.contains("nothing to change"), "{stdout}");
    assert!(
        stdout.contains("Exec form: Claude Code 2.1.139 (--claude-version)"),
        "{stdout}"
    );
    let stdout = ok(&home, &["hooks", "install", "--form", "exec"]);
    assert!(stdout.contains("nothing to change"), "{stdout}");
    assert_eq!(read(&settings), exec);

    // An older Claude Code: back to the shell form, in place.
    let stdout = ok(&home, &["hooks", "install"]);
    assert!(
        stdout.contains("Shell form: Claude Code 2.1.100 (")
            && stdout.contains("exec form needs 2.1.139"),
        "{stdout}"
    );
    assert_golden(&read(&settings), "absent.installed.json");
    let stdout = ok_with_claude(
        &home,
        "2.1.337",
        &["hooks", "install", "--claude-version", "2.1.138"],
    );
    assert!(stdout.contains("nothing to change"), "{stdout}");
    let stdout = ok_with_claude(&home, "2.1.337", &["hooks", "install", "--form", "shell"]);
    assert!(stdout.contains("nothing to change"), "{stdout}");

    // No claude anywhere on PATH: the shell form, which every release runs.
    let out = output_retrying_busy(
        home.command(bin("swarm-obs"))
            .args(["hooks", "install", "--dry-run"])
            .env("PATH", home.path().join("nowhere")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Shell form: no claude on PATH"), "{stdout}");
    assert!(stdout.contains("nothing to change"), "{stdout}");

    // Uninstall takes exec entries as it takes shell ones.
    ok_with_claude(&home, "2.1.337", &["hooks", "install"]);
    let stdout = ok(&home, &["hooks", "uninstall"]);
    assert!(stdout.contains("Removed 15 swarm-hook entries"), "{stdout}");
    assert!(!read(&settings).contains("swarm-hook"));

    // A version that cannot be read is refused.
    let out = swarm_obs(&home, &["hooks", "install", "--claude-version", "latest"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("X.Y.Z"));
}

#[test]
fn entries_of_ours_move_to_exec_form_unless_a_shell_must_run_them() {
    let home = UserHome::new();
    let settings = place(&home, "existing_swarm_hook.json");
    let stdout = ok_with_claude(&home, "2.1.337", &["hooks", "install"]);
    // `SWARM_OBS_SOURCE=api /old/place/swarm-hook` sets a variable: only a shell runs that.
    assert!(
        stdout.contains("1 swarm-hook entries stay in shell form"),
        "{stdout}"
    );
    let installed = read(&settings);
    assert_golden(&installed, "existing_swarm_hook.installed.exec.json");
    assert!(installed.contains(&format!("SWARM_OBS_SOURCE=api {}", hook_path())));
    // The MessageDisplay entry, an event install does not manage, is left as it was.
    assert!(
        installed.contains("\"command\": \"swarm-hook\"\n"),
        "{installed}"
    );
    let again = ok_with_claude(&home, "2.1.337", &["hooks", "install"]);
    assert!(again.contains("nothing to change"), "{again}");
    assert_eq!(read(&settings), installed);
    // And back to shell form: the same file as a shell-form install of the original.
    ok(&home, &["hooks", "install"]);
    assert_golden(&read(&settings), "existing_swarm_hook.installed.json");
}
