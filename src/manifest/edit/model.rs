//! Edits of one model's manifest that go beyond one stage change: point or remove aliases,
//! set `serving.prefer`, stop managing stages — alone or together (`promote` between an
//! alias and a stage, `migrate stages-to-aliases`).
//!
//! The intended result is computed on the spec first ([`ManifestChange::apply`]); the text
//! splices are derived from the difference between the old and the new spec, section by
//! section, in the style of the file (`mapping`); the edited text is then read back and
//! must declare exactly the intended spec (`verify`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::change::{self, Intent, StageChange};
use super::locate::{self, Located};
use super::mapping::{MappingText, yaml_string};
use super::splice::{self, Splice};
use super::verify::{stages_of, verify_spec};
use super::{EditError, EditOutcome, Result, same_versions, stage_versions};
use crate::manifest::{
    DesiredModel, DesiredState, ModelSpec, Serving, VersionRef, validate_alias_name,
};
use crate::stage::Stage;
use crate::target::Target;

/// One change to a model's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestChange {
    /// The stages change (see [`StageChange`]); at most one per edit.
    Stages(StageChange),
    /// `alias` points at `version` (added, or moved).
    SetAlias {
        /// The alias name.
        alias: String,
        /// The version it points at.
        version: u64,
    },
    /// `alias` names the version `selector` names (`set-alias MODEL ALIAS run:ID`);
    /// reconcile registers it when no version matches.
    SelectAlias {
        /// The alias name.
        alias: String,
        /// The selector written as its value.
        selector: crate::manifest::Selector,
    },
    /// `alias` leaves `aliases` (reconcile then deletes it from the registry).
    DeleteAlias {
        /// The alias name.
        alias: String,
    },
    /// `version` (a number or a selector) goes to `stage` and leaves the other stage, as
    /// [`StageChange::Place`] does for a number; `Archived`/`None`: it leaves `stages`.
    /// Used when a selector is involved (`set-stage MODEL run:ID Staging`, or a model whose
    /// stages already hold one): every stage whose content changes has its whole value
    /// written again (a scalar for one entry, a flow list for more, `[]` for none).
    PlaceVersion {
        /// The version number or selector.
        version: crate::manifest::VersionRef,
        /// Staging or Production; Archived or None to take it out of `stages`.
        stage: crate::stage::Stage,
        /// Add it next to what `stage` holds instead of replacing that.
        keep_existing: bool,
    },
    /// `serving.prefer` becomes these targets.
    Prefer(Vec<Target>),
    /// `stages` is removed: mlreg stops managing the model's stages.
    DropStages,
}

/// A verified edit of one model's manifest file, not yet written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEdit {
    /// The model whose manifest changes.
    pub model: String,
    /// The manifest file (as the loader named it).
    pub file: PathBuf,
    /// The file's text before the edit.
    pub before: String,
    /// The file's text after the edit.
    pub after: String,
    /// What the model declared before.
    pub spec_before: ModelSpec,
    /// What it declares after.
    pub spec_after: ModelSpec,
}

