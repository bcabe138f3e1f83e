//! `mlreg plan` and `mlreg reconcile`.

use crate::cli::ReconcileArgs;
use crate::exit::ExitStatus;

use super::Context;

/// Plans and (unless dry-run) applies.
pub async fn run(_context: &Context, _args: &ReconcileArgs) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("not implemented")
}
