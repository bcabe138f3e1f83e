//! The serving resolution policy of `mlreg resolve`: which model URI a serving process
//! should load, decided from what the registry said and what the manifest declares.
//!
//! The targets (stages and `@aliases`) are walked in order: those given on the command
//! line, else the manifest's `serving.prefer`, else Production then Staging. A stage answers
//! with its newest ready version, an alias with the (ready) version it points at; when no
//! target answers, the manifest's `serving.localFallback` does. When the registry cannot be
//! asked, the manifest stands in for it: the version it declares in the stage or for the
//! alias (its source is then unknown), else the local fallback. The URI is always pinned to
//! the version number (`models:/NAME/3`, never `models:/NAME@champion`), so a later alias
//! move cannot change what an already running server loads.
//!
//! Pure, so that every branch is a table test: the registry's answer ([`Lookup`]) and the
//! manifest's side ([`Declared`], built by the command from the loaded manifests) are
//! inputs; the result is typed ([`Answer`]: the [`Resolution`], which says which target
//! answered and which were passed over, or why there is none, and the [`Warning`]s to say
//! on stderr), and [`crate::render::resolve`] turns it into text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::registry::ObservedModel;
use crate::stage::Stage;
use crate::target::Target;

/// The targets tried when neither the command line nor the manifest names any. The same as
/// [`crate::manifest::ModelSpec::serving_targets`] without `serving.prefer` (a test checks).
pub const DEFAULT_TARGETS: [Target; 2] = [
    Target::Stage(Stage::Production),
    Target::Stage(Stage::Staging),
];

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
    /// The declared aliases (`spec.aliases`) and the version each points at.
    pub aliases: BTreeMap<String, u64>,
    /// The targets to walk when the command line names none: `serving.prefer`, or the
    /// default.
    pub targets: Vec<Target>,
    /// `serving.localFallback`.
    pub local_fallback: Option<String>,
}

/// Why the answer is not the first target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The first target(s) held nothing: a later one answered.
    LaterTarget,
    /// No target answered: the manifest's local fallback.
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
    /// The target that answered; `None` for the local fallback.
    pub target: Option<Target>,
    /// The targets walked, in order.
    pub targets: Vec<Target>,
    /// `models:/NAME/VERSION`, or the local fallback path.
    pub uri: String,
    /// The version's source; `None` when the registry could not be asked.
    pub source: Option<String>,
    /// `None` when the first target answered.
    pub fallback: Option<Fallback>,
    /// Who answered.
    pub answered_by: AnsweredBy,
    /// Whether the registry answered; `false`: the targets were looked up in the manifest.
    pub registry_answered: bool,
    /// The manifest that declares the model, when one does.
    pub manifest: Option<PathBuf>,
    /// The manifest's `serving.localFallback`, whether or not it answered: a serving
    /// process that cannot load the URI (the registry went down meanwhile) loads this.
    pub local_fallback: Option<String>,
}

impl Resolution {
    /// The stage that answered; `None` for an alias or the local fallback.
    pub fn stage(&self) -> Option<Stage> {
        self.target.as_ref().and_then(Target::stage)
    }

    /// The targets walked before the one that answered (all of them for the local fallback):
    /// each held no version.
    pub fn passed_over(&self) -> &[Target] {
        let answered = self
            .target
            .as_ref()
            .and_then(|target| self.targets.iter().position(|t| t == target))
            .unwrap_or(self.targets.len());
        &self.targets[..answered]
    }
}

/// Why nothing can be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No target holds a version, and no manifest declares a local fallback.
    Nothing {
        /// The targets tried, in order.
        tried: Vec<Target>,
        /// Whether the registry could not be asked (the targets tried are the manifest's).
        registry_unavailable: bool,
    },
}

/// Something that is always said on stderr, whatever the verbosity: the answer may not be
/// what the caller expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
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
}

/// A resolution (or why there is none) and the warnings to say on stderr, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What to serve, or why nothing.
    pub resolution: Result<Resolution, Unresolved>,
    /// What to warn about.
    pub warnings: Vec<Warning>,
}

