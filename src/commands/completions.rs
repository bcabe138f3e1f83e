//! `mlreg completions SHELL`: print a shell completion script.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::ExitStatus;

/// Prints the completion script for the requested shell on stdout.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    // clap_complete panics when its writer fails, so render into memory first: a closed
    // pipe (`mlreg completions zsh | head`) is then an ordinary error, reported as success.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "mlreg", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(ExitStatus::Success)
}
