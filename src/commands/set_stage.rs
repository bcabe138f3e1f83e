//! `mlreg set-stage MODEL VERSION STAGE`: edit the manifest that declares MODEL to put
//! VERSION in STAGE (Staging or Production), or to take it out of `stages` (Archived or
//! None); print the diff, write the file.

use crate::exit::ExitStatus;
use crate::manifest::edit::{self, StageChange};
use crate::output::Output;
use crate::settings::SetStageSettings;
use crate::stage::Stage;

use super::load_manifests;
use super::manifest_edit::{finish, next_steps};

/// Places (or removes) one version in MODEL's manifest.
pub fn run(output: &Output, args: &SetStageSettings) -> anyhow::Result<ExitStatus> {
    let stage = args.stage;
    let change = match stage {
        Stage::Staging | Stage::Production => StageChange::Place {
            version: args.version,
            stage,
            keep_existing: args.keep_existing,
        },
        Stage::None | Stage::Archived => StageChange::Remove {
            version: args.version,
        },
    };
    let Some(desired) = load_manifests(output, &args.dir, "Nothing was edited")? else {
        return Ok(ExitStatus::Failure);
    };
    let outcome = edit::edit_stages(&desired, &args.model, &change)?;
    if finish(output, &args.model, outcome, args.dry_run)?.is_some() && !args.dry_run {
        next_steps(output);
    }
    Ok(ExitStatus::Success)
}