/// The targets to walk: `requested` (the command line) when it names any, else the
/// manifest's, else [`DEFAULT_TARGETS`].
pub fn targets(requested: &[Target], declared: Option<&Declared>) -> Vec<Target> {
    if !requested.is_empty() {
        return requested.to_vec();
    }
    match declared {
        Some(declared) if !declared.targets.is_empty() => declared.targets.clone(),
        _ => DEFAULT_TARGETS.to_vec(),
    }
}

/// The old `--stage STAGE` as targets: Production fell back to Staging; Staging did not
/// fall back to Production (a staging server must not serve production's model by
/// accident, nor the reverse be hidden).
pub fn stage_targets(stage: Stage) -> Vec<Target> {
    if stage == Stage::Production {
        DEFAULT_TARGETS.to_vec()
    } else {
        vec![Target::Stage(stage)]
    }
}

/// The version `target` answers with in the registry's `model`, and its source.
fn from_registry(model: &ObservedModel, target: &Target) -> Option<(u64, String)> {
    let version = match target {
        Target::Stage(stage) => model
            .versions_in(*stage)
            .filter(|version| version.is_ready())
            .max_by_key(|version| version.version),
        // An alias pointing at a version that failed (or has not finished) registration
        // cannot be loaded; passing over it lets the next target answer.
        Target::Alias(alias) => model
            .aliases
            .get(alias)
            .and_then(|version| model.versions.get(version))
            .filter(|version| version.is_ready()),
    }?;
    Some((version.version, version.source.clone()))
}

/// The version the manifest declares for `target`: the newest of the stage's, or the
/// alias's.
fn from_manifest(declared: &Declared, target: &Target) -> Option<u64> {
    match target {
        Target::Stage(stage) => declared.stages.get(stage)?.iter().copied().max(),
        Target::Alias(alias) => declared.aliases.get(alias).copied(),
    }
}

