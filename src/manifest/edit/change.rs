//! The intended change of an edit, on plain data: which versions end up in which stage.

use super::{EditError, Result, StageVersions};
use crate::stage::Stage;

/// What to change in a model's `stages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageChange {
    /// Every version declared in `from` moves to `to`, replacing what `to` held; `from`
    /// becomes `[]` (its key is kept: an exhaustive, empty stage).
    Promote {
        /// The stage the versions leave.
        from: Stage,
        /// The stage they go to.
        to: Stage,
    },
    /// `version` goes to `stage` and leaves the other stage. The versions `stage` held are
    /// replaced, unless `keep_existing`.
    Place {
        /// The version number.
        version: u64,
        /// Staging or Production.
        stage: Stage,
        /// Add the version next to those already in `stage` instead of replacing them.
        keep_existing: bool,
    },
    /// `version` leaves `stages` (it is archived at the next reconcile).
    Remove {
        /// The version number.
        version: u64,
    },
}

/// Refuses changes that name undeclarable stages or move a stage onto itself.
pub(super) fn check(change: &StageChange) -> Result<()> {
    let declarable = |stage: Stage, hint: &'static str| {
        if stage.is_declarable() {
            Ok(())
        } else {
            Err(EditError::NotDeclarable { stage, hint })
        }
    };
    match *change {
        StageChange::Promote { from, to } => {
            declarable(
                from,
                "`mlreg set-stage MODEL VERSION STAGE` places a single version",
            )?;
            declarable(
                to,
                "to retire versions, use `mlreg set-stage MODEL VERSION Archived`",
            )?;
            if from == to {
                return Err(EditError::SameStage { stage: from });
            }
            Ok(())
        }
        StageChange::Place { stage, .. } => declarable(
            stage,
            "use Archived or None to take a version out of `stages`",
        ),
        StageChange::Remove { .. } => Ok(()),
    }
}

/// Why no edit is computed.
pub(super) enum Intent {
    /// Nothing to change, and why.
    Unchanged(String),
    /// `promote` from an empty stage.
    EmptySource(Stage),
}

/// The stages after `change`.
pub(super) fn intended(
    before: &StageVersions,
    change: &StageChange,
) -> std::result::Result<StageVersions, Intent> {
    let in_stage = |stage: Stage| before.get(&stage).cloned().unwrap_or_default();
    let mut after = before.clone();
    match *change {
        StageChange::Promote { from, to } => {
            let moving = in_stage(from);
            if moving.is_empty() {
                return Err(Intent::EmptySource(from));
            }
            after.insert(to, moving);
            after.insert(from, Vec::new());
        }
        StageChange::Place {
            version,
            stage,
            keep_existing,
        } => {
            if in_stage(stage).contains(&version) {
                return Err(Intent::Unchanged(format!(
                    "version {version} is already declared in {stage}"
                )));
            }
            for (other, versions) in &mut after {
                if *other != stage {
                    versions.retain(|v| *v != version);
                }
            }
            let mut placed = if keep_existing {
                in_stage(stage)
            } else {
                Vec::new()
            };
            placed.push(version);
            after.insert(stage, placed);
        }
        StageChange::Remove { version } => {
            if !before.values().flatten().any(|v| *v == version) {
                return Err(Intent::Unchanged(format!(
                    "version {version} is not declared in any stage"
                )));
            }
            for versions in after.values_mut() {
                versions.retain(|v| *v != version);
            }
        }
    }
    Ok(after)
}
