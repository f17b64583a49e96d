//! Shell completions and `--help` of the real `swarm-obs` binary.

use std::process::Command;

use swarm_obs_suite::bin;

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

#[test]
fn bash_accepts_its_script() {
    if !swarm_obs_suite::have_programs("bash_accepts_its_script", &["bash"]) {
        return;
    }
    let script = stdout(&["completions", "bash"]);
    let out = Command::new("bash")
        .args(["-c", "eval \"$SCRIPT\" && complete -p swarm-obs"])
        .env("SCRIPT", script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("swarm-obs"));
}
