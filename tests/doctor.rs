//! `swarm-obs doctor` against real setups: a temporary home with a running
//! collector and swarm-hook installed (every check ok, exit 0), and broken ones
//! (each failure named with its fix, exit 1).
#![cfg(unix)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use swarm_obs_suite::{
    Collector, DesktopSession, TestHome, UserHome, bin, have_programs, lone_swarm_obs,
    output_retrying_busy,
};

/// Config that makes the notification check independent of a desktop.
const COMMAND_NOTIFY: &str = "[notify]\nbackend = \"command\"\ncommand = \"true\"\n";

fn doctor(user: &UserHome, state: &Path, extra: &[&str]) -> (Output, Value) {
    doctor_with(user, state, extra, |_| {})
}

fn doctor_with(
    user: &UserHome,
    state: &Path,
    extra: &[&str],
    adjust: impl FnOnce(&mut std::process::Command),
) -> (Output, Value) {
    let mut cmd = user.command(bin("swarm-obs"));
    cmd.args(["doctor", "--json"])
        .args(extra)
        .env("SWARM_OBS_HOME", state);
    adjust(&mut cmd);
    let out = cmd.output().expect("run swarm-obs doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&stdout).expect("doctor --json prints JSON");
    (out, report)
}

/// The check named `name` in a report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {report:#}"))
}

/// `swarm-obs` and `swarm-hook` copied out of the build directory into the
/// user's `~/.cargo/bin`, as `cargo install` puts them; the copy of `swarm-obs`.
fn installed_programs(user: &UserHome) -> std::path::PathBuf {
    let dir = user.path().join(".cargo/bin");
    let swarm_obs = lone_swarm_obs(&dir);
    std::fs::copy(bin("swarm-hook"), dir.join("swarm-hook")).expect("copy swarm-hook");
    swarm_obs
}

#[test]
fn a_working_setup_passes_every_check() {
    let user = UserHome::new();
    let state = TestHome::new();
    // Private, as the library creates a state root.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(state.path().join("config.toml"), COMMAND_NOTIFY).unwrap();
    let collector = Collector::start(&state);
    let swarm_obs = installed_programs(&user);
    let out = output_retrying_busy(user.command(&swarm_obs).args(["hooks", "install"]));
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");

    let out = output_retrying_busy(
        user.command(&swarm_obs)
            .args(["doctor", "--json"])
            .env("SWARM_OBS_HOME", state.path()),
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report["ok"], true);
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c:#}");
    }
    assert_eq!(report["checks"].as_array().unwrap().len(), 8);
    let collector_msg = check(&report, "collector")["message"].as_str().unwrap();
    assert!(collector_msg.contains(collector.addr()), "{collector_msg}");
    assert!(collector_msg.contains(&format!("pid {}", collector.pid())));
    let hooks_msg = check(&report, "hooks (user)")["message"].as_str().unwrap();
    assert!(hooks_msg.contains("on all 15 events"), "{hooks_msg}");

    // The same, for a person.
    let out = output_retrying_busy(
        user.command(&swarm_obs)
            .arg("doctor")
            .env("SWARM_OBS_HOME", state.path()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("All 8 checks passed."), "{text}");
    assert!(
        text.lines()
            .all(|l| l.is_empty() || l.starts_with("ok ") || l.starts_with("All")),
        "{text}"
    );
}

