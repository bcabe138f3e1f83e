//! The serving resolution policy of `mlreg resolve`: which model URI a serving process
//! should load, decided from what the registry said and what the manifest declares.
//!
//! The answer is the newest ready version in the requested stage; when that stage is
//! empty, Production falls back to Staging, then to the manifest's `serving.localFallback`.
//! When the registry cannot be asked, the manifest answers instead: the version it declares
//! in the stage (its source is then unknown), else the local fallback.
//!
//! Pure, so that every branch is a table test: the registry's answer ([`Lookup`]) and the
//! manifest's side ([`Declared`], built by the command from the loaded manifests) are
//! inputs; the result is typed ([`Answer`]: the [`Resolution`] or why there is none, and the
//! [`Note`]s to say on stderr), and [`crate::render::resolve`] turns it into text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::registry::ObservedModel;
use crate::stage::Stage;

/// What the registry said about the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The model as the registry holds it (`None`: the registry has no such model).
    Answered(Option<ObservedModel>),
    /// The registry could not be asked (not configured, unreachable, refused), and why.
    Unavailable(String),
}

/// What the manifest declares about the model, as far as serving is concerned. Its own
/// small type so the policy does not depend on the shape of the manifest model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// The manifest file that declares the model (as displayed, relative when possible).
    pub file: PathBuf,
    /// The versions declared per stage.
    pub stages: BTreeMap<Stage, Vec<u64>>,
    /// `serving.localFallback`.
    pub local_fallback: Option<String>,
}

/// Why the answer is not the requested stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Production was empty: Staging answered.
    Staging,
    /// No stage answered: the manifest's local fallback.
    Local,
}

/// Who gave the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// The registry (the version's source is known).
    Registry,
    /// The manifest (the registry could not be asked, or nothing in it serves).
    Manifest,
}

/// What to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The registered model.
    pub model: String,
    /// The version; `None` for the local fallback.
    pub version: Option<u64>,
    /// The stage the version was found in; `None` for the local fallback.
    pub stage: Option<Stage>,
    /// `models:/NAME/VERSION`, or the local fallback path.
    pub uri: String,
    /// The version's source; `None` when the registry could not be asked.
    pub source: Option<String>,
    /// `None` when the requested stage answered.
    pub fallback: Option<Fallback>,
    /// Who answered.
    pub answered_by: AnsweredBy,
}

/// Why nothing can be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No stage of the chain holds a version, and no manifest declares a local fallback.
    Nothing {
        /// The stages tried, in order.
        tried: Vec<Stage>,
    },
}

/// Something to tell the person (or log) on stderr; stdout holds only the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The registry could not be asked; the manifest (if any) answers.
    RegistryUnavailable {
        /// Why.
        why: String,
        /// The manifest that answers instead, if one declares the model.
        manifest: Option<PathBuf>,
    },
    /// The registry has no model of that name.
    NoSuchModel {
        /// The model.
        model: String,
    },
    /// The version comes from the manifest, so its source is unknown.
    FromManifest {
        /// The version declared.
        version: u64,
        /// The stage it is declared in.
        stage: Stage,
    },
    /// The requested stage held nothing; a later one of the chain answered.
    StageFallback {
        /// The stage asked for.
        requested: Stage,
        /// The stage that answered.
        serving: Stage,
    },
    /// No stage answered; the local fallback does.
    LocalFallback {
        /// The stages tried, in order.
        tried: Vec<Stage>,
        /// Whether the registry could not be asked (the stages tried are the manifest's).
        registry_unavailable: bool,
        /// The manifest declaring the fallback.
        manifest: Option<PathBuf>,
    },
}

/// A resolution (or why there is none) and the notes to say on stderr, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What to serve, or why nothing.
    pub resolution: Result<Resolution, Unresolved>,
    /// What to say about it.
    pub notes: Vec<Note>,
}

/// The stages tried for `stage`, in order: Production falls back to Staging; Staging does
/// not fall back to Production (a staging server must not serve production's model by
/// accident, nor the reverse be hidden).
pub fn targets(stage: Stage) -> &'static [Stage] {
    if stage == Stage::Production {
        &[Stage::Production, Stage::Staging]
    } else {
        &[Stage::Staging]
    }
}