/// Decides what to serve of `model`, walking `targets` (see [`targets`]) in order.
pub fn resolve(
    model: &str,
    targets: &[Target],
    registry: &Lookup,
    declared: Option<&Declared>,
) -> Answer {
    let mut warnings = Vec::new();
    let manifest = declared.map(|declared| declared.file.clone());
    match registry {
        Lookup::Unavailable(why) => warnings.push(Warning::RegistryUnavailable {
            why: why.clone(),
            manifest: manifest.clone(),
        }),
        Lookup::Answered(None) => warnings.push(Warning::NoSuchModel {
            model: model.to_owned(),
        }),
        Lookup::Answered(Some(_)) => {}
    }
    let local_fallback = declared.and_then(|declared| declared.local_fallback.clone());
    let registry_answered = matches!(registry, Lookup::Answered(_));
    let answered = targets.iter().enumerate().find_map(|(index, target)| {
        let found = match registry {
            Lookup::Answered(Some(observed)) => from_registry(observed, target)
                .map(|(version, source)| (version, Some(source), AnsweredBy::Registry)),
            Lookup::Answered(None) => None,
            Lookup::Unavailable(_) => declared
                .and_then(|declared| from_manifest(declared, target))
                .map(|version| (version, None, AnsweredBy::Manifest)),
        }?;
        Some((index, target, found))
    });
    let resolution = match answered {
        Some((index, target, (version, source, answered_by))) => Resolution {
            model: model.to_owned(),
            version: Some(version),
            target: Some(target.clone()),
            targets: targets.to_vec(),
            uri: format!("models:/{model}/{version}"),
            source,
            fallback: (index > 0).then_some(Fallback::LaterTarget),
            answered_by,
            registry_answered,
            manifest,
            local_fallback,
        },
        None => match local_fallback {
            Some(path) => Resolution {
                model: model.to_owned(),
                version: None,
                target: None,
                targets: targets.to_vec(),
                uri: path.clone(),
                source: Some(path.clone()),
                fallback: Some(Fallback::Local),
                answered_by: AnsweredBy::Manifest,
                registry_answered,
                manifest,
                local_fallback: Some(path),
            },
            None => {
                return Answer {
                    resolution: Err(Unresolved::Nothing {
                        tried: targets.to_vec(),
                        registry_unavailable: !registry_answered,
                    }),
                    warnings,
                };
            }
        },
    };
    Answer {
        resolution: Ok(resolution),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fake::observed_model;

    fn stage(stage: Stage) -> Target {
        Target::Stage(stage)
    }

    fn alias(name: &str) -> Target {
        Target::Alias(name.to_owned())
    }

    fn declared(
        stages: &[(Stage, u64)],
        aliases: &[(&str, u64)],
        prefer: &[Target],
        local: Option<&str>,
    ) -> Declared {
        let mut map = BTreeMap::new();
        for (stage, version) in stages {
            map.entry(*stage).or_insert_with(Vec::new).push(*version);
        }
        Declared {
            file: PathBuf::from("m.yaml"),
            stages: map,
            aliases: aliases
                .iter()
                .map(|(alias, version)| ((*alias).to_owned(), *version))
                .collect(),
            targets: if prefer.is_empty() {
                DEFAULT_TARGETS.to_vec()
            } else {
                prefer.to_vec()
            },
            local_fallback: local.map(str::to_owned),
        }
    }

    /// The registry holding versions 1..=3 (1, 2 in Production, 3 in Staging), `champion`
    /// at 1 and `challenger` at 3.
    fn registry() -> Lookup {
        let mut model = observed_model(
            "m",
            &[
                (1, Stage::Production),
                (2, Stage::Production),
                (3, Stage::Staging),
            ],
        );
        model.aliases.insert("champion".into(), 1);
        model.aliases.insert("challenger".into(), 3);
        Lookup::Answered(Some(model))
    }

    fn uri(answer: &Answer) -> Result<&str, &Unresolved> {
        answer.resolution.as_ref().map(|r| r.uri.as_str())
    }

    #[test]
    fn targets_come_from_the_command_line_then_serving_prefer_then_the_default() {
        let manifest = declared(&[], &[], &[alias("champion")], None);
        assert_eq!(
            targets(&[stage(Stage::Staging)], Some(&manifest)),
            vec![stage(Stage::Staging)]
        );
        assert_eq!(targets(&[], Some(&manifest)), vec![alias("champion")]);
        assert_eq!(targets(&[], None), DEFAULT_TARGETS.to_vec());
        let no_prefer = Declared::default();
        assert_eq!(targets(&[], Some(&no_prefer)), DEFAULT_TARGETS.to_vec());
        assert_eq!(stage_targets(Stage::Production), DEFAULT_TARGETS.to_vec());
        assert_eq!(stage_targets(Stage::Staging), vec![stage(Stage::Staging)]);
    }

    /// Targets walked, the URI expected, the target that answers, the fallback.
    type Case<'a> = (&'a [Target], &'a str, Option<Target>, Option<Fallback>);

    #[test]
    fn each_kind_of_target_answers_from_the_registry() {
        let registry = registry();
        let cases: &[Case] = &[
            // A stage: its newest ready version.
            (
                &DEFAULT_TARGETS,
                "models:/m/2",
                Some(stage(Stage::Production)),
                None,
            ),
            // An alias: the version it points at, pinned to the number.
            (
                &[alias("champion")],
                "models:/m/1",
                Some(alias("champion")),
                None,
            ),
            (
                &[
                    alias("canary"),
                    alias("challenger"),
                    stage(Stage::Production),
                ],
                "models:/m/3",
                Some(alias("challenger")),
                Some(Fallback::LaterTarget),
            ),
            (
                &[alias("canary"), stage(Stage::Production)],
                "models:/m/2",
                Some(stage(Stage::Production)),
                Some(Fallback::LaterTarget),
            ),
            // Nothing answers: the local fallback.
            (&[alias("canary")], "models/m", None, Some(Fallback::Local)),
        ];
        let manifest = declared(&[], &[], &[], Some("models/m"));
        for (targets, expected, target, fallback) in cases {
            let answer = resolve("m", targets, &registry, Some(&manifest));
            assert!(answer.warnings.is_empty(), "{:?}", answer.warnings);
            let resolution = answer.resolution.expect("resolves");
            assert_eq!(resolution.uri, *expected, "{targets:?}");
            assert_eq!(&resolution.target, target, "{targets:?}");
            assert_eq!(&resolution.fallback, fallback, "{targets:?}");
            assert_eq!(resolution.targets, targets.to_vec());
            assert_eq!(resolution.local_fallback.as_deref(), Some("models/m"));
        }

        let answer = resolve("m", &[alias("champion")], &registry, None);
        let resolution = answer.resolution.expect("resolves");
        assert_eq!(resolution.source.as_deref(), Some("s3://bucket/m/1"));
        assert_eq!(resolution.answered_by, AnsweredBy::Registry);
        assert_eq!(resolution.stage(), None);
        assert!(resolution.passed_over().is_empty());

        let targets = [alias("canary"), stage(Stage::Staging)];
        let resolution = resolve("m", &targets, &registry, None)
            .resolution
            .expect("resolves");
        assert_eq!(resolution.stage(), Some(Stage::Staging));
        assert_eq!(resolution.passed_over(), &[alias("canary")]);
    }

    #[test]
    fn an_alias_at_a_version_that_is_not_ready_is_passed_over() {
        let Lookup::Answered(Some(mut model)) = registry() else {
            unreachable!("the registry answers");
        };
        if let Some(version) = model.versions.get_mut(&1) {
            version.status = "FAILED_REGISTRATION".into();
        }
        // Version 1 failed: Production's newest ready version is still 2.
        let targets = [alias("champion"), stage(Stage::Production)];
        let answer = resolve("m", &targets, &Lookup::Answered(Some(model)), None);
        assert_eq!(uri(&answer), Ok("models:/m/2"));
    }

    #[test]
    fn nothing_to_serve_names_the_targets_tried() {
        let targets = [alias("champion")];
        let answer = resolve("m", &targets, &Lookup::Answered(None), None);
        assert_eq!(
            answer.warnings,
            vec![Warning::NoSuchModel { model: "m".into() }]
        );
        assert_eq!(
            answer.resolution,
            Err(Unresolved::Nothing {
                tried: vec![alias("champion")],
                registry_unavailable: false,
            })
        );
    }

    #[test]
    fn the_manifest_answers_when_the_registry_cannot() {
        let down = Lookup::Unavailable("connection refused".into());
        let manifest = declared(
            &[(Stage::Production, 3), (Stage::Production, 4)],
            &[("champion", 2)],
            &[alias("champion"), stage(Stage::Production)],
            Some("models/m"),
        );
        let walk = targets(&[], Some(&manifest));
        let answer = resolve("m", &walk, &down, Some(&manifest));
        assert_eq!(
            answer.warnings,
            vec![Warning::RegistryUnavailable {
                why: "connection refused".into(),
                manifest: Some(PathBuf::from("m.yaml"))
            }]
        );
        let resolution = answer.resolution.expect("resolves");
        assert_eq!(resolution.uri, "models:/m/2");
        assert_eq!(resolution.target, Some(alias("champion")));
        assert_eq!(resolution.source, None);
        assert_eq!(resolution.answered_by, AnsweredBy::Manifest);
        assert_eq!(resolution.manifest, Some(PathBuf::from("m.yaml")));

        // A stage: the newest version the manifest declares in it.
        let answer = resolve(
            "m",
            &[alias("canary"), stage(Stage::Production)],
            &down,
            Some(&manifest),
        );
        assert_eq!(uri(&answer), Ok("models:/m/4"));

        // Staging does not fall back to Production; the local fallback answers.
        let answer = resolve("m", &stage_targets(Stage::Staging), &down, Some(&manifest));
        let resolution = answer.resolution.expect("resolves");
        assert_eq!(resolution.fallback, Some(Fallback::Local));
        assert_eq!(resolution.uri, "models/m");
        assert_eq!(resolution.passed_over(), &[stage(Stage::Staging)]);

        assert_eq!(
            resolve("m", &DEFAULT_TARGETS, &down, None).resolution,
            Err(Unresolved::Nothing {
                tried: DEFAULT_TARGETS.to_vec(),
                registry_unavailable: true,
            })
        );
    }
}