#[test]
fn a_broken_setup_names_each_failure_and_its_fix() {
    let user = UserHome::new();
    let state = TestHome::new();
    // swarm-obs alone, with no swarm-hook beside it or on PATH.
    let lone = lone_swarm_obs(&user.path().join("bin"));
    // Settings that run a hook which is not there.
    std::fs::create_dir_all(user.path().join(".claude")).unwrap();
    std::fs::write(
        user.user_settings(),
        r#"{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "/nonexistent/swarm-hook"}]}]}}"#,
    )
    .unwrap();
    // A typo in config.toml.
    std::fs::write(
        state.path().join("config.toml"),
        "[hook]\npost_budget = 5\n",
    )
    .unwrap();
    // events/ cannot be written: it is a file (root ignores permission bits).
    std::fs::write(state.path().join("events"), "").unwrap();
    // collector.json left behind by a collector that is gone, on a closed port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let info = swarm_obs::CollectorInfo {
        addr: format!("127.0.0.1:{port}"),
        pid: gone.id(),
        started_at: swarm_obs::Timestamp::now(),
        token: None,
        notifications: None,
        socket: None,
    };
    swarm_obs::write_collector_info(&state.path().join("collector.json"), &info).unwrap();

    let out = output_retrying_busy(
        user.command(&lone)
            .args(["doctor", "--json"])
            .env("SWARM_OBS_HOME", state.path())
            .env("PATH", "/usr/bin:/bin"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);

    let failed = |name: &str, says: &[&str], fix: &str| {
        let c = check(&report, name);
        assert_eq!(c["status"], "fail", "{c:#}");
        let message = c["message"].as_str().unwrap();
        for s in says {
            assert!(message.contains(s), "{name}: {message:?} lacks {s:?}");
        }
        let f = c["fix"].as_str().unwrap_or_default();
        assert!(f.contains(fix), "{name}: fix {f:?} lacks {fix:?}");
    };
    failed("swarm-hook", &["not found"], "cargo install --path hooks");
    failed(
        "hooks (user)",
        &["/nonexistent/swarm-hook", "not an executable"],
        "swarm-obs hooks install --scope user",
    );
    failed("state dir", &["events is not a directory"], "move it away");
    failed("config", &["line 2", "post_budget"], "config.toml");
    failed(
        "collector",
        &[
            &info.addr,
            &format!("pid {}, which is not running", info.pid),
        ],
        "swarm-obs serve",
    );

    // The human report says the same, each failure followed by its fix.
    let out = output_retrying_busy(
        user.command(&lone)
            .arg("doctor")
            .env("SWARM_OBS_HOME", state.path())
            .env("PATH", "/usr/bin:/bin"),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("FAIL") {
            assert!(lines[i + 1].trim_start().starts_with("fix: "), "{text}");
        }
    }
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("FAIL")).count(),
        5,
        "{text}"
    );
    assert!(text.contains("5 check(s) failed"), "{text}");
}

#[test]
fn state_dir_permissions_are_judged() {
    use std::os::unix::fs::PermissionsExt;
    let user = UserHome::new();
    let state = TestHome::new();
    let set = |mode| {
        std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(mode)).unwrap()
    };

    set(0o755);
    let (_, report) = doctor(&user, state.path(), &[]);
    let c = check(&report, "state dir");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert!(
        c["fix"].as_str().unwrap().starts_with("chmod 700 "),
        "{c:#}"
    );

    set(0o777);
    let (out, report) = doctor(&user, state.path(), &[]);
    assert_eq!(check(&report, "state dir")["status"], "fail");
    assert_eq!(out.status.code(), Some(1));

    // Permission bits stop only other users than root.
    if unsafe { libc::geteuid() } != 0 {
        set(0o500);
        let (_, report) = doctor(&user, state.path(), &[]);
        let c = check(&report, "state dir");
        assert_eq!(c["status"], "fail", "{c:#}");
        assert!(
            c["message"].as_str().unwrap().contains("cannot write"),
            "{c:#}"
        );
    }
    set(0o700);

    let missing = state.path().join("not-yet");
    let (_, report) = doctor(&user, &missing, &[]);
    let c = check(&report, "state dir");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert!(
        c["fix"].as_str().unwrap().contains("mkdir -p -m 700"),
        "{c:#}"
    );
}

#[test]
fn hooks_on_some_events_only_are_a_warning() {
    let user = UserHome::new();
    let state = TestHome::new();
    std::fs::create_dir_all(user.project().join(".claude")).unwrap();
    let hook = bin("swarm-hook");
    std::fs::write(
        user.project().join(".claude/settings.local.json"),
        format!(
            r#"{{"hooks": {{"Stop": [{{"hooks": [{{"type": "command", "command": "{}"}}]}}]}}}}"#,
            hook.display()
        ),
    )
    .unwrap();
    let (_, report) = doctor(&user, state.path(), &[]);
    let c = check(&report, "hooks (local)");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().contains("on 1 of 15 events"),
        "{c:#}"
    );
    assert_eq!(c["fix"], "swarm-obs hooks install --scope local");
    // Installed somewhere, so the user scope is fine without it.
    assert_eq!(check(&report, "hooks (user)")["status"], "ok");
    // No collector runs: optional, so a warning that says what happens meanwhile.
    let c = check(&report, "collector");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().contains("catches up"),
        "{c:#}"
    );

    // A scope that turns every hook off is named.
    std::fs::create_dir_all(user.path().join(".claude")).unwrap();
    std::fs::write(user.user_settings(), r#"{"disableAllHooks": true}"#).unwrap();
    let (_, report) = doctor(&user, state.path(), &[]);
    let c = check(&report, "hooks (user)");
    assert_eq!(c["status"], "warn", "{c:#}");
    assert!(
        c["message"].as_str().unwrap().contains("disableAllHooks"),
        "{c:#}"
    );
}