/// Computes and verifies the edit of `model`'s manifest that `changes` describe, on the
/// manifests of `desired` (as loaded; the file text comes from its source map).
pub fn edit_model(
    desired: &DesiredState,
    model: &str,
    changes: &[ManifestChange],
) -> Result<EditOutcome> {
    let declared = super::declared_model(desired, model)?;
    let file = declared.file().to_path_buf();
    let text = super::source_text(desired, &file)?;

    // 1. The intended spec.
    let mut intended = declared.spec.clone();
    let mut stage_change = None;
    let mut placed = false;
    let mut unchanged = Vec::new();
    for change in changes {
        let second = match change {
            ManifestChange::Stages(stage) => stage_change.replace(*stage).is_some() || placed,
            ManifestChange::PlaceVersion { .. } => {
                std::mem::replace(&mut placed, true) || stage_change.is_some()
            }
            _ => false,
        };
        if second {
            return Err(EditError::Unsupported {
                location: file.display().to_string(),
                what: "two stage changes in one edit".to_owned(),
            });
        }
        if let Some(why) = change.apply(declared, &mut intended)? {
            unchanged.push(why);
        }
    }
    if intended == declared.spec {
        return Ok(EditOutcome::Unchanged(if unchanged.is_empty() {
            "the manifest already declares that".to_owned()
        } else {
            unchanged.join("; ")
        }));
    }

    // 2. The splices, section by section.
    let mut splices: Vec<Splice> = Vec::new();
    let root = locate::document_mapping(text, &file, declared)?;
    let root_text = MappingText::read(text, &file, &root, 0)?;
    let spec_node = locate::spec_mapping(text, &file, declared)?;
    let spec_text = root_text
        .child(&root, "spec")?
        .ok_or_else(|| root_text.unsupported(0, "the model's document has no `spec` mapping"))?;
    if let Some(stage) = &stage_change
        && intended.stages.is_some()
    {
        splices.extend(stage_splices(text, &file, declared, stage)?);
    }
    if placed && intended.stages.is_some() {
        splices.extend(stage_value_splices(
            &spec_text,
            &spec_node,
            &declared.spec,
            &intended,
        )?);
    }
    if declared.spec.stages.is_some() && intended.stages.is_none() {
        splices.extend(spec_text.remove("stages")?);
    }
    let (aliases_before, aliases_after) = (alias_texts(&declared.spec)?, alias_texts(&intended)?);
    if aliases_after != aliases_before {
        splices.extend(alias_splices(
            &spec_text,
            &spec_node,
            aliases_before.as_ref(),
            aliases_after.as_ref().unwrap_or(&BTreeMap::new()),
        )?);
    }
    let prefer = |spec: &ModelSpec| spec.serving.as_ref().and_then(|s| s.prefer.clone());
    if prefer(&intended) != prefer(&declared.spec) {
        let targets = prefer(&intended).unwrap_or_default();
        let list = flow_list(&targets)?;
        match spec_text.child(&spec_node, "serving")? {
            Some(serving) => splices.extend(serving.set("prefer", "prefer", &list)?),
            None => splices.extend(spec_text.set(
                "serving",
                "serving",
                &format!("{{prefer: {list}}}"),
            )?),
        }
    }
    let edited = splice::apply(text, splices).map_err(|detail| EditError::Verification {
        file: file.clone(),
        detail,
    })?;

    // 3. Read back.
    let siblings: Vec<&DesiredModel> = desired
        .models
        .values()
        .filter(|other| other.file() == file)
        .collect();
    verify_spec(&file, &edited, &siblings, model, &intended)?;
    Ok(EditOutcome::Edited(Box::new(ManifestEdit {
        model: model.to_owned(),
        file,
        before: text.to_owned(),
        after: edited,
        spec_before: declared.spec.clone(),
        spec_after: intended,
    })))
}

