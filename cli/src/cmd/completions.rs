//! `swarm-obs completions`: shell completion scripts.

use std::process::ExitCode;

use std::io::Write;

use anyhow::{Context, Result};
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
pub fn run(args: Args, command: clap::Command) -> Result<ExitCode> {
    std::io::stdout()
        .write_all(script(args.shell, command).as_bytes())
        .context("cannot write the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `shell`.
fn script(shell: Shell, mut command: clap::Command) -> String {
    let name = command.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, &name, &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    if shell != Shell::Bash {
        return text;
    }
    // clap_complete's bash script spells a hyphenated program name two ways
    // (clap issue #6421): the loop that tracks the subcommand reaches
    // `swarm__obs__subcmd__hooks`, the case arms say `swarm__subcmd__obs__subcmd__hooks`,
    // so nothing after a subcommand would complete. Make the arms match the loop.
    text.replace(&name.replace('-', "__subcmd__"), &name.replace('-', "__"))
}
