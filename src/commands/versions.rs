//! `mlreg versions MODEL`.

use crate::cli::VersionsArgs;
use crate::exit::ExitStatus;

use super::Context;

/// Lists a model's versions.
pub async fn run(_context: &Context, _args: &VersionsArgs) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("not implemented")
}
