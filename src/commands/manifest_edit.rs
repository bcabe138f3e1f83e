//! What every command that edits manifests shares: print the diff of a verified edit, write
//! it atomically unless `--dry-run`, and say what changed.

use std::io::Write as _;

use crate::manifest::edit::{self, EditOutcome, ManifestEdit};
use crate::output::Output;
use crate::render::diff;

/// Prints the diff of a verified edit on stdout and, unless `dry_run`, writes the file;
/// says on stderr what happened. Returns the edit when there was one.
pub(super) fn finish(
    output: &Output,
    model: &str,
    outcome: EditOutcome,
    dry_run: bool,
) -> anyhow::Result<Option<ManifestEdit>> {
    let edit = match outcome {
        EditOutcome::Unchanged(why) => {
            output.message(format_args!("{model}: {why}; nothing to change."));
            return Ok(None);
        }
        EditOutcome::Edited(edit) => edit,
    };
    write_diff(output, &edit)?;
    let label = label(&edit);
    let change = edit::describe_change(&edit.spec_before, &edit.spec_after);
    if dry_run {
        output.message(format_args!(
            "Dry run: {label} was not written ({model}: {change})."
        ));
    } else {
        edit::write_atomically(&edit)?;
        output.message(format_args!(
            "Wrote {label}: {model} now declares {change}."
        ));
    }
    Ok(Some(*edit))
}

/// The unified diff of `edit` on stdout.
pub(super) fn write_diff(output: &Output, edit: &ManifestEdit) -> anyhow::Result<()> {
    let mut stdout = output.stdout();
    diff::write_unified(
        &mut stdout,
        &label(edit),
        &edit.before,
        &edit.after,
        output.color_stdout(),
    )?;
    stdout.flush()?;
    Ok(())
}

/// The file as diff headers and messages name it: `./x.yaml` (with `--dir .`) reads better
/// as `x.yaml`.
pub(super) fn label(edit: &ManifestEdit) -> String {
    edit.file
        .strip_prefix(".")
        .unwrap_or(&edit.file)
        .display()
        .to_string()
}

/// The closing advice after files were written.
pub(super) fn next_steps(output: &Output) {
    output.message(
        "Next: commit the change and open a pull request; `mlreg plan` shows what `mlreg reconcile` will do.",
    );
}
