//! `swarm-hook`: run by Claude Code on every hook event. Never writes to stdout
//! when Claude Code runs it (it passes no arguments; `--help` and `--version` are
//! for a person), always exits 0.

use std::io::Write;

fn main() {
    // A panic must not turn into exit code 101 ("hook error") or a message on stdout.
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(std::io::stderr(), "swarm-hook: internal error: {info}");
    }));
    let _ = std::panic::catch_unwind(|| {
        let first = std::env::args_os().nth(1);
        if first
            .as_ref()
            .is_some_and(|a| a == swarm_hook::deliver::DELIVER_ARG)
        {
            swarm_hook::deliver::run_delivery();
        } else if let Some(text) = first.as_deref().and_then(|a| a.to_str()).and_then(asked) {
            // A person asking, never Claude Code (it passes no arguments): answer
            // at once, read no stdin, record nothing.
            let _ = std::io::stdout().write_all(text.as_bytes());
        } else {
            swarm_hook::run_stdin(&mut std::io::stderr());
        }
    });
    std::process::exit(0);
}

/// The answer to `--help` or `--version`.
fn asked(arg: &str) -> Option<String> {
    match arg {
        "-h" | "--help" => Some(format!(
            "swarm-hook {} — the Claude Code hook of swarm-obs\n\n\
             Claude Code runs it on every hook event with the event's JSON on stdin.\n\
             It appends the event to the swarm-obs event log, offers it to the local\n\
             collector and raises desktop notifications by the sound rules; it writes\n\
             nothing to stdout and always exits 0.\n\n\
             Install it into Claude Code's settings with:  swarm-obs hooks install\n\
             Check the setup with:                        swarm-obs doctor\n",
            env!("CARGO_PKG_VERSION")
        )),
        "-V" | "--version" => Some(format!("swarm-hook {}\n", env!("CARGO_PKG_VERSION"))),
        _ => None,
    }
}
