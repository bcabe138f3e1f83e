//! In-place edits of a model's manifest (`mlreg promote`, `set-stage`, `set-alias`,
//! `migrate`) that keep everything else of the file byte for byte: comments, blank lines,
//! key order, quoting, indentation, line endings and the other documents of a
//! multi-document file. [`edit_stages`] changes `stages`; [`edit_model`] also points and
//! removes aliases, sets `serving.prefer` and drops `stages` (`model`, with the entries of
//! other mappings found and spliced by `mapping`).
//!
//! A stage edit is made in four steps, one module each:
//! 1. `change`: the intended change, on plain data (which versions end up in which
//!    stage), refused early when it names a stage that cannot be declared or would change
//!    nothing.
//! 2. `locate`: the file is parsed losslessly with `yaml-edit` only to *find* things: the
//!    document that declares the model (the one holding its `metadata.name`), its
//!    `spec.stages` mapping, each stage's key and value, and each item of a block list,
//!    as byte ranges of the text.
//! 3. `splice`: the change becomes a few text replacements at those ranges, each written
//!    in the style already there: a scalar stays a scalar while it holds one version, a
//!    flow list stays a flow list, a block list keeps the lines (and comments) of the
//!    versions it keeps, an emptied stage becomes `[]` and keeps its key, a missing stage
//!    is added next to its sibling with the same indentation, key spelling and value
//!    style. A trailing comment keeps its column when the value before it changes width.
//! 4. `verify`: the edited text is parsed again with the manifest loader itself
//!    ([`super::parse_text`]) and its models' specs are compared with the originals: the
//!    model's stages must hold exactly the intended versions, and every other part of every
//!    model of the file must be unchanged. Any difference (or a construct the editor does
//!    not handle, such as a YAML anchor on a stage) refuses the edit; nothing is written.
//!
//! [`write_atomically`] then replaces the file through a temporary file in the same
//! directory and a rename, after checking that the file still holds the text that was
//! edited (so a concurrent save is never overwritten).

mod change;
mod error;
pub mod lifecycle;
mod locate;
mod mapping;
mod model;
mod splice;
mod verify;

use std::collections::BTreeMap;
use std::io;

use super::{DesiredModel, DesiredState, ModelSpec, ReplaceError, VersionRef};
use crate::stage::Stage;

pub use change::StageChange;
pub use error::EditError;
pub use model::{ManifestChange, ManifestEdit, edit_model};

/// `Result` with the edit [`EditError`].
pub type Result<T, E = EditError> = std::result::Result<T, E>;

/// Versions per declarable stage, as plain numbers.
pub type StageVersions = BTreeMap<Stage, Vec<u64>>;

/// What an edit ([`edit_stages`], [`edit_model`]) found to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditOutcome {
    /// The file must change; the edit is verified.
    Edited(Box<ManifestEdit>),
    /// Nothing to change: the manifest already says so (the reason, for people).
    Unchanged(String),
}

/// Computes and verifies the edit of `model`'s `stages` that `change` describes, on the
/// manifests of `desired` (as loaded; the file text comes from its source map). The same
/// as [`edit_model`] with that one change.
pub fn edit_stages(
    desired: &DesiredState,
    model: &str,
    change: &StageChange,
) -> Result<EditOutcome> {
    edit_model(desired, model, &[ManifestChange::Stages(*change)])
}

/// The edit of `set-stage MODEL VERSION STAGE`: `version` (a number or a selector) goes to
/// `stage` (Staging or Production) and leaves the other stage, replacing what `stage` held
/// unless `keep_existing`; Archived or None take it out of `stages`. A number on a model
/// whose stages hold no selector is spliced in the style of the file ([`edit_stages`]);
/// otherwise each stage whose content changes has its value written again
/// ([`ManifestChange::PlaceVersion`]). Verified either way.
pub fn set_stage(
    desired: &DesiredState,
    model: &str,
    version: &VersionRef,
    stage: Stage,
    keep_existing: bool,
) -> Result<EditOutcome> {
    let declared = declared_model(desired, model)?;
    let stage_selectors = declared
        .spec
        .selectors
        .keys()
        .any(|target| matches!(target, crate::target::Target::Stage(_)));
    match version {
        VersionRef::Number(number) if !stage_selectors => {
            let change = match stage {
                Stage::Staging | Stage::Production => StageChange::Place {
                    version: *number,
                    stage,
                    keep_existing,
                },
                Stage::None | Stage::Archived => StageChange::Remove { version: *number },
            };
            edit_stages(desired, model, &change)
        }
        _ => edit_model(
            desired,
            model,
            &[ManifestChange::PlaceVersion {
                version: version.clone(),
                stage,
                keep_existing,
            }],
        ),
    }
}

