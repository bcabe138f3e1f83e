//! `mlreg completions SHELL`: print a shell completion script.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::ExitStatus;

/// Prints the completion script for the requested shell on stdout.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "mlreg", &mut std::io::stdout());
    Ok(ExitStatus::Success)
}
