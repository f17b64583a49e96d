//! Shell completions and `--help` of the real `swarm-obs` binary.

use std::process::Command;

use swarm_obs_suite::{bin, have_programs};

fn stdout(args: &[&str]) -> String {
    let out = Command::new(bin("swarm-obs"))
        .args(args)
        .output()
        .expect("run swarm-obs");
    assert!(
        out.status.success(),
        "swarm-obs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn completion_scripts_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _swarm__obs"),
        ("zsh", "#compdef swarm-obs"),
        ("fish", "complete -c swarm-obs"),
    ] {
        let script = stdout(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        // Subcommands and their options are completed too.
        for word in ["hooks", "doctor", "dry-run", "scope"] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    let out = Command::new(bin("swarm-obs"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

/// Runs `program args` with its config and data dirs in `home`, asserting success;
/// returns stdout.
fn shell(home: &std::path::Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("XDG_DATA_HOME", home)
        .env("XDG_CACHE_HOME", home)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn zsh_and_fish_load_the_scripts_and_fish_completes_with_them() {
    if !have_programs("completions in zsh and fish", &["zsh", "fish"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fish = dir.path().join("swarm-obs.fish");
    std::fs::write(&fish, stdout(&["completions", "fish"])).unwrap();
    let fish = fish.to_str().unwrap();
    shell(dir.path(), "fish", &["--no-execute", fish]);
    let complete = |line: &str| {
        shell(
            dir.path(),
            "fish",
            &["-c", &format!("source {fish}; complete -C '{line}'")],
        )
    };
    let words = complete("swarm-obs hoo");
    assert!(words.starts_with("hooks\t"), "{words}");
    let words = complete("swarm-obs hooks install --sc");
    assert!(words.starts_with("--scope\t"), "{words}");
    let words = complete("swarm-obs tail --out");
    assert!(words.contains("--output"), "{words}");

    // zsh: the script parses, and compinit registers it for `swarm-obs`.
    let zsh = dir.path().join("_swarm-obs");
    std::fs::write(&zsh, stdout(&["completions", "zsh"])).unwrap();
    shell(dir.path(), "zsh", &["-n", zsh.to_str().unwrap()]);
    let script = format!(
        "fpath=({0} $fpath); autoload -Uz compinit; compinit -u -d {0}/.zcompdump; print -r -- $_comps[swarm-obs]",
        dir.path().display()
    );
    let registered = shell(dir.path(), "zsh", &["-f", "-c", &script]);
    assert_eq!(registered.trim(), "_swarm-obs");
}

#[test]
fn help_shows_examples() {
    for args in [
        &[][..],
        &["hooks"],
        &["hooks", "install"],
        &["hooks", "uninstall"],
        &["doctor"],
        &["completions"],
        &["serve"],
        &["demo"],
        &["notify"],
        &["status"],
        &["top"],
    ] {
        let mut full = args.to_vec();
        full.push("--help");
        let help = stdout(&full);
        assert!(
            help.contains("\nExamples:\n  swarm-obs"),
            "swarm-obs {full:?}:\n{help}"
        );
    }
}

/// Completes `words` (the last one being typed) with the bash script, as bash
/// does on TAB, and returns the candidates.
fn bash_complete(script: &str, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "eval \"$SCRIPT\"; COMP_WORDS=({}); COMP_CWORD={cword}; _swarm__obs swarm-obs '{}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        quoted.join(" "),
        words[cword]
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .env("SCRIPT", script)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_commands_options_and_values() {
    if !swarm_obs_suite::have_programs("bash_completes", &["bash"]) {
        return;
    }
    let script = stdout(&["completions", "bash"]);
    assert_eq!(bash_complete(&script, &["swarm-obs", "hoo"]), ["hooks"]);
    assert_eq!(
        bash_complete(&script, &["swarm-obs", "hooks", "un"]),
        ["uninstall"]
    );
    assert_eq!(
        bash_complete(&script, &["swarm-obs", "hooks", "install", "--sc"]),
        ["--scope"]
    );
    assert_eq!(
        bash_complete(&script, &["swarm-obs", "hooks", "install", "--scope", ""]),
        ["user", "project", "local"]
    );
    assert_eq!(
        bash_complete(&script, &["swarm-obs", "doctor", "--js"]),
        ["--json"]
    );
    assert_eq!(
        bash_complete(&script, &["swarm-obs", "completions", "fi"]),
        ["fish"]
    );
}
