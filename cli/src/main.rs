//! `swarm-obs`: every command a person types.

mod cmd;
mod display;
mod locate;
mod output_line;
mod probes;
mod sessions;
mod settings;
mod shell;
mod signals;
mod source;
mod tail;
mod watched;
mod workers;

use clap::{CommandFactory, Parser, Subcommand};

/// Live visibility for a swarm of workers and Claude Code agents.
#[derive(Debug, Parser)]
#[command(
    name = "swarm-obs",
    version,
    about,
    propagate_version = true,
    after_help = "Examples:\n  swarm-obs hooks install     # record every Claude Code hook event\n  swarm-obs serve             # the local collector on 127.0.0.1:4780\n  swarm-obs doctor            # check the setup, with a fix for each problem\n  swarm-obs status            # who is alive, late or dead (exit 1 on trouble)\n  swarm-obs top               # live dashboard of workers, sessions and events\n  swarm-obs demo              # replay a captured Claude Code session\n\nRun `swarm-obs <command> --help` for each command's options and examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a shell completion script (bash, zsh, fish, …).
    Completions(cmd::completions::Args),
    /// Run a collector, three workers and a replayed Claude Code session, and follow them live.
    Demo(cmd::demo::Args),
    /// Check the setup (hook, settings, state dir, config, collector, notifications).
    Doctor(cmd::doctor::Args),
    /// Install or remove swarm-hook in Claude Code's settings.json.
    Hooks(cmd::hooks::Args),
    /// Send a test notification through the configured backend and sound rules.
    Notify(cmd::notify::Args),
    /// Read lines from stdin or a named pipe as a watched worker's events.
    Pipe(cmd::pipe::Args),
    /// Run a command as a watched worker: heartbeat, output lines as events, start/done/error.
    Run(cmd::run::Args),
    /// Run the collector: ingest, store and stream events over HTTP.
    Serve(cmd::serve::Args),
    /// Show every worker's heartbeat verdict; exit 1 when any is late, down or dead.
    Status(cmd::status::Args),
    /// Show events from every source, merged in time order; follow them live with -f.
    Tail(cmd::tail::Args),
    /// A live terminal dashboard of workers, Claude sessions and events.
    Top(cmd::top::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Tail(_) | Command::Demo(_)
    ) {
        // Output piped into `head` ends quietly, as with any Unix tool, instead of
        // a panic on the broken pipe. The collector keeps Rust's ignored SIGPIPE;
        // tail ends with status 0 on a closed pipe itself (so `set -o pipefail`
        // stays happy), and demo must first stop the processes it started.
        #[cfg(unix)]
        // SAFETY: resetting a signal to its default action before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Completions(args) => cmd::completions::run(args, Cli::command()),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Hooks(args) => cmd::hooks::run(args),
        Command::Notify(args) => cmd::notify::run(args),
        Command::Pipe(args) => cmd::pipe::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Tail(args) => cmd::tail::run(args),
        Command::Top(args) => cmd::top::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("swarm-obs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, at every depth, ends its `--help` with examples.
    #[test]
    fn every_command_has_examples() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let has = cmd.get_after_help().is_some_and(|h| {
                let h = h.to_string();
                h.to_lowercase().contains("examples:") && h.contains("swarm-obs ")
            });
            if !has {
                missing.push(path.to_owned());
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "swarm-obs", &mut missing);
        assert!(missing.is_empty(), "no Examples section: {missing:?}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
