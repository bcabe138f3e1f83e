//! What the lifecycle commands mean as manifest changes, decided on the spec alone:
//! `promote` between stages and aliases, and `migrate stages-to-aliases`.
//!
//! The rules (docs/lifecycle.md):
//! - Stage → stage: the versions of the source stage move to the target, replacing what it
//!   held; the source becomes `[]` (a version sits in one stage only).
//! - Alias → alias: the target alias points at the source alias's version, and the source
//!   alias leaves the manifest unless `--keep-source` (reconcile then deletes it).
//! - Stage → alias: the target alias points at the stage's one version; the stage keeps it
//!   (stages and aliases are independent, and taking it out would archive the version the
//!   alias now serves). A stage holding several versions is refused: an alias points at one.
//! - Alias → stage: the stage holds the alias's version, replacing what it held; the alias
//!   stays. Refused when that version is declared in the other stage (it would have to leave
//!   it, which is a second decision).
//! - Defaults: `Staging` → `Production` when the manifest declares `stages`, else
//!   `@challenger` → `@champion`.

use std::collections::BTreeMap;

use super::{ManifestChange, StageChange};
use crate::manifest::ModelSpec;
use crate::stage::{Stage, join_versions};
use crate::target::Target;

/// Why a promotion or a migration cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// Source and target are the same.
    #[error("--from and --to are both {0}: nothing would move")]
    Same(Target),
    /// The source alias is not declared.
    #[error(
        "alias @{alias} is not declared in the manifest of `{model}`: there is nothing to promote (`mlreg set-alias {model} {alias} VERSION` declares it)"
    )]
    NoSuchAlias {
        /// The model.
        model: String,
        /// The alias.
        alias: String,
    },
    /// A stage with no version as the source.
    #[error("model `{model}` declares no version in {stage}: there is nothing to promote")]
    EmptyStage {
        /// The model.
        model: String,
        /// The stage.
        stage: Stage,
    },
    /// A stage with several versions as the source of an alias.
    #[error("{stage} of `{model}` holds versions {}: an alias points at one version; choose it with `mlreg set-alias {model} {alias} VERSION`", join_versions(.versions, ", "))]
    SeveralVersions {
        /// The model.
        model: String,
        /// The stage.
        stage: Stage,
        /// Its versions.
        versions: Vec<u64>,
        /// The alias that was to point at one of them.
        alias: String,
    },
    /// The source alias's version sits in the other stage.
    #[error(
        "alias @{alias} of `{model}` points at version {version}, which the manifest declares in {declared}: moving it to {target} would take it out of {declared} too; do that on purpose with `mlreg set-stage {model} {version} {target}`"
    )]
    StagedElsewhere {
        /// The model.
        model: String,
        /// The source alias.
        alias: String,
        /// Its version.
        version: u64,
        /// Where the manifest declares that version.
        declared: Stage,
        /// The target stage.
        target: Stage,
    },
    /// A stage target while the manifest leaves stages alone.
    #[error(
        "the manifest of `{model}` declares no `stages`: mlreg leaves its stages alone; promote to an alias (`--to @champion`), or declare `spec.stages` first"
    )]
    NoStages {
        /// The model.
        model: String,
    },
}

/// The defaults of `promote`: `Staging` → `Production` when the manifest declares
/// `stages`, else `@challenger` → `@champion`.
pub fn default_promotion(spec: &ModelSpec) -> (Target, Target) {
    if spec.stages.is_some() {
        (
            Target::Stage(Stage::Staging),
            Target::Stage(Stage::Production),
        )
    } else {
        (
            Target::Alias("challenger".to_owned()),
            Target::Alias("champion".to_owned()),
        )
    }
}