#[test]
fn a_missing_notification_command_fails() {
    let user = UserHome::new();
    let state = TestHome::new();
    std::fs::write(
        state.path().join("config.toml"),
        "[notify]\nbackend = \"command\"\ncommand = \"no-such-notifier --title \\\"$SWARM_TITLE\\\"\"\n",
    )
    .unwrap();
    let (_, report) = doctor(&user, state.path(), &[]);
    let c = check(&report, "notifications");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("`no-such-notifier` is not found"),
        "{c:#}"
    );
}

#[test]
fn the_desktop_backend_is_checked_against_a_real_notification_server() {
    if !have_programs("the_desktop_backend_is_checked", DesktopSession::PROGRAMS) {
        return;
    }
    let desktop = DesktopSession::start();
    let user = UserHome::new();
    let state = TestHome::new();
    let (_, report) = doctor_with(&user, state.path(), &[], |cmd| desktop.apply(cmd));
    let c = check(&report, "notifications");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert!(c["message"].as_str().unwrap().contains("dunst"), "{c:#}");
}

#[test]
fn a_collector_with_a_token_is_checked_with_it() {
    let user = UserHome::new();
    let state = TestHome::new();
    let _collector = Collector::start_with(&state, &["--token", "s3cret"]);
    // The token comes from collector.json.
    let (_, report) = doctor(&user, state.path(), &[]);
    assert_eq!(check(&report, "collector")["status"], "ok");
    // A wrong one in the environment is named, with where the right one is.
    let (_, report) = doctor_with(&user, state.path(), &[], |cmd| {
        cmd.env("SWARM_OBS_TOKEN", "wrong");
    });
    let c = check(&report, "collector");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(c["message"].as_str().unwrap().contains("HTTP 401"), "{c:#}");
    assert!(
        c["fix"].as_str().unwrap().contains("collector.json"),
        "{c:#}"
    );
}

#[test]
fn a_collector_address_that_answers_wrongly_or_hangs_fails() {
    use swarm_obs_suite::{ListenerMode, TestListener};
    let user = UserHome::new();
    let state = TestHome::new();
    for (mode, says) in [
        (ListenerMode::Answer(404), "answered /healthz with HTTP 404"),
        (ListenerMode::Hang, "does not answer"),
    ] {
        let listener = TestListener::start(mode);
        let (out, report) = doctor_with(&user, state.path(), &[], |cmd| {
            cmd.env("SWARM_OBS_COLLECTOR", listener.addr());
        });
        assert_eq!(out.status.code(), Some(1));
        let c = check(&report, "collector");
        assert_eq!(c["status"], "fail", "{c:#}");
        let message = c["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        assert!(message.contains("from SWARM_OBS_COLLECTOR"), "{message}");
    }
    // Posting turned off, or an address that is not one.
    let (_, report) = doctor_with(&user, state.path(), &[], |cmd| {
        cmd.env("SWARM_OBS_COLLECTOR", "off");
    });
    assert_eq!(check(&report, "collector")["status"], "warn");
    let (_, report) = doctor_with(&user, state.path(), &[], |cmd| {
        cmd.env("SWARM_OBS_COLLECTOR", "https://x:1");
    });
    let c = check(&report, "collector");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("invalid collector address"),
        "{c:#}"
    );
}

/// Hooks registered from a build directory break at the next `cargo clean`:
/// `hooks install` warns and says how to install, and `doctor` warns too.
#[test]
fn a_hook_in_a_build_directory_is_a_warning_with_the_install_command() {
    let user = UserHome::new();
    let state = TestHome::new();
    let out = user
        .command(bin("swarm-obs"))
        .args(["hooks", "install"])
        .output()
        .expect("run hooks install");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cargo build directory"), "{stderr}");
    assert!(
        stderr.contains("cargo install --locked --path hooks"),
        "{stderr}"
    );
    let (_, report) = doctor(&user, state.path(), &[]);
    for name in ["swarm-hook", "hooks (user)"] {
        let c = check(&report, name);
        assert_eq!(c["status"], "warn", "{c:#}");
        assert!(
            c["fix"]
                .as_str()
                .unwrap()
                .contains("cargo install --locked --path cli"),
            "{c:#}"
        );
    }
}

