//! `swarm-obs`: every command a person types.

mod cmd;
mod duration_arg;
mod output_line;
mod signals;
mod watched;

use clap::{Parser, Subcommand};

/// Live visibility for a swarm of workers and Claude Code agents.
#[derive(Debug, Parser)]
#[command(name = "swarm-obs", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a captured Claude Code session through swarm-hook and show the events.
    Demo(cmd::demo::Args),
    /// Send a test notification through the configured backend and sound rules.
    Notify(cmd::notify::Args),
    /// Read lines from stdin or a named pipe as a watched worker's events.
    Pipe(cmd::pipe::Args),
    /// Run a command as a watched worker: heartbeat, output lines as events, start/done/error.
    Run(cmd::run::Args),
    /// Run the collector: ingest, store and stream events over HTTP.
    Serve(cmd::serve::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Notify(args) => cmd::notify::run(args),
        Command::Pipe(args) => cmd::pipe::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Serve(args) => cmd::serve::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("swarm-obs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
