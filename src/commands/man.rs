//! `mlreg man [--dir DIR]`: the man pages, generated from the clap definitions.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::ExitStatus;
use crate::output::Output;

/// Prints mlreg(1) on stdout, or writes mlreg.1 and one mlreg-COMMAND.1 per subcommand into
/// `dir` (what `scripts/build-wheel.sh` puts in the wheel's `share/man/man1`).
pub fn run(output: &Output, dir: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let command = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
        }
        None => {
            // Rendered into memory first, like the completions: a closed pipe is then an
            // ordinary error, reported as success.
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            let mut stdout = output.stdout();
            stdout.write_all(&page)?;
            stdout.flush()?;
        }
    }
    Ok(ExitStatus::Success)
}