/// The manifest changes of `promote --from from --to to` on `model`'s `spec`.
pub fn promotion(
    model: &str,
    spec: &ModelSpec,
    from: &Target,
    to: &Target,
    keep_source: bool,
) -> Result<Vec<ManifestChange>, LifecycleError> {
    if from == to {
        return Err(LifecycleError::Same(from.clone()));
    }
    let needs_stages = || {
        if spec.stages.is_some() {
            Ok(())
        } else {
            Err(LifecycleError::NoStages {
                model: model.to_owned(),
            })
        }
    };
    let alias_version = |alias: &str| {
        spec.aliases
            .as_ref()
            .and_then(|aliases| aliases.get(alias).copied())
            .ok_or_else(|| LifecycleError::NoSuchAlias {
                model: model.to_owned(),
                alias: alias.to_owned(),
            })
    };
    match (from, to) {
        (Target::Stage(from), Target::Stage(to)) => {
            needs_stages()?;
            Ok(vec![ManifestChange::Stages(StageChange::Promote {
                from: *from,
                to: *to,
            })])
        }
        (Target::Alias(source), Target::Alias(target)) => {
            // A source alias written as a selector passes the selector on: the target
            // names the same content.
            let selector = spec
                .selectors
                .get(&Target::Alias(source.clone()))
                .and_then(|selectors| selectors.first());
            let mut changes = vec![match selector {
                Some(selector) => ManifestChange::SelectAlias {
                    alias: target.clone(),
                    selector: selector.clone(),
                },
                None => ManifestChange::SetAlias {
                    alias: target.clone(),
                    version: alias_version(source)?,
                },
            }];
            if !keep_source {
                changes.push(ManifestChange::DeleteAlias {
                    alias: source.clone(),
                });
            }
            Ok(changes)
        }
        (Target::Stage(stage), Target::Alias(alias)) => {
            needs_stages()?;
            let versions: Vec<u64> = spec.versions_in(*stage).iter().copied().collect();
            match versions.as_slice() {
                [] => Err(LifecycleError::EmptyStage {
                    model: model.to_owned(),
                    stage: *stage,
                }),
                [version] => Ok(vec![ManifestChange::SetAlias {
                    alias: alias.clone(),
                    version: *version,
                }]),
                _ => Err(LifecycleError::SeveralVersions {
                    model: model.to_owned(),
                    stage: *stage,
                    versions,
                    alias: alias.clone(),
                }),
            }
        }
        (Target::Alias(alias), Target::Stage(stage)) => {
            needs_stages()?;
            let version = alias_version(alias)?;
            if let Some(declared) = spec.declared_stage_of(version)
                && declared != *stage
            {
                return Err(LifecycleError::StagedElsewhere {
                    model: model.to_owned(),
                    alias: alias.clone(),
                    version,
                    declared,
                    target: *stage,
                });
            }
            Ok(vec![ManifestChange::Stages(StageChange::Place {
                version,
                stage: *stage,
                keep_existing: false,
            })])
        }
    }
}

/// The default map of `migrate stages-to-aliases`: each stage's holder gets this alias.
pub fn default_migration_map() -> BTreeMap<Stage, String> {
    BTreeMap::from([
        (Stage::Production, "champion".to_owned()),
        (Stage::Staging, "challenger".to_owned()),
    ])
}

/// Why one model cannot be migrated (the others still are).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationRefusal {
    /// The manifest declares no `stages`: nothing to migrate.
    #[error("declares no `stages`: nothing to migrate")]
    NoStages,
    /// A stage holds several versions and cannot map to one alias.
    #[error("{stage} holds versions {}, and @{alias} can point at one only: keep one version in {stage} (`mlreg set-stage`), or declare the alias yourself (`mlreg set-alias`), then migrate again", join_versions(.versions, ", "))]
    SeveralVersions {
        /// The stage.
        stage: Stage,
        /// Its versions.
        versions: Vec<u64>,
        /// The alias it maps to.
        alias: String,
    },
}

