//! `mlreg migrate stages-to-aliases [--model NAME]... [--map STAGE=ALIAS]... [--drop-stages]`:
//! edit the manifests so each stage holder also holds the mapped alias, `serving.prefer`
//! names the aliases, and with `--drop-stages` `stages` goes. What each model's migration
//! means is decided in [`crate::manifest::edit::lifecycle::migration`]; a model that
//! cannot be migrated (a stage with several versions) is refused with what to decide, and
//! the others are migrated.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::exit::ExitStatus;
use crate::manifest::edit::{self, EditOutcome, ManifestEdit, lifecycle};
use crate::manifest::{self, ModelSpec};
use crate::output::Output;
use crate::settings::MigrateSettings;

use super::load_manifests;
use super::manifest_edit::{label, next_steps, write_diff};

/// Migrates the selected models.
pub fn run(output: &Output, settings: &MigrateSettings) -> anyhow::Result<ExitStatus> {
    let Some(mut desired) = load_manifests(output, &settings.dir, "Nothing was edited")? else {
        return Ok(ExitStatus::Failure);
    };
    for name in &settings.models {
        if !desired.models.contains_key(name) {
            return Err(edit::EditError::NotManaged {
                model: name.clone(),
                dir: desired.root.clone(),
            }
            .into());
        }
    }
    let selected: Vec<String> = desired
        .models
        .keys()
        .filter(|name| settings.models.is_empty() || settings.models.contains(name))
        .cloned()
        .collect();

    // Each file's text before the first edit and after the last, and what each model now
    // declares.
    let mut files: BTreeMap<PathBuf, (String, String)> = BTreeMap::new();
    let mut migrated: Vec<(String, ModelSpec, ModelSpec)> = Vec::new();
    let mut refused = 0_usize;
    for name in &selected {
        let Some(model) = desired.models.get(name) else {
            continue;
        };
        let changes = match lifecycle::migration(&model.spec, &settings.map, settings.drop_stages) {
            Ok(changes) => changes,
            Err(lifecycle::MigrationRefusal::NoStages) => {
                output.message(format_args!(
                    "{name}: declares no `stages`; nothing to migrate."
                ));
                continue;
            }
            Err(refusal) => {
                output.message(format_args!("{name}: not migrated: {refusal}."));
                refused += 1;
                continue;
            }
        };
        let edit = match edit::edit_model(&desired, name, &changes)
            .with_context(|| format!("cannot migrate `{name}`; nothing was written"))?
        {
            EditOutcome::Unchanged(why) => {
                output.message(format_args!("{name}: {why}; nothing to change."));
                continue;
            }
            EditOutcome::Edited(edit) => edit,
        };
        files
            .entry(edit.file.clone())
            .or_insert_with(|| (edit.before.clone(), String::new()))
            .1
            .clone_from(&edit.after);
        desired
            .replace_file(&edit.file, &edit.after)
            .map_err(|error| anyhow::anyhow!("{error}"))
            .with_context(|| format!("the migrated manifest of `{name}` does not load"))?;
        migrated.push((name.clone(), edit.spec_before, edit.spec_after));
    }

    for (file, (before, after)) in &files {
        let whole = ManifestEdit {
            model: String::new(),
            file: file.clone(),
            before: before.clone(),
            after: after.clone(),
            spec_before: ModelSpec::default(),
            spec_after: ModelSpec::default(),
        };
        write_diff(output, &whole)?;
        if !settings.dry_run {
            manifest::replace_if_unchanged(file, before, after).with_context(|| {
                format!(
                    "cannot write {} (files listed before it were written)",
                    label(&whole)
                )
            })?;
        }
    }
    for (name, before, after) in &migrated {
        output.message(format_args!(
            "{name}: {}",
            edit::describe_change(before, after)
        ));
    }
    let verb = if settings.dry_run {
        "would be migrated (dry run: nothing was written)"
    } else {
        "migrated"
    };
    output.message(format_args!(
        "{} model(s) {verb} in {} file(s){}.",
        migrated.len(),
        files.len(),
        if refused > 0 {
            format!("; {refused} refused (see above)")
        } else {
            String::new()
        }
    ));
    if !settings.dry_run && !files.is_empty() {
        next_steps(output);
    }
    Ok(if refused > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