/// Writes `edit.after` over `edit.file` atomically (see
/// [`super::write_file_atomically`]), only if the file still holds `edit.before`. A
/// symbolic link is followed: its target is replaced, the link is kept.
pub fn write_atomically(edit: &ManifestEdit) -> Result<()> {
    super::replace_if_unchanged(&edit.file, &edit.before, &edit.after).map_err(
        |error| match error {
            ReplaceError::ChangedOnDisk => EditError::ChangedOnDisk {
                file: edit.file.clone(),
            },
            ReplaceError::Io(source) => EditError::Io {
                file: edit.file.clone(),
                source,
            },
        },
    )
}

/// Says, for people, which versions a stage map holds: `Production: 3, Staging: [4, 5]`.
pub fn describe(stages: &StageVersions) -> String {
    Stage::DECLARABLE
        .iter()
        .map(|stage| {
            let versions = stages.get(stage).map(Vec::as_slice).unwrap_or_default();
            format!("{stage}: {}", describe_versions(versions))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Says, for people, what an edit changes in a model's declaration:
/// `Production: 4, Staging: none (was Production: 3, Staging: 4); @champion → 4 (was 3)`.
pub fn describe_change(before: &ModelSpec, after: &ModelSpec) -> String {
    let mut parts = Vec::new();
    match (&before.stages, &after.stages) {
        (Some(_), None) => {
            parts.push("no `stages` any more (mlreg leaves stages alone)".to_owned())
        }
        _ => {
            let (old, new) = (describe_stages(before), describe_stages(after));
            if old != new {
                parts.push(format!("{new} (was {old})"));
            }
        }
    }
    // Each alias's value as people read it: a number, or a selector (`run 8f2c…`).
    let values = |spec: &ModelSpec| -> BTreeMap<String, String> {
        let mut values: BTreeMap<String, String> = spec
            .aliases
            .iter()
            .flatten()
            .map(|(alias, version)| (alias.clone(), version.to_string()))
            .collect();
        for (target, selectors) in &spec.selectors {
            if let (crate::target::Target::Alias(alias), Some(selector)) =
                (target, selectors.first())
            {
                values.insert(alias.clone(), selector.to_string());
            }
        }
        values
    };
    let (old, new) = (&values(before), &values(after));
    for (alias, version) in new {
        match old.get(alias) {
            Some(previous) if previous == version => {}
            Some(previous) => parts.push(format!("@{alias} → {version} (was {previous})")),
            None => parts.push(format!("@{alias} → {version} (new)")),
        }
    }
    for (alias, version) in old {
        if !new.contains_key(alias) {
            parts.push(format!("@{alias} removed (was {version})"));
        }
    }
    let prefer = |spec: &ModelSpec| {
        spec.serving_targets()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if prefer(before) != prefer(after) {
        parts.push(format!(
            "serving.prefer [{}] (was [{}])",
            prefer(after),
            prefer(before)
        ));
    }
    if parts.is_empty() {
        "the same".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Says, for people, what each stage of `spec` holds, selectors included:
/// `Production: 3, Staging: run 8f2c1a9`.
fn describe_stages(spec: &ModelSpec) -> String {
    if spec.selectors.is_empty() {
        return describe(&stage_versions(spec));
    }
    Stage::DECLARABLE
        .iter()
        .map(|stage| {
            let mut items: Vec<String> = spec
                .versions_in(*stage)
                .iter()
                .map(ToString::to_string)
                .collect();
            let target = crate::target::Target::Stage(*stage);
            items.extend(
                spec.selectors
                    .get(&target)
                    .into_iter()
                    .flatten()
                    .map(|s| s.short()),
            );
            let held = match items.as_slice() {
                [] => "none".to_owned(),
                [one] => one.clone(),
                many => format!("[{}]", many.join(", ")),
            };
            format!("{stage}: {held}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `none`, `3` or `[4, 5]`.
pub fn describe_versions(versions: &[u64]) -> String {
    match versions {
        [] => "none".to_owned(),
        [one] => one.to_string(),
        many => splice::flow_list(many, locate::FlowStyle::default()),
    }
}

/// The model `model` of `desired`, or the error saying no manifest declares it.
fn declared_model<'d>(desired: &'d DesiredState, model: &str) -> Result<&'d DesiredModel> {
    desired
        .models
        .get(model)
        .ok_or_else(|| EditError::NotManaged {
            model: model.to_owned(),
            dir: desired.root.clone(),
        })
}

/// The text of `file` as the loader read it.
fn source_text<'d>(desired: &'d DesiredState, file: &std::path::Path) -> Result<&'d str> {
    desired.sources.get(file).ok_or_else(|| EditError::Io {
        file: file.to_path_buf(),
        source: io::Error::other("the file's text was not kept by the loader"),
    })
}

/// Both declarable stages of `spec`, ascending (empty when `stages` is absent).
pub fn stage_versions(spec: &ModelSpec) -> StageVersions {
    Stage::DECLARABLE
        .iter()
        .map(|stage| {
            let versions = spec.versions_in(*stage).iter().copied().collect();
            (*stage, versions)
        })
        .collect()
}

/// Whether two stage maps hold the same versions per stage, whatever their order.
fn same_versions(a: &StageVersions, b: &StageVersions) -> bool {
    let sorted = |versions: &StageVersions| -> BTreeMap<Stage, Vec<u64>> {
        versions
            .iter()
            .map(|(stage, numbers)| {
                let mut numbers = numbers.clone();
                numbers.sort_unstable();
                (*stage, numbers)
            })
            .collect()
    };
    sorted(a) == sorted(b)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::locate::{FlowStyle, flow_style};
    use super::splice::key_like;
    use super::*;

    fn load(text: &str) -> (tempfile::TempDir, DesiredState) {
        let directory = tempfile::tempdir().expect("temp dir");
        fs::write(directory.path().join("m.yaml"), text).expect("write");
        let state = super::super::load_dir(directory.path()).expect("valid manifests");
        (directory, state)
    }

    fn edited(text: &str, model: &str, change: StageChange) -> String {
        let (_directory, state) = load(text);
        match edit_stages(&state, model, &change).expect("edit") {
            EditOutcome::Edited(edit) => edit.after,
            EditOutcome::Unchanged(why) => panic!("unchanged: {why}"),
        }
    }

    const HEAD: &str = "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n";
    const PROMOTE: StageChange = StageChange::Promote {
        from: Stage::Staging,
        to: Stage::Production,
    };

    #[test]
    fn promote_keeps_scalars_and_comment_columns() {
        let text = format!(
            "{HEAD}  stages:\n    Production: 3          # serving\n    Staging: [4, 5]        # candidates\n"
        );
        assert_eq!(
            edited(&text, "m", PROMOTE),
            format!(
                "{HEAD}  stages:\n    Production: [4, 5]     # serving\n    Staging: []            # candidates\n"
            )
        );
    }

    #[test]
    fn block_lists_keep_their_lines() {
        let text = format!(
            "{HEAD}  stages:\n    Staging:   # candidates\n      - 4   # four\n\n      - 5\n    Production:\n      - 3\n"
        );
        assert_eq!(
            edited(&text, "m", PROMOTE),
            format!(
                "{HEAD}  stages:\n    Staging: [] # candidates\n\n    Production:\n      - 4\n      - 5\n"
            )
        );
        let place = StageChange::Place {
            version: 5,
            stage: Stage::Production,
            keep_existing: true,
        };
        assert_eq!(
            edited(&text, "m", place),
            format!(
                "{HEAD}  stages:\n    Staging:   # candidates\n      - 4   # four\n\n    Production:\n      - 3\n      - 5\n"
            )
        );
    }

    #[test]
    fn a_missing_stage_is_added_in_the_siblings_style() {
        let text = format!("{HEAD}  stages:\n    staging: 4\n");
        assert_eq!(
            edited(&text, "m", PROMOTE),
            format!("{HEAD}  stages:\n    staging: []\n    production: 4\n")
        );
        let text = format!("{HEAD}  stages: {{Staging: [ 4 ]}}\n");
        assert_eq!(
            edited(&text, "m", PROMOTE),
            format!("{HEAD}  stages: {{Staging: [], Production: [ 4 ]}}\n")
        );
        let text = format!("{HEAD}  stages: {{}}\n");
        let place = StageChange::Place {
            version: 2,
            stage: Stage::Staging,
            keep_existing: false,
        };
        assert_eq!(
            edited(&text, "m", place),
            format!("{HEAD}  stages: {{Staging: 2}}\n")
        );
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let text = format!("{HEAD}  stages:\n    Staging:\n      - 4\n").replace('\n', "\r\n");
        let place = StageChange::Place {
            version: 4,
            stage: Stage::Production,
            keep_existing: false,
        };
        assert_eq!(
            edited(&text, "m", place),
            format!("{HEAD}  stages:\n    Staging: []\n    Production:\n      - 4\n")
                .replace('\n', "\r\n")
        );
    }

    #[test]
    fn only_the_models_document_changes() {
        let text = format!(
            "{HEAD}  stages: {{Staging: 4}}\n---\n{}  stages: {{Staging: 4}}\n",
            HEAD.replace("name: m", "name: other")
        );
        let after = edited(&text, "other", PROMOTE);
        assert_eq!(
            after,
            format!(
                "{HEAD}  stages: {{Staging: 4}}\n---\n{}  stages: {{Staging: [], Production: 4}}\n",
                HEAD.replace("name: m", "name: other")
            )
        );
    }

    #[test]
    fn refusals() {
        let (_directory, state) = load(&format!("{HEAD}  stages:\n    Staging: []\n"));
        assert!(matches!(
            edit_stages(&state, "m", &PROMOTE),
            Err(EditError::EmptySource { .. })
        ));
        assert!(matches!(
            edit_stages(&state, "nope", &PROMOTE),
            Err(EditError::NotManaged { .. })
        ));
        let same = StageChange::Promote {
            from: Stage::Staging,
            to: Stage::Staging,
        };
        assert!(matches!(
            edit_stages(&state, "m", &same),
            Err(EditError::SameStage { .. })
        ));
        let archived = StageChange::Promote {
            from: Stage::Staging,
            to: Stage::Archived,
        };
        assert!(matches!(
            edit_stages(&state, "m", &archived),
            Err(EditError::NotDeclarable { .. })
        ));
        let (_directory, state) = load(&format!("{HEAD}  description: no stages\n"));
        assert!(matches!(
            edit_stages(&state, "m", &PROMOTE),
            Err(EditError::NoStages { .. })
        ));
        let (_directory, state) = load(&format!(
            "{HEAD}  stages:\n    Staging: &candidate 4\n  aliases:\n    next: *candidate\n"
        ));
        assert!(matches!(
            edit_stages(&state, "m", &PROMOTE),
            Err(EditError::Unsupported { .. })
        ));
    }

    #[test]
    fn already_there_is_unchanged() {
        let (_directory, state) = load(&format!("{HEAD}  stages:\n    Staging: [4, 5]\n"));
        let place = StageChange::Place {
            version: 5,
            stage: Stage::Staging,
            keep_existing: false,
        };
        assert!(matches!(
            edit_stages(&state, "m", &place),
            Ok(EditOutcome::Unchanged(_))
        ));
        assert!(matches!(
            edit_stages(&state, "m", &StageChange::Remove { version: 9 }),
            Ok(EditOutcome::Unchanged(_))
        ));
    }

    #[test]
    fn flow_styles() {
        assert_eq!(
            flow_style("[ 4 ,5 ]"),
            Some(FlowStyle {
                padded: true,
                tight: true
            })
        );
        assert_eq!(flow_style("[4, 5]"), Some(FlowStyle::default()));
        assert_eq!(flow_style("[4, &a 5]"), None);
        assert_eq!(
            key_like(Some("\"STAGING\""), Stage::Production),
            "\"PRODUCTION\""
        );
        assert_eq!(key_like(Some("Staging"), Stage::Production), "Production");
    }
}