/// A directory holding only a stand-in `claude` whose `--version` prints
/// `version` as the real CLI does, to be all of PATH.
fn claude_of_version(user: &UserHome, version: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = user.path().join(format!("claude-{version}"));
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

/// The form of the entries is named, and judged against the `claude` on PATH:
/// exec form for a Claude Code that predates it fails, shell form where exec form
/// would do is a warning, and each fix is the install that writes the right one.
#[test]
fn the_hooks_form_is_named_and_judged_against_the_claude_on_path() {
    let user = UserHome::new();
    let state = TestHome::new();
    let swarm_obs = installed_programs(&user);
    let new = claude_of_version(&user, "2.1.337");
    let old = claude_of_version(&user, "2.1.100");
    let none = user.path().join("no-claude");
    std::fs::create_dir(&none).unwrap();
    let install = |form: &str| {
        let out = output_retrying_busy(
            user.command(&swarm_obs)
                .args(["hooks", "install", "--form", form])
                .env("PATH", &none),
        );
        assert!(out.status.success(), "{out:?}");
    };
    let hooks_check = |path: &Path| -> Value {
        let out = output_retrying_busy(
            user.command(&swarm_obs)
                .args(["doctor", "--json"])
                .env("SWARM_OBS_HOME", state.path())
                .env("PATH", path),
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
        check(&report, "hooks (user)").clone()
    };
    let message = |c: &Value| c["message"].as_str().unwrap_or_default().to_owned();

    install("exec");
    let c = hooks_check(&new);
    assert_eq!(c["status"], "ok", "{c:#}");
    assert!(
        message(&c).contains("on all 15 events, exec form, which Claude Code 2.1.337"),
        "{c:#}"
    );
    let c = hooks_check(&old);
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        message(&c).contains("exec form, which Claude Code 2.1.100")
            && message(&c).contains("predates"),
        "{c:#}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .starts_with("swarm-obs hooks install --scope user"),
        "{c:#}"
    );
    let c = hooks_check(&none);
    assert_eq!(c["status"], "ok", "{c:#}");
    assert!(
        message(&c).contains("exec form (no claude on PATH"),
        "{c:#}"
    );

    install("shell");
    let c = hooks_check(&new);
    assert_eq!(c["status"], "warn", "{c:#}");
    assert!(
        message(&c).contains("in shell form: Claude Code 2.1.337")
            && message(&c).contains("starts /bin/sh for each event"),
        "{c:#}"
    );
    assert_eq!(
        c["fix"],
        "swarm-obs hooks install --scope user (switches to exec form)"
    );
    let c = hooks_check(&old);
    assert_eq!(c["status"], "ok", "{c:#}");
    assert!(
        message(&c).contains("shell form, which Claude Code 2.1.100"),
        "{c:#}"
    );
}

/// With OTLP export configured, doctor calls the receiver: a trusted HTTPS
/// receiver passes, an unknown CA and a refused token fail with what to do.
#[test]
fn otlp_export_to_an_https_receiver_is_tried() {
    use swarm_obs_suite::tls::{HttpsAnswerer, TestCa};
    let user = UserHome::new();
    let state = TestHome::new();
    let ca = TestCa::new(state.path());
    let receiver = HttpsAnswerer::start(&ca.server("receiver", &["localhost"]), 200);
    let endpoint = format!("https://localhost:{}", receiver.port());
    let write_config = |extra: &str| {
        std::fs::write(
            state.path().join("config.toml"),
            format!("{COMMAND_NOTIFY}[otlp]\nendpoint = \"{endpoint}\"\n{extra}"),
        )
        .unwrap();
    };
    let clean_env = |c: &mut std::process::Command| {
        for k in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ] {
            c.env_remove(k);
        }
    };

    write_config(&format!("certificate = {:?}\n", ca.ca_path()));
    let (_, report) = doctor_with(&user, state.path(), &[], clean_env);
    let c = check(&report, "otlp export");
    assert_eq!(c["status"], "ok", "{c:#}");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{endpoint}/v1/logs accepts logs")) && msg.contains("metrics"),
        "{msg}"
    );
    assert!(receiver.requests() >= 2, "both signals were called");

    write_config("");
    let (out, report) = doctor_with(&user, state.path(), &[], clean_env);
    assert_eq!(out.status.code(), Some(1));
    let c = check(&report, "otlp export");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("signed by an unknown certificate authority"),
        "{c:#}"
    );
    assert!(c["fix"].as_str().unwrap().contains("certificate"), "{c:#}");

    write_config(&format!("certificate = {:?}\n", ca.ca_path()));
    receiver.set_status(401);
    let (_, report) = doctor_with(&user, state.path(), &[], clean_env);
    let c = check(&report, "otlp export");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(c["message"].as_str().unwrap().contains("HTTP 401"), "{c:#}");
}
