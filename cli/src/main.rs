//! `swarm-obs`: every command a person types.

mod cmd;
mod display;
mod sessions;
mod source;
mod workers;

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
    /// Run the collector: ingest, store and stream events over HTTP.
    Serve(cmd::serve::Args),
    /// Show every worker's heartbeat verdict; exit 1 when any is late, down or dead.
    Status(cmd::status::Args),
    /// A live terminal dashboard of workers, Claude sessions and events.
    Top(cmd::top::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Notify(args) => cmd::notify::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Status(args) => cmd::status::run(args),
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
