//! `swarm-obs completions`: shell completion scripts.

use std::process::ExitCode;

use anyhow::Result;
use clap_complete::Shell;

/// Arguments of `swarm-obs completions`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  swarm-obs completions bash > ~/.local/share/bash-completion/completions/swarm-obs\n  swarm-obs completions zsh > ~/.zfunc/_swarm-obs        # with fpath+=~/.zfunc before compinit\n  swarm-obs completions fish > ~/.config/fish/completions/swarm-obs.fish"
)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script for `command` (the whole command line) to stdout.
pub fn run(args: Args, mut command: clap::Command) -> Result<ExitCode> {
    let name = command.get_name().to_owned();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
