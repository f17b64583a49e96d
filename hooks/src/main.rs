//! `swarm-hook`: run by Claude Code on every hook event. Never writes to stdout,
//! always exits 0.

use std::io::Write;

fn main() {
    // A panic must not turn into exit code 101 ("hook error") or a message on stdout.
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(std::io::stderr(), "swarm-hook: internal error: {info}");
    }));
    let _ = std::panic::catch_unwind(|| {
        if std::env::args_os()
            .nth(1)
            .is_some_and(|a| a == swarm_hook::deliver::DELIVER_ARG)
        {
            swarm_hook::deliver::run_delivery();
        } else {
            swarm_hook::run(std::io::stdin(), &mut std::io::stderr());
        }
    });
    std::process::exit(0);
}