/// Decides what to serve of `model` for `stage`.
pub fn resolve(
    model: &str,
    stage: Stage,
    registry: &Lookup,
    declared: Option<&Declared>,
) -> Answer {
    let chain = targets(stage);
    let mut notes = Vec::new();
    let manifest = declared.map(|declared| declared.file.clone());
    match registry {
        Lookup::Unavailable(why) => notes.push(Note::RegistryUnavailable {
            why: why.clone(),
            manifest: manifest.clone(),
        }),
        Lookup::Answered(None) => notes.push(Note::NoSuchModel {
            model: model.to_owned(),
        }),
        Lookup::Answered(Some(_)) => {}
    }
    for (index, stage) in chain.iter().copied().enumerate() {
        let fallback = (index > 0).then_some(Fallback::Staging);
        let found = match registry {
            Lookup::Answered(Some(observed)) => observed
                .versions_in(stage)
                .filter(|version| version.is_ready())
                .max_by_key(|version| version.version)
                .map(|version| {
                    (
                        version.version,
                        Some(version.source.clone()),
                        AnsweredBy::Registry,
                    )
                }),
            Lookup::Answered(None) => None,
            Lookup::Unavailable(_) => declared
                .and_then(|declared| declared.stages.get(&stage))
                .and_then(|versions| versions.iter().copied().max())
                .map(|version| (version, None, AnsweredBy::Manifest)),
        };
        if let Some((version, source, answered_by)) = found {
            if answered_by == AnsweredBy::Manifest {
                notes.push(Note::FromManifest { version, stage });
            }
            if fallback.is_some() {
                notes.push(Note::StageFallback {
                    requested: chain[0],
                    serving: stage,
                });
            }
            return Answer {
                resolution: Ok(Resolution {
                    model: model.to_owned(),
                    version: Some(version),
                    stage: Some(stage),
                    uri: format!("models:/{model}/{version}"),
                    source,
                    fallback,
                    answered_by,
                }),
                notes,
            };
        }
    }
    let local = declared.and_then(|declared| declared.local_fallback.clone());
    match local {
        Some(path) => {
            notes.push(Note::LocalFallback {
                tried: chain.to_vec(),
                registry_unavailable: matches!(registry, Lookup::Unavailable(_)),
                manifest,
            });
            Answer {
                resolution: Ok(Resolution {
                    model: model.to_owned(),
                    version: None,
                    stage: None,
                    uri: path.clone(),
                    source: Some(path),
                    fallback: Some(Fallback::Local),
                    answered_by: AnsweredBy::Manifest,
                }),
                notes,
            }
        }
        None => Answer {
            resolution: Err(Unresolved::Nothing {
                tried: chain.to_vec(),
            }),
            notes,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fake::observed_model;

    fn declared(stages: &[(Stage, u64)], local: Option<&str>) -> Declared {
        let mut map = BTreeMap::new();
        for (stage, version) in stages {
            map.entry(*stage).or_insert_with(Vec::new).push(*version);
        }
        Declared {
            file: PathBuf::from("m.yaml"),
            stages: map,
            local_fallback: local.map(str::to_owned),
        }
    }

    #[test]
    fn production_then_staging_then_local() {
        let registry = Lookup::Answered(Some(observed_model(
            "m",
            &[
                (1, Stage::Production),
                (2, Stage::Production),
                (3, Stage::Staging),
            ],
        )));
        let answer = resolve("m", Stage::Production, &registry, None);
        assert!(answer.notes.is_empty(), "{:?}", answer.notes);
        let resolution = answer.resolution.expect("resolves");
        assert_eq!(resolution.uri, "models:/m/2");
        assert_eq!(
            resolution.source.as_deref(),
            Some(observed_source(&registry, 2))
        );
        assert_eq!(resolution.fallback, None);
        assert_eq!(resolution.answered_by, AnsweredBy::Registry);

        let registry = Lookup::Answered(Some(observed_model("m", &[(3, Stage::Staging)])));
        let answer = resolve("m", Stage::Production, &registry, None);
        assert_eq!(
            answer.notes,
            vec![Note::StageFallback {
                requested: Stage::Production,
                serving: Stage::Staging
            }]
        );
        let resolution = answer.resolution.expect("resolves");
        assert_eq!(resolution.fallback, Some(Fallback::Staging));
        assert_eq!(resolution.stage, Some(Stage::Staging));

        let registry = Lookup::Answered(Some(observed_model("m", &[(1, Stage::Archived)])));
        let local = declared(&[], Some("models/m"));
        let resolution = resolve("m", Stage::Production, &registry, Some(&local))
            .resolution
            .expect("resolves");
        assert_eq!(resolution.fallback, Some(Fallback::Local));
        assert_eq!(resolution.uri, "models/m");
        assert_eq!(resolution.answered_by, AnsweredBy::Manifest);
        assert_eq!(
            resolve("m", Stage::Production, &registry, None).resolution,
            Err(Unresolved::Nothing {
                tried: vec![Stage::Production, Stage::Staging]
            })
        );
    }

    fn observed_source(lookup: &Lookup, version: u64) -> &str {
        match lookup {
            Lookup::Answered(Some(model)) => &model.versions[&version].source,
            _ => "",
        }
    }

    #[test]
    fn the_manifest_answers_when_the_registry_cannot() {
        let down = Lookup::Unavailable("connection refused".into());
        let manifest = declared(&[(Stage::Production, 4)], Some("models/m"));
        let answer = resolve("m", Stage::Production, &down, Some(&manifest));
        assert_eq!(
            answer.notes,
            vec![
                Note::RegistryUnavailable {
                    why: "connection refused".into(),
                    manifest: Some(PathBuf::from("m.yaml"))
                },
                Note::FromManifest {
                    version: 4,
                    stage: Stage::Production
                }
            ]
        );
        let resolution = answer.resolution.expect("resolves");
        assert_eq!(resolution.uri, "models:/m/4");
        assert_eq!(resolution.source, None);
        assert_eq!(resolution.answered_by, AnsweredBy::Manifest);

        // --stage Staging does not fall back to Production.
        let answer = resolve("m", Stage::Staging, &down, Some(&manifest));
        assert_eq!(
            answer.resolution.expect("resolves").fallback,
            Some(Fallback::Local)
        );
        assert!(matches!(
            answer.notes.last(),
            Some(Note::LocalFallback {
                registry_unavailable: true,
                ..
            })
        ));
        assert!(
            resolve("m", Stage::Production, &down, None)
                .resolution
                .is_err()
        );
    }

    #[test]
    fn an_unknown_model_is_noted() {
        let answer = resolve("m", Stage::Staging, &Lookup::Answered(None), None);
        assert_eq!(answer.notes, vec![Note::NoSuchModel { model: "m".into() }]);
        assert_eq!(
            answer.resolution,
            Err(Unresolved::Nothing {
                tried: vec![Stage::Staging]
            })
        );
    }
}
