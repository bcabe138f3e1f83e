//! `mlreg set-alias MODEL ALIAS VERSION` and `--delete`: edit the manifest that declares
//! MODEL so ALIAS points at VERSION (or is removed), print the diff, write the file.

use crate::exit::ExitStatus;
use crate::manifest::VersionRef;
use crate::manifest::edit::{self, ManifestChange};
use crate::output::Output;
use crate::settings::SetAliasSettings;

use super::load_manifests;
use super::manifest_edit::{finish, next_steps};

/// Points (or removes) one alias in MODEL's manifest.
pub fn run(output: &Output, args: &SetAliasSettings) -> anyhow::Result<ExitStatus> {
    let Some(desired) = load_manifests(output, &args.dir, "Nothing was edited")? else {
        return Ok(ExitStatus::Failure);
    };
    let change = match &args.version {
        Some(VersionRef::Number(version)) => ManifestChange::SetAlias {
            alias: args.alias.clone(),
            version: *version,
        },
        Some(VersionRef::Select(selector)) => ManifestChange::SelectAlias {
            alias: args.alias.clone(),
            selector: selector.clone(),
        },
        None => ManifestChange::DeleteAlias {
            alias: args.alias.clone(),
        },
    };
    let declared_aliases = desired
        .models
        .get(&args.model)
        .is_some_and(|model| model.spec.aliases.is_some());
    let outcome = edit::edit_model(&desired, &args.model, &[change])?;
    let Some(_) = finish(output, &args.model, outcome, args.dry_run)? else {
        return Ok(ExitStatus::Success);
    };
    if !declared_aliases {
        output.message(format_args!(
            "note: the manifest of `{}` now declares `aliases`, which is exhaustive: reconcile deletes the model's other aliases in the registry (`mlreg versions {}` lists them; declare the ones to keep).",
            args.model, args.model
        ));
    }
    if !args.dry_run {
        next_steps(output);
    }
    Ok(ExitStatus::Success)
}
