//! `swarm-obs notify`, the real binary: a test notification reaches the configured
//! command backend with its title, body, kind and sounds; with notifications off it
//! fails and says how to turn them on.

use swarm_obs_suite::TestHome;

/// A `config.toml` whose command backend appends the notification's fields to `out`.
fn command_config(home: &TestHome, out: &std::path::Path) {
    let config = format!(
        "[notify]\nbackend = \"command\"\ncommand = '''printf '%s|%s|%s|%s|%s|%s\\n' \"$SWARM_TITLE\" \"$SWARM_BODY\" \"$SWARM_KIND\" \"$SWARM_SOUND\" \"$SWARM_LINUX_SOUND\" \"$SWARM_URGENCY\" >> \"{}\"'''\n",
        out.display()
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
}

#[test]
fn a_test_notification_reaches_the_command_backend_with_its_sound() {
    let home = TestHome::new();
    let out = home.path().join("shown.txt");
    command_config(&home, &out);
    let done = home
        .swarm_obs()
        .args(["notify", "--kind", "done", "hello"])
        .output()
        .unwrap();
    assert!(done.status.success(), "{done:?}");
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(
        said.contains("\"swarm-obs: done\"") && said.contains("command backend"),
        "{said}"
    );
    // A second one right away is shown too: the test command skips the debounce.
    let error = home
        .swarm_obs()
        .args([
            "notify",
            "--kind",
            "error",
            "--source",
            "backend",
            "TASK_123 failed",
        ])
        .output()
        .unwrap();
    assert!(error.status.success(), "{error:?}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "swarm-obs: done|hello|done|Glass|complete|normal\n\
         backend: error|TASK_123 failed|error|Basso|dialog-error|critical\n"
    );
}

#[test]
fn a_kind_the_rules_turn_off_fails_and_names_the_setting() {
    let home = TestHome::new();
    let out = home.path().join("shown.txt");
    command_config(&home, &out);
    let info = home
        .swarm_obs()
        .args(["notify", "--kind", "info", "subagent finished"])
        .output()
        .unwrap();
    assert_eq!(info.status.code(), Some(1), "{info:?}");
    let said = String::from_utf8_lossy(&info.stderr);
    assert!(
        said.contains("turn info notifications from \"swarm-obs\" off")
            && said.contains("[notify.kind.info] enabled = true"),
        "{said}"
    );
    assert!(!out.exists(), "nothing was shown");
    // With the kind turned on, it is shown.
    let config = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!("{config}[notify.kind.info]\nenabled = true\n"),
    )
    .unwrap();
    let info = home
        .swarm_obs()
        .args(["notify", "--kind", "info", "subagent finished"])
        .output()
        .unwrap();
    assert!(info.status.success(), "{info:?}");
    let shown = std::fs::read_to_string(&out).unwrap();
    assert!(shown.contains("|subagent finished|info|"), "{shown}");
}

#[test]
fn with_notifications_off_it_fails_and_names_the_setting() {
    let home = TestHome::new();
    let config = home.path().join("config.toml");
    std::fs::write(&config, "[notify]\nbackend = \"off\"\n").unwrap();
    let out = home
        .swarm_obs()
        .args(["notify", "--kind", "done", "hello"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("notifications are off")
            && said.contains("backend = \"off\"")
            && said.contains("backend = \"command\"")
            && said.contains(&config.display().to_string()),
        "{said}"
    );

    // `auto` with no desktop session and no command is off too, and says why.
    std::fs::remove_file(&config).unwrap();
    let out = home
        .swarm_obs()
        .args(["notify", "hello"])
        .env("XDG_RUNTIME_DIR", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("notifications are off") && said.contains("no desktop session"),
        "{said}"
    );
}
