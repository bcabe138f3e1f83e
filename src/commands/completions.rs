//! `mlreg completions SHELL`: print a shell completion script.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::ExitStatus;
use crate::output::Output;

/// Prints the completion script for `shell` on stdout.
pub fn run(output: &Output, shell: clap_complete::Shell) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    // clap_complete panics when its writer fails, so render into memory first: a closed
    // pipe (`mlreg completions zsh | head`) is then an ordinary error, reported as success.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "mlreg", &mut script);
    let mut stdout = output.stdout();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(ExitStatus::Success)
}
