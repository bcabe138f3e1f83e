//! `mlreg info MODEL`.

use crate::cli::InfoArgs;
use crate::exit::ExitStatus;

use super::Context;

/// Summarizes a model.
pub async fn run(_context: &Context, _args: &InfoArgs) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("not implemented")
}
