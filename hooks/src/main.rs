//! `swarm-hook`: run by Claude Code on every hook event. Never writes to stdout
//! when Claude Code runs it (it passes no arguments; `--help` and `--version` are
//! for a person), always exits 0.
//!
//! It runs once per hook event of every agent, so its start-up is part of what
//! an agent waits for. On Linux it skips the Rust runtime's start-up (`no_main`),
//! which would spend about twenty system calls on a stack-overflow handler
//! (reading `/proc/self/maps` to find the main thread's stack) that a hook
//! parsing bounded JSON has no use for; it keeps the two parts that matter: the
//! standard descriptors are checked, and SIGPIPE is ignored.
#![cfg_attr(target_os = "linux", no_main)]

use std::io::Write;

/// Entry point without the runtime's start-up (see the crate docs). glibc hands
/// `argc`/`argv` to the standard library itself, so `std::env::args` works.
#[cfg(target_os = "linux")]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: plain system calls on this process's own descriptors and signals,
    // before any other thread exists.
    unsafe {
        // A write to a closed pipe or socket is an error to handle, not death.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        // A closed 0, 1 or 2 would be reused by the next file opened, and a line
        // meant for stderr would land in the event log: hold them on /dev/null.
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        if libc::poll(fds.as_mut_ptr(), 3, 0) >= 0 {
            // open(2) takes the lowest free number: each takes a closed one's place.
            let closed = fds
                .iter()
                .filter(|p| p.revents & libc::POLLNVAL != 0)
                .count();
            for _ in 0..closed {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
    }
    hook_main();
    0
}

#[cfg(not(target_os = "linux"))]
fn main() {
    hook_main();
}

fn hook_main() {
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