impl ManifestChange {
    /// Applies the change to `spec` (the declaration of `declared`, being edited); says why
    /// when it changes nothing.
    fn apply(&self, declared: &DesiredModel, spec: &mut ModelSpec) -> Result<Option<String>> {
        match self {
            ManifestChange::Stages(stage) => {
                change::check(stage)?;
                if spec.stages.is_none() {
                    return Err(EditError::NoStages {
                        model: declared.name.clone(),
                        file: declared.file().to_path_buf(),
                    });
                }
                let before = stage_versions(spec);
                match change::intended(&before, stage) {
                    Ok(after) => spec.stages = Some(stages_of(&after)),
                    Err(Intent::Unchanged(why)) => return Ok(Some(why)),
                    Err(Intent::EmptySource(stage)) => {
                        return Err(EditError::EmptySource {
                            model: declared.name.clone(),
                            stage,
                            file: declared.file().to_path_buf(),
                        });
                    }
                }
            }
            ManifestChange::SetAlias { alias, version } => {
                if let Err(problem) = validate_alias_name(alias) {
                    return Err(EditError::InvalidAlias {
                        alias: alias.clone(),
                        problem,
                    });
                }
                spec.aliases
                    .get_or_insert_with(BTreeMap::new)
                    .insert(alias.clone(), *version);
                spec.selectors.remove(&Target::Alias(alias.clone()));
            }
            ManifestChange::SelectAlias { alias, selector } => {
                if let Err(problem) = validate_alias_name(alias) {
                    return Err(EditError::InvalidAlias {
                        alias: alias.clone(),
                        problem,
                    });
                }
                spec.aliases.get_or_insert_with(BTreeMap::new).remove(alias);
                spec.selectors.insert(
                    Target::Alias(alias.clone()),
                    std::collections::BTreeSet::from([selector.clone()]),
                );
            }
            ManifestChange::DeleteAlias { alias } => {
                let removed_number = spec
                    .aliases
                    .as_mut()
                    .and_then(|aliases| aliases.remove(alias));
                let removed_selector = spec.selectors.remove(&Target::Alias(alias.clone()));
                if removed_number.is_none() && removed_selector.is_none() {
                    return Ok(Some(format!("alias `{alias}` is not declared")));
                }
            }
            ManifestChange::PlaceVersion {
                version,
                stage,
                keep_existing,
            } => {
                if spec.stages.is_none() {
                    return Err(EditError::NoStages {
                        model: declared.name.clone(),
                        file: declared.file().to_path_buf(),
                    });
                }
                return Ok(place_version(spec, version, *stage, *keep_existing));
            }
            ManifestChange::Prefer(targets) => {
                spec.serving.get_or_insert_with(Serving::default).prefer = Some(targets.clone());
            }
            ManifestChange::DropStages => spec.stages = None,
        }
        Ok(None)
    }
}

/// Puts `version` in `stage` of `spec` (out of `stages` for Archived/None), numbers in
/// `stages` and selectors in `selectors`; says why when nothing changes.
fn place_version(
    spec: &mut ModelSpec,
    version: &VersionRef,
    stage: Stage,
    keep_existing: bool,
) -> Option<String> {
    let holds = |spec: &ModelSpec, stage: Stage| match version {
        VersionRef::Number(number) => spec.versions_in(stage).contains(number),
        VersionRef::Select(selector) => spec
            .selectors
            .get(&Target::Stage(stage))
            .is_some_and(|selectors| selectors.contains(selector)),
    };
    if stage.is_declarable() && holds(spec, stage) {
        return Some(format!("{version} is already declared in {stage}"));
    }
    if !stage.is_declarable() && !Stage::DECLARABLE.iter().any(|s| holds(spec, *s)) {
        return Some(format!("{version} is not declared in any stage"));
    }
    for other in Stage::DECLARABLE {
        let clear = other == stage && !keep_existing;
        if let Some(numbers) = spec.stages.as_mut().and_then(|s| s.get_mut(other)) {
            if clear {
                numbers.clear();
            } else if let VersionRef::Number(number) = version {
                numbers.remove(number);
            }
        }
        let target = Target::Stage(other);
        if let Some(selectors) = spec.selectors.get_mut(&target) {
            if clear {
                selectors.clear();
            } else if let VersionRef::Select(selector) = version {
                selectors.remove(selector);
            }
            if selectors.is_empty() {
                spec.selectors.remove(&target);
            }
        }
    }
    if stage.is_declarable() {
        match version {
            VersionRef::Number(number) => {
                if let Some(numbers) = spec.stages.as_mut().and_then(|s| s.get_mut(stage)) {
                    numbers.insert(*number);
                }
            }
            VersionRef::Select(selector) => {
                spec.selectors
                    .entry(Target::Stage(stage))
                    .or_default()
                    .insert(selector.clone());
            }
        }
    }
    None
}

