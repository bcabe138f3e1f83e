//! `mlreg promote MODEL [--from Staging] [--to Production]`: edit the manifest that declares
//! MODEL so the version(s) of one stage move to another, print the diff, write the file.
//!
//! Also holds what `set-stage` shares with it: loading the manifests for an edit and
//! finishing one (diff, dry run, atomic write, notes).

use std::collections::BTreeSet;
use std::io::Write as _;

use crate::exit::ExitStatus;
use crate::manifest::DesiredState;
use crate::manifest::edit::{self, EditOutcome, StageChange};
use crate::output::Output;
use crate::render::diff;
use crate::settings::PromoteSettings;

use super::load_manifests;

/// Moves the versions of `--from` to `--to` in MODEL's manifest.
pub fn run(output: &Output, settings: &PromoteSettings) -> anyhow::Result<ExitStatus> {
    let Some(desired) = load_manifests(output, &settings.dir, "Nothing was edited")? else {
        return Ok(ExitStatus::Failure);
    };
    let change = StageChange::Promote {
        from: settings.from,
        to: settings.to,
    };
    let outcome = edit::edit_stages(&desired, &settings.model, &change)?;
    finish(output, &desired, &settings.model, outcome, settings.dry_run)
}

/// Prints the diff of a verified edit on stdout and, unless `dry_run`, writes the file;
/// says on stderr what happened.
pub(super) fn finish(
    output: &Output,
    desired: &DesiredState,
    model: &str,
    outcome: EditOutcome,
    dry_run: bool,
) -> anyhow::Result<ExitStatus> {
    let edit = match outcome {
        EditOutcome::Unchanged(why) => {
            output.message(format_args!("{model}: {why}; nothing to change."));
            return Ok(ExitStatus::Success);
        }
        EditOutcome::Edited(edit) => edit,
    };
    // `./x.yaml` (with `--dir .`) reads better as `x.yaml` in the diff headers.
    let label = edit
        .file
        .strip_prefix(".")
        .unwrap_or(&edit.file)
        .display()
        .to_string();
    let mut stdout = output.stdout();
    diff::write_unified(
        &mut stdout,
        &label,
        &edit.before,
        &edit.after,
        output.color_stdout(),
    )?;
    stdout.flush()?;
    drop(stdout);

    if dry_run {
        output.message(format_args!("Dry run: {label} was not written."));
    } else {
        edit::write_atomically(&edit)?;
        output.message(format_args!(
            "Wrote {label}: {model} now declares {} (was {}).",
            edit::describe(&edit.stages_after),
            edit::describe(&edit.stages_before)
        ));
    }
    // Aliases are not moved by a stage edit: say which ones now point outside the stages.
    let after: BTreeSet<u64> = edit.stages_after.values().flatten().copied().collect();
    let left: BTreeSet<u64> = edit
        .stages_before
        .values()
        .flatten()
        .copied()
        .filter(|version| !after.contains(version))
        .collect();
    if let Some(aliases) = desired
        .models
        .get(model)
        .and_then(|m| m.spec.aliases.as_ref())
    {
        for (alias, target) in aliases {
            if left.contains(target) {
                output.message(format_args!(
                    "note: alias `{alias}` still points at version {target}, which no stage declares any more (reconcile archives it); edit `aliases` if the alias should move too."
                ));
            }
        }
    }
    if !dry_run {
        output.message(
            "Next: commit the change and open a pull request; `mlreg plan` shows what `mlreg reconcile` will do.",
        );
    }
    Ok(ExitStatus::Success)
}
