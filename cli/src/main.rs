//! `swarm-obs`: every command a person types.

mod cmd;
mod tail;

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
    /// Run a collector, three workers and a replayed Claude Code session, and follow them live.
    Demo(cmd::demo::Args),
    /// Send a test notification through the configured backend and sound rules.
    Notify(cmd::notify::Args),
    /// Run the collector: ingest, store and stream events over HTTP.
    Serve(cmd::serve::Args),
    /// Show events from every source, merged in time order; follow them live with -f.
    Tail(cmd::tail::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Notify(args) => cmd::notify::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Tail(args) => cmd::tail::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("swarm-obs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