/// The manifest changes that migrate one model from stages to aliases: each mapped stage's
/// holder also holds the mapped alias, `serving.prefer` names aliases instead of the stages
/// (the default `[Production, Staging]` becomes the mapped aliases), and with
/// `drop_stages` the model's `stages` go (mlreg then leaves stages alone).
pub fn migration(
    spec: &ModelSpec,
    map: &BTreeMap<Stage, String>,
    drop_stages: bool,
) -> Result<Vec<ManifestChange>, MigrationRefusal> {
    if spec.stages.is_none() {
        return Err(MigrationRefusal::NoStages);
    }
    let mut changes = Vec::new();
    for (stage, alias) in map {
        let versions: Vec<u64> = spec.versions_in(*stage).iter().copied().collect();
        match versions.as_slice() {
            [] => {}
            [version] => changes.push(ManifestChange::SetAlias {
                alias: alias.clone(),
                version: *version,
            }),
            _ => {
                return Err(MigrationRefusal::SeveralVersions {
                    stage: *stage,
                    versions,
                    alias: alias.clone(),
                });
            }
        }
    }
    let mut prefer: Vec<Target> = Vec::new();
    for target in spec.serving_targets() {
        let mapped = match &target {
            Target::Stage(stage) => map
                .get(stage)
                .map_or(target.clone(), |alias| Target::Alias(alias.clone())),
            Target::Alias(_) => target.clone(),
        };
        if !prefer.contains(&mapped) {
            prefer.push(mapped);
        }
    }
    changes.push(ManifestChange::Prefer(prefer));
    if drop_stages {
        changes.push(ManifestChange::DropStages);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::fixture;

    fn alias(name: &str) -> Target {
        Target::Alias(name.to_owned())
    }

    #[test]
    fn promotions_between_stages_and_aliases() {
        let spec = fixture::model("m")
            .stage(Stage::Production, &[3])
            .stage(Stage::Staging, &[4, 5])
            .alias("challenger", 4)
            .build()
            .spec;
        assert_eq!(
            promotion("m", &spec, &alias("challenger"), &alias("champion"), false),
            Ok(vec![
                ManifestChange::SetAlias {
                    alias: "champion".into(),
                    version: 4
                },
                ManifestChange::DeleteAlias {
                    alias: "challenger".into()
                }
            ])
        );
        assert_eq!(
            promotion("m", &spec, &alias("challenger"), &alias("champion"), true)
                .map(|changes| changes.len()),
            Ok(1)
        );
        assert!(matches!(
            promotion(
                "m",
                &spec,
                &Target::Stage(Stage::Staging),
                &alias("champion"),
                false
            ),
            Err(LifecycleError::SeveralVersions { .. })
        ));
        assert_eq!(
            promotion(
                "m",
                &spec,
                &Target::Stage(Stage::Production),
                &alias("champion"),
                false
            ),
            Ok(vec![ManifestChange::SetAlias {
                alias: "champion".into(),
                version: 3
            }])
        );
        // Version 4 is staged: promoting @challenger to Production would move it out.
        assert!(matches!(
            promotion(
                "m",
                &spec,
                &alias("challenger"),
                &Target::Stage(Stage::Production),
                false
            ),
            Err(LifecycleError::StagedElsewhere { version: 4, .. })
        ));
        assert!(matches!(
            promotion("m", &spec, &alias("nope"), &alias("champion"), false),
            Err(LifecycleError::NoSuchAlias { .. })
        ));
        assert!(matches!(
            promotion("m", &spec, &alias("champion"), &alias("champion"), false),
            Err(LifecycleError::Same(_))
        ));
        let aliases_only = fixture::model("m").alias("challenger", 4).build().spec;
        assert_eq!(
            default_promotion(&aliases_only),
            (alias("challenger"), alias("champion"))
        );
        assert!(matches!(
            promotion(
                "m",
                &aliases_only,
                &alias("challenger"),
                &Target::Stage(Stage::Production),
                false
            ),
            Err(LifecycleError::NoStages { .. })
        ));
    }

    #[test]
    fn migrations_map_single_holders_and_refuse_several() {
        let spec = fixture::model("m")
            .stage(Stage::Production, &[3])
            .stage(Stage::Staging, &[4])
            .build()
            .spec;
        assert_eq!(
            migration(&spec, &default_migration_map(), true),
            Ok(vec![
                ManifestChange::SetAlias {
                    alias: "challenger".into(),
                    version: 4
                },
                ManifestChange::SetAlias {
                    alias: "champion".into(),
                    version: 3
                },
                ManifestChange::Prefer(vec![alias("champion"), alias("challenger")]),
                ManifestChange::DropStages,
            ])
        );
        let several = fixture::model("m")
            .stage(Stage::Staging, &[4, 5])
            .build()
            .spec;
        assert!(matches!(
            migration(&several, &default_migration_map(), false),
            Err(MigrationRefusal::SeveralVersions { .. })
        ));
        let none = fixture::model("m").alias("champion", 1).build().spec;
        assert_eq!(
            migration(&none, &default_migration_map(), false),
            Err(MigrationRefusal::NoStages)
        );
    }
}
