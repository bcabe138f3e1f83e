//! `mlreg validate`.

use crate::cli::DirArgs;
use crate::exit::ExitStatus;

use super::Context;

/// Validates the manifests offline.
pub fn run(_context: &Context, _args: &DirArgs) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("not implemented")
}
