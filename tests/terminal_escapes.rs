//! Events carrying terminal escapes (a title set with OSC 0, the clipboard written
//! with OSC 52, the screen cleared, a bidi override, a forged second line) shown by
//! `tail` in each output mode and `status` in a real tmux pane: the title, the paste
//! buffers and the screen are left alone, and `logs/<source>.log` keeps one line per
//! event.

use swarm_obs::{Event, EventLog, Kind, StateRoot};
use swarm_obs_suite::{TestHome, Tmux, bin, have_programs};

const TITLE: &str = "\u{1b}]0;PWNED-TITLE\u{7}";
const CLIPBOARD: &str = "\u{1b}]52;c;UFdORUQtQ0xJUA==\u{7}";
const CLEAR: &str = "\u{1b}[2J\u{1b}[H";

fn hostile_events(home: &TestHome) {
    let log = EventLog::new(StateRoot::new(home.path()));
    let source = format!("evil{TITLE}\nforged [ERROR] line");
    for (i, msg) in [
        format!("first {TITLE}"),
        format!("second {CLIPBOARD} \u{202e}gnp.exe"),
        format!("third \u{9b}2J {CLEAR}"),
    ]
    .iter()
    .enumerate()
    {
        let mut ev = Event::new(source.clone(), Kind::Log, msg.clone());
        ev.ts = swarm_obs::Timestamp::from_unix_ms(ev.ts.unix_ms() + i as i64);
        log.append(&ev).expect("append a hostile event");
    }
}

/// Runs `commands` (one shell line) in a real tmux pane set up to notice
/// steering: a known title, and the clipboard on (an OSC 52 that reached tmux
/// makes a paste buffer). Asserts the screen was not cleared, the title not
/// changed and no buffer made; returns the screen.
fn run_in_watched_pane(home: &TestHome, commands: &str) -> String {
    let tmux = Tmux::start(home, "sh");
    tmux.run(&["set-option", "-g", "set-clipboard", "on"]);
    tmux.run(&["select-pane", "-t", "t", "-T", "clean-title"]);
    let title = || {
        let out = tmux
            .command()
            .args(["display-message", "-p", "-t", "t", "#{pane_title}"])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(title(), "clean-title");
    tmux.type_text(&format!(
        "echo MARKER-BEFORE; {commands}; echo MARKER-AFTER"
    ));
    tmux.send_keys(&["Enter"]);
    let screen = tmux.wait_for("the commands to finish", |s| {
        s.lines().any(|l| l.trim() == "MARKER-AFTER")
    });
    assert!(
        screen.lines().any(|l| l.trim() == "MARKER-BEFORE"),
        "the screen was cleared:\n{screen}"
    );
    assert_eq!(title(), "clean-title", "the pane title was changed");
    let buffers = tmux
        .command()
        .args(["list-buffers"])
        .output()
        .expect("tmux list-buffers");
    assert_eq!(
        String::from_utf8_lossy(&buffers.stdout).trim(),
        "",
        "an OSC 52 reached the clipboard"
    );
    screen
}

#[test]
fn tail_and_status_leave_the_terminal_alone() {
    if !have_programs("terminal escapes", &["tmux", "sh"]) {
        return;
    }
    let home = TestHome::new();
    hostile_events(&home);
    let screen = run_in_watched_pane(
        &home,
        &format!(
            "export SWARM_OBS_HOME='{home}'; \
             '{bin}' tail --color always; '{bin}' tail -o raw; '{bin}' tail -o json; \
             '{bin}' status --collector off --color always",
            home = home.path().display(),
            bin = bin("swarm-obs").display()
        ),
    );
    // The escapes are shown, not obeyed.
    assert!(screen.contains("\\x1b]0;PWNED-TITLE\\x07"), "{screen}");
    assert!(screen.contains("\\u{202e}gnp.exe"), "{screen}");
    assert!(
        screen.contains("\\u202e"),
        "JSON escapes bidi controls:\n{screen}"
    );
    assert!(
        !screen.lines().any(|l| l.starts_with("forged")),
        "a newline in a source forged a line:\n{screen}"
    );

    // The per-source log that run writes: one line per event, whatever the source.
    let evil = format!("run-evil{TITLE}\nforged [ERROR] line");
    let out = home
        .swarm_obs()
        .args(["run", "--source", &evil, "--no-echo", "--", "echo", "hello"])
        .output()
        .expect("swarm-obs run");
    assert!(out.status.success(), "{out:?}");
    let log = StateRoot::new(home.path()).log_file(&evil);
    let text = std::fs::read_to_string(&log).expect("the source's log file");
    let recorded = home.events().iter().filter(|e| e.source == evil).count();
    assert_eq!(text.lines().count(), recorded, "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("forged")),
        "a newline in a source forged a line: {text}"
    );
    assert!(!text.contains('\u{1b}'), "{text:?}");
}

/// A child's own output echoed by `run` and `pipe --echo` in a real tmux pane:
/// colours pass, but the title, the clipboard and the screen are left alone.
#[test]
fn run_and_pipe_echo_steer_no_terminal() {
    if !have_programs("terminal escapes in echo", &["tmux", "sh", "python3"]) {
        return;
    }
    let home = TestHome::new();
    // The program prints a coloured word, then each attack, on stdout and stderr.
    let script = home.path().join("hostile.py");
    std::fs::write(
        &script,
        "import sys\n\
         attacks = '\\x1b[31mRED\\x1b[0m \\x1b]0;PWNED-TITLE\\x07 \\x1b]52;c;UFdORUQ=\\x07 \\x1b[2J\\x1b[H \\u202egnp.exe'\n\
         print('out ' + attacks, flush=True)\n\
         print('err ' + attacks, file=sys.stderr, flush=True)\n",
    )
    .expect("write the script");
    let screen = run_in_watched_pane(
        &home,
        &format!(
            "export SWARM_OBS_HOME='{home}'; \
             '{bin}' run --source runner -- python3 '{script}'; \
             python3 '{script}' 2>&1 | '{bin}' pipe --source piper --echo",
            home = home.path().display(),
            bin = bin("swarm-obs").display(),
            script = script.display(),
        ),
    );
    // Three echoed lines (run's stdout and stderr, pipe's input) show the attacks
    // as escapes; the colour was obeyed, so its escape is not on the screen.
    let shown = screen
        .lines()
        .filter(|l| l.contains("\\x1b]0;PWNED-TITLE\\x07"))
        .count();
    assert!(shown >= 3, "{screen}");
    assert!(screen.contains("RED \\x1b]0;"), "{screen}");
    assert!(
        !screen.contains("\\x1b[31m"),
        "the colour was not kept:\n{screen}"
    );
    assert!(screen.contains("\\u{202e}gnp.exe"), "{screen}");
}
