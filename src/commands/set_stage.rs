//! `mlreg set-stage MODEL VERSION STAGE`: edit the manifest that declares MODEL to put
//! VERSION (a number, `run:ID` or `m-ID`) in STAGE (Staging or Production), or to take it out of `stages` (Archived or
//! None); print the diff, write the file.

use crate::exit::ExitStatus;
use crate::manifest::edit;
use crate::output::Output;
use crate::settings::SetStageSettings;

use super::load_manifests;
use super::manifest_edit::{finish, next_steps};

/// Places (or removes) one version in MODEL's manifest.
pub fn run(output: &Output, args: &SetStageSettings) -> anyhow::Result<ExitStatus> {
    let Some(desired) = load_manifests(output, &args.dir, "Nothing was edited")? else {
        return Ok(ExitStatus::Failure);
    };
    let outcome = edit::set_stage(
        &desired,
        &args.model,
        &args.version,
        args.stage,
        args.keep_existing,
    )?;
    if finish(output, &args.model, outcome, args.dry_run)?.is_some() && !args.dry_run {
        next_steps(output);
    }
    Ok(ExitStatus::Success)
}
