//! `mlreg promote MODEL [--from SRC] [--to DST] [--keep-source]`: edit the manifest that
//! declares MODEL so a stage's versions or an alias's version move to another stage or
//! alias (the rules are in [`crate::manifest::edit::lifecycle`]), print the diff, write the
//! file.

use std::collections::BTreeSet;

use crate::exit::ExitStatus;
use crate::manifest::edit::{self, lifecycle};
use crate::output::Output;
use crate::settings::PromoteSettings;

use super::load_manifests;
use super::manifest_edit::{finish, next_steps};

/// Promotes in MODEL's manifest.
pub fn run(output: &Output, settings: &PromoteSettings) -> anyhow::Result<ExitStatus> {
    let Some(desired) = load_manifests(output, &settings.dir, "Nothing was edited")? else {
        return Ok(ExitStatus::Failure);
    };
    let model = &settings.model;
    let Some(declared) = desired.models.get(model) else {
        return Err(edit::EditError::NotManaged {
            model: model.clone(),
            dir: desired.root.clone(),
        }
        .into());
    };
    let (default_from, default_to) = lifecycle::default_promotion(&declared.spec);
    let from = settings.from.clone().unwrap_or(default_from);
    let to = settings.to.clone().unwrap_or(default_to);
    let changes = lifecycle::promotion(model, &declared.spec, &from, &to, settings.keep_source)?;
    let outcome = edit::edit_model(&desired, model, &changes)?;
    let Some(done) = finish(output, model, outcome, settings.dry_run)? else {
        return Ok(ExitStatus::Success);
    };
    // Aliases are not moved by a stage edit: say which ones now point outside the stages.
    let staged = |spec: &crate::manifest::ModelSpec| -> BTreeSet<u64> {
        spec.stages
            .as_ref()
            .map(|stages| stages.all_versions().collect())
            .unwrap_or_default()
    };
    if done.spec_before.aliases.is_none() && done.spec_after.aliases.is_some() {
        output.message(format_args!(
            "note: the manifest of `{model}` now declares `aliases`, which is exhaustive: reconcile deletes the model's other aliases in the registry (`mlreg versions {model}` lists them; declare the ones to keep)."
        ));
    }
    let after = staged(&done.spec_after);
    for (alias, target) in done.spec_after.aliases.iter().flatten() {
        if staged(&done.spec_before).contains(target) && !after.contains(target) {
            output.message(format_args!(
                "note: alias `{alias}` still points at version {target}, which no stage declares any more (reconcile archives it); edit `aliases` if the alias should move too."
            ));
        }
    }
    if !settings.dry_run {
        next_steps(output);
    }
    Ok(ExitStatus::Success)
}