/// What each declarable stage of `spec` holds, as written in a stage's value: numbers
/// ascending, then selectors (`{run: ID}`).
fn stage_texts(spec: &ModelSpec) -> Result<BTreeMap<Stage, Vec<String>>> {
    let mut texts = BTreeMap::new();
    for stage in Stage::DECLARABLE {
        let mut items: Vec<String> = spec
            .versions_in(stage)
            .iter()
            .map(ToString::to_string)
            .collect();
        for selector in spec
            .selectors
            .get(&Target::Stage(stage))
            .into_iter()
            .flatten()
        {
            items.push(selector_text(selector)?);
        }
        texts.insert(stage, items);
    }
    Ok(texts)
}

/// The splices that write again the value of each stage whose content differs between
/// `before` and `after`: one entry as a scalar or flow mapping, more as a flow list, none as
/// `[]` (the key is kept: an exhaustive, empty stage). A missing stage is added with its
/// siblings' key spelling (`staging` when they are written in lower case).
fn stage_value_splices(
    spec_text: &MappingText<'_>,
    spec_node: &yaml_edit::Mapping,
    before: &ModelSpec,
    after: &ModelSpec,
) -> Result<Vec<Splice>> {
    let stages = spec_text
        .child(spec_node, "stages")?
        .ok_or_else(|| spec_text.unsupported(0, "`spec.stages` is not a plain mapping"))?;
    let (old, new) = (stage_texts(before)?, stage_texts(after)?);
    let written: Vec<(Stage, String)> = stages
        .keys()
        .filter_map(|key| Some((key.parse::<Stage>().ok()?, key.clone())))
        .collect();
    let lower = !written.is_empty() && written.iter().all(|(_, key)| *key == key.to_lowercase());
    let mut splices = Vec::new();
    for (stage, items) in &new {
        if old.get(stage) == Some(items) {
            continue;
        }
        let value = match items.as_slice() {
            [] => "[]".to_owned(),
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let key = match written.iter().find(|(s, _)| s == stage) {
            Some((_, key)) => key.clone(),
            None if lower => stage.as_str().to_lowercase(),
            None => stage.as_str().to_owned(),
        };
        splices.extend(stages.set(&key, &key, &value)?);
    }
    Ok(splices)
}

/// The splices of a stage change, in the style of the file's `stages`.
pub(super) fn stage_splices(
    text: &str,
    file: &std::path::Path,
    declared: &DesiredModel,
    change: &StageChange,
) -> Result<Vec<Splice>> {
    let located = Located::find(text, file, declared)?;
    if !same_versions(&located.written, &stage_versions(&declared.spec)) {
        return Err(located.unsupported(
            located.stages_offset,
            "the stages as written could not be matched with what the loader read (YAML anchors, aliases or tags?)",
        ));
    }
    match change::intended(&located.written, change) {
        Ok(after) => located.splices(&located.written, &after),
        Err(_) => Ok(Vec::new()),
    }
}

/// The splices that turn `before` (`None`: no `aliases` key) into `after`.
/// The value of each alias of `spec` as it is written: `3`, `{run: ID}`; `None` when
/// `aliases` is not declared.
fn alias_texts(spec: &ModelSpec) -> Result<Option<BTreeMap<String, String>>> {
    let Some(numbers) = &spec.aliases else {
        return Ok(None);
    };
    let mut texts: BTreeMap<String, String> = numbers
        .iter()
        .map(|(alias, version)| (alias.clone(), version.to_string()))
        .collect();
    for (target, selectors) in &spec.selectors {
        if let (Target::Alias(alias), Some(selector)) = (target, selectors.first()) {
            texts.insert(alias.clone(), selector_text(selector)?);
        }
    }
    Ok(Some(texts))
}

/// A selector as a flow mapping: `{run: 8f2c…}`, `{run: ID, artifactPath: clf}`,
/// `{loggedModel: m-…}` (ids quoted when YAML would read them as numbers).
fn selector_text(selector: &crate::manifest::Selector) -> Result<String> {
    use crate::manifest::{DEFAULT_ARTIFACT_PATH, Selector};
    Ok(match selector {
        Selector::Run {
            run_id,
            artifact_path,
        } if artifact_path == DEFAULT_ARTIFACT_PATH => format!("{{run: {}}}", yaml_string(run_id)?),
        Selector::Run {
            run_id,
            artifact_path,
        } => format!(
            "{{run: {}, artifactPath: {}}}",
            yaml_string(run_id)?,
            yaml_string(artifact_path)?
        ),
        Selector::LoggedModel { model_id } => {
            format!("{{loggedModel: {}}}", yaml_string(model_id)?)
        }
    })
}

fn alias_splices(
    spec: &MappingText<'_>,
    spec_node: &yaml_edit::Mapping,
    before: Option<&BTreeMap<String, String>>,
    after: &BTreeMap<String, String>,
) -> Result<Vec<Splice>> {
    let Some(before) = before else {
        // No `aliases` yet: one new entry holding them all.
        let entries = after
            .iter()
            .map(|(alias, version)| Ok(format!("{}: {version}", yaml_string(alias)?)))
            .collect::<Result<Vec<_>>>()?;
        return spec.set("aliases", "aliases", &format!("{{{}}}", entries.join(", ")));
    };
    let aliases = spec
        .child(spec_node, "aliases")?
        .ok_or_else(|| spec.unsupported(0, "`spec.aliases` was not found where it was read"))?;
    if after.is_empty() {
        // Every alias goes: the mapping becomes `{}` (exhaustive and empty).
        return spec.set("aliases", "aliases", "{}");
    }
    if aliases.is_flow() {
        // A flow mapping is one line: write it again, existing aliases in their order.
        let mut entries = Vec::with_capacity(after.len());
        for alias in aliases
            .keys()
            .chain(after.keys().filter(|a| !before.contains_key(*a)))
        {
            if let Some(version) = after.get(alias) {
                entries.push(format!("{}: {version}", yaml_string(alias)?));
            }
        }
        return Ok(vec![
            aliases.replace_flow(&format!("{{{}}}", entries.join(", "))),
        ]);
    }
    let mut splices = Vec::new();
    // A removed alias's line is reused for an added one (`promote @challenger → @champion`
    // renames the line in place), so a mapping never passes through empty.
    let mut removed = before
        .keys()
        .filter(|alias| !after.contains_key(*alias))
        .collect::<Vec<_>>()
        .into_iter();
    for (alias, version) in after {
        if before.contains_key(alias) {
            if before.get(alias) != Some(version) {
                splices.extend(aliases.set(alias, &yaml_string(alias)?, version)?);
            }
        } else if let Some(old) = removed.next() {
            splices.extend(aliases.rename(old, &yaml_string(alias)?, version)?);
        } else {
            splices.extend(aliases.set(alias, &yaml_string(alias)?, version)?);
        }
    }
    for alias in removed {
        if !aliases.contains(alias) {
            return Err(aliases.unsupported(0, "an alias was not found where it was read"));
        }
        splices.extend(aliases.remove(alias)?);
    }
    Ok(splices)
}

/// `[Production, "@champion"]`.
fn flow_list(targets: &[Target]) -> Result<String> {
    let items = targets
        .iter()
        .map(|target| yaml_string(&target.to_string()))
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("[{}]", items.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_dir;
    use crate::stage::Stage;

    const HEAD: &str = "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n";

    fn edited(text: &str, changes: &[ManifestChange]) -> String {
        let directory = tempfile::tempdir().expect("temp dir");
        std::fs::write(directory.path().join("m.yaml"), text).expect("write");
        let desired = load_dir(directory.path()).expect("valid manifests");
        match edit_model(&desired, "m", changes).expect("edit") {
            EditOutcome::Edited(edit) => edit.after,
            EditOutcome::Unchanged(why) => panic!("unchanged: {why}"),
        }
    }

    fn set(alias: &str, version: u64) -> ManifestChange {
        ManifestChange::SetAlias {
            alias: alias.into(),
            version,
        }
    }

    fn delete(alias: &str) -> ManifestChange {
        ManifestChange::DeleteAlias {
            alias: alias.into(),
        }
    }

    #[test]
    fn aliases_move_are_added_and_removed_in_the_block_style() {
        let text = format!(
            "{HEAD}  aliases:\n    champion: 3      # serving\n    challenger: 4    # next\n  retention: {{keepLatest: 2}}\n"
        );
        assert_eq!(
            edited(&text, &[set("champion", 4), delete("challenger")]),
            format!(
                "{HEAD}  aliases:\n    champion: 4      # serving\n  retention: {{keepLatest: 2}}\n"
            )
        );
        assert_eq!(
            edited(&text, &[set("shadow", 5)]),
            format!(
                "{HEAD}  aliases:\n    champion: 3      # serving\n    challenger: 4    # next\n    shadow: 5\n  retention: {{keepLatest: 2}}\n"
            )
        );
        assert_eq!(
            edited(&text, &[delete("champion"), delete("challenger")]),
            format!("{HEAD}  aliases: {{}}\n  retention: {{keepLatest: 2}}\n")
        );
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let text =
            format!("{HEAD}  aliases:\n    champion: 3\n    challenger: 4\n").replace('\n', "\r\n");
        assert_eq!(
            edited(&text, &[set("shadow", 5), delete("challenger")]),
            format!("{HEAD}  aliases:\n    champion: 3\n    shadow: 5\n").replace('\n', "\r\n")
        );
    }

    #[test]
    fn flow_aliases_and_missing_aliases() {
        let text = format!("{HEAD}  aliases: {{champion: 3, challenger: 4}}\n");
        assert_eq!(
            edited(&text, &[delete("champion"), set("shadow", 1)]),
            format!("{HEAD}  aliases: {{challenger: 4, shadow: 1}}\n")
        );
        let text = format!("{HEAD}  description: d\n");
        assert_eq!(
            edited(&text, &[set("champion", 3)]),
            format!("{HEAD}  description: d\n  aliases: {{champion: 3}}\n")
        );
    }

    #[test]
    fn serving_prefer_is_set_where_serving_is_or_added() {
        let champion = Target::Alias("champion".into());
        let production = Target::Stage(Stage::Production);
        let prefer = ManifestChange::Prefer(vec![champion.clone(), production]);
        let text = format!("{HEAD}  description: d\n");
        assert_eq!(
            edited(&text, std::slice::from_ref(&prefer)),
            format!("{HEAD}  description: d\n  serving: {{prefer: [\"@champion\", Production]}}\n")
        );
        let text = format!("{HEAD}  serving:\n    localFallback: models/m   # offline copy\n");
        assert_eq!(
            edited(&text, std::slice::from_ref(&prefer)),
            format!(
                "{HEAD}  serving:\n    localFallback: models/m   # offline copy\n    prefer: [\"@champion\", Production]\n"
            )
        );
        let text =
            format!("{HEAD}  serving:\n    prefer:\n      - Production\n    localFallback: x\n");
        assert_eq!(
            edited(&text, &[ManifestChange::Prefer(vec![champion])]),
            format!("{HEAD}  serving:\n    prefer: [\"@champion\"]\n    localFallback: x\n")
        );
    }

    #[test]
    fn a_migration_keeps_every_comment_outside_the_edited_lines() {
        let text = format!(
            "# Fraud detector, owned by the risk team.\n{HEAD}  description: Fraud   # shown in the UI\n  # Stages, until the aliases take over.\n  stages:\n    Production: 3     # since May\n    Staging: [4]\n  aliases:\n    shadow: 2\n  retention:\n    keepLatest: 2     # keep two spares\n"
        );
        let after = edited(
            &text,
            &[
                set("champion", 3),
                set("challenger", 4),
                ManifestChange::Prefer(vec![
                    Target::Alias("champion".into()),
                    Target::Alias("challenger".into()),
                ]),
                ManifestChange::DropStages,
            ],
        );
        assert_eq!(
            after,
            format!(
                "# Fraud detector, owned by the risk team.\n{HEAD}  description: Fraud   # shown in the UI\n  # Stages, until the aliases take over.\n  aliases:\n    shadow: 2\n    challenger: 4\n    champion: 3\n  retention:\n    keepLatest: 2     # keep two spares\n  serving: {{prefer: [\"@champion\", \"@challenger\"]}}\n"
            )
        );
    }

    #[test]
    fn stage_and_alias_changes_together() {
        let text = format!("{HEAD}  stages:\n    Staging: 4\n  aliases:\n    challenger: 4\n");
        assert_eq!(
            edited(
                &text,
                &[
                    ManifestChange::Stages(StageChange::Promote {
                        from: Stage::Staging,
                        to: Stage::Production
                    }),
                    set("champion", 4),
                    delete("challenger"),
                ]
            ),
            format!(
                "{HEAD}  stages:\n    Staging: []\n    Production: 4\n  aliases:\n    champion: 4\n"
            )
        );
    }

    #[test]
    fn refusals_write_nothing() {
        let directory = tempfile::tempdir().expect("temp dir");
        let text = format!("{HEAD}  aliases: {{champion: 3}}\n");
        std::fs::write(directory.path().join("m.yaml"), &text).expect("write");
        let desired = load_dir(directory.path()).expect("valid manifests");
        assert!(matches!(
            edit_model(&desired, "m", &[set("latest", 3)]),
            Err(EditError::InvalidAlias { .. })
        ));
        assert!(matches!(
            edit_model(&desired, "nope", &[set("x", 3)]),
            Err(EditError::NotManaged { .. })
        ));
        assert!(matches!(
            edit_model(&desired, "m", &[set("champion", 3)]),
            Ok(EditOutcome::Unchanged(_))
        ));
        assert!(matches!(
            edit_model(
                &desired,
                "m",
                &[ManifestChange::Stages(StageChange::Remove { version: 3 })]
            ),
            Err(EditError::NoStages { .. })
        ));
    }

    fn staged(text: &str, version: &str, stage: Stage, keep_existing: bool) -> EditOutcome {
        let directory = tempfile::tempdir().expect("temp dir");
        std::fs::write(directory.path().join("m.yaml"), text).expect("write");
        let desired = load_dir(directory.path()).expect("valid manifests");
        let version: VersionRef = version.parse().expect("a version");
        super::super::set_stage(&desired, "m", &version, stage, keep_existing).expect("edit")
    }

    fn staged_text(text: &str, version: &str, stage: Stage) -> String {
        match staged(text, version, stage, false) {
            EditOutcome::Edited(edit) => edit.after,
            EditOutcome::Unchanged(why) => panic!("unchanged: {why}"),
        }
    }

    const RUN: &str = "8f2c1a9e0b7d4e55";

    #[test]
    fn a_selector_replaces_a_stages_numbers_and_keeps_comments() {
        let text = format!(
            "# owned by risk\n{HEAD}  stages:\n    Production: 3          # serving\n    Staging: [4, 5]        # candidates\n  aliases:\n    champion: 3   # keep\n"
        );
        assert_eq!(
            staged_text(&text, &format!("run:{RUN}"), Stage::Staging),
            format!(
                "# owned by risk\n{HEAD}  stages:\n    Production: 3          # serving\n    Staging: {{run: {RUN}}}        # candidates\n  aliases:\n    champion: 3   # keep\n"
            )
        );
        // A block list becomes the one selector; the other stage's lines are kept.
        let text = format!(
            "{HEAD}  stages:\n    Staging:\n      - 4\n      - 5\n    # the live one\n    Production: 3\n"
        );
        assert_eq!(
            staged_text(&text, "run:abc/clf", Stage::Staging),
            format!(
                "{HEAD}  stages:\n    Staging: {{run: abc, artifactPath: clf}}\n    # the live one\n    Production: 3\n"
            )
        );
        // A missing stage is added in its siblings' spelling.
        let text = format!("{HEAD}  stages:\n    production: 3\n");
        assert_eq!(
            staged_text(&text, "m-5d88", Stage::Staging),
            format!("{HEAD}  stages:\n    production: 3\n    staging: {{loggedModel: m-5d88}}\n")
        );
    }

    #[test]
    fn a_number_replaces_a_selector() {
        let text = format!(
            "{HEAD}  stages:\n    Production: 3    # serving\n    Staging: {{run: {RUN}}}   # from CI\n"
        );
        assert_eq!(
            staged_text(&text, "5", Stage::Staging),
            format!(
                "{HEAD}  stages:\n    Production: 3    # serving\n    Staging: 5   # from CI\n"
            )
        );
        // The number leaves the other stage, the selector stays where it is.
        let text =
            format!("{HEAD}  stages:\n    Production: [3, {{run: {RUN}}}]\n    Staging: 4\n");
        assert_eq!(
            staged_text(&text, "3", Stage::Staging),
            format!("{HEAD}  stages:\n    Production: {{run: {RUN}}}\n    Staging: 3\n")
        );
    }

    #[test]
    fn a_selector_moves_between_stages() {
        let text =
            format!("{HEAD}  stages: {{Staging: {{run: {RUN}}}, Production: 3}}   # one line\n");
        assert_eq!(
            staged_text(&text, &format!("run:{RUN}"), Stage::Production),
            format!("{HEAD}  stages: {{Staging: [], Production: {{run: {RUN}}}}}   # one line\n")
        );
        let text =
            format!("{HEAD}  stages:\n    Staging: [4, {{run: {RUN}}}]\n    Production: 3\n");
        match staged(&text, &format!("run:{RUN}"), Stage::Production, true) {
            EditOutcome::Edited(edit) => assert_eq!(
                edit.after,
                format!("{HEAD}  stages:\n    Staging: 4\n    Production: [3, {{run: {RUN}}}]\n")
            ),
            EditOutcome::Unchanged(why) => panic!("unchanged: {why}"),
        }
        // Archived takes it out of `stages`.
        assert_eq!(
            staged_text(&text, &format!("run:{RUN}"), Stage::Archived),
            format!("{HEAD}  stages:\n    Staging: 4\n    Production: 3\n")
        );
    }

    #[test]
    fn selector_stage_edits_that_change_nothing_or_cannot_be_made() {
        let text = format!("{HEAD}  stages:\n    Staging: {{run: {RUN}}}\n");
        assert!(matches!(
            staged(&text, &format!("run:{RUN}"), Stage::Staging, false),
            EditOutcome::Unchanged(_)
        ));
        assert!(matches!(
            staged(&text, "m-1", Stage::None, false),
            EditOutcome::Unchanged(_)
        ));
        // A different artifact path is a different selector.
        assert!(matches!(
            staged(&text, &format!("run:{RUN}/clf"), Stage::Staging, false),
            EditOutcome::Edited(_)
        ));
        let directory = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            directory.path().join("m.yaml"),
            format!("{HEAD}  description: no stages\n"),
        )
        .expect("write");
        let desired = load_dir(directory.path()).expect("valid manifests");
        let version: VersionRef = format!("run:{RUN}").parse().expect("a version");
        assert!(matches!(
            super::super::set_stage(&desired, "m", &version, Stage::Staging, false),
            Err(EditError::NoStages { .. })
        ));
    }

    #[test]
    fn the_change_is_described_with_its_selector() {
        let text = format!("{HEAD}  stages:\n    Staging: 4\n");
        let EditOutcome::Edited(edit) = staged(&text, &format!("run:{RUN}"), Stage::Staging, false)
        else {
            panic!("unchanged");
        };
        assert_eq!(
            super::super::describe_change(&edit.spec_before, &edit.spec_after),
            "Production: none, Staging: run 8f2c1a9 (was Production: none, Staging: 4)"
        );
    }
}
