//! `mlreg resolve MODEL [--stage Production]`: the model a serving process should load.
//!
//! The answer is the newest ready version in the requested stage; when that stage is
//! empty, Production falls back to Staging, then to the manifest's `serving.localFallback`.
//! When the registry cannot be reached, the manifest answers instead: the version it
//! declares in the stage (its source is then unknown), else the local fallback. Every
//! fallback is said on stderr; stdout holds only the answer. The registry is asked with
//! one retry and short timeouts, so a serving process is not held up by an outage.

use std::io::{self, Write as _};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{ResolveArgs, TableOutput};
use crate::exit::ExitStatus;
use crate::manifest::{self, DesiredModel};
use crate::registry::mlflow::MlflowClient;
use crate::registry::{ObservedModel, Registry};
use crate::stage::Stage;

use super::Context;
use super::promote::stage_argument;

/// Longest wait for a connection to the registry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one answer of the registry.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of a failed read (one: an outage must not hold up a serving process).
const MAX_RETRIES: usize = 1;

/// Prints the URI to serve.
pub async fn run(context: &Context, args: &ResolveArgs) -> anyhow::Result<ExitStatus> {
    let stage = stage_argument("--stage", &args.stage)?;
    if !stage.is_declarable() {
        anyhow::bail!("--stage must be Production or Staging, not {stage}");
    }
    let declared = declared_model(&args.dir.dir, &args.model);
    let registry = lookup(context, &args.model).await;
    let answer = resolve(&args.model, stage, &registry, declared.as_ref());
    for note in &answer.notes {
        eprintln!("{note}");
    }
    let resolution = match answer.resolution {
        Ok(resolution) => resolution,
        Err(why) => {
            eprintln!("error: nothing to serve for `{}`: {why}", args.model);
            return Ok(ExitStatus::Failure);
        }
    };
    let mut stdout = io::stdout().lock();
    match args.output {
        TableOutput::Table => {
            writeln!(stdout, "{}", resolution.uri)?;
            match &resolution.source {
                Some(source) => writeln!(stdout, "source: {source}")?,
                None => writeln!(stdout, "source: unknown")?,
            }
        }
        TableOutput::Json => {
            serde_json::to_writer_pretty(&mut stdout, &resolution)?;
            writeln!(stdout)?;
        }
    }
    stdout.flush()?;
    Ok(ExitStatus::Success)
}

/// What the registry said about the model.
#[derive(Debug)]
enum Lookup {
    /// The model as the registry holds it (`None`: the registry has no such model).
    Answered(Option<ObservedModel>),
    /// The registry could not be asked (not configured, unreachable, refused).
    Unavailable(String),
}

/// Asks the registry, quickly.
async fn lookup(context: &Context, model: &str) -> Lookup {
    let mut config = match context.registry_config() {
        Ok(config) => config,
        Err(error) => return Lookup::Unavailable(format!("{error:#}")),
    };
    config.max_retries = MAX_RETRIES;
    config.connect_timeout = config.connect_timeout.min(CONNECT_TIMEOUT);
    config.request_timeout = config.request_timeout.min(REQUEST_TIMEOUT);
    config.max_backoff = config.max_backoff.min(Duration::from_secs(1));
    let client = match MlflowClient::new(config) {
        Ok(client) => client,
        Err(error) => return Lookup::Unavailable(error.to_string()),
    };
    match client.model(model).await {
        Ok(model) => Lookup::Answered(model),
        Err(error) => Lookup::Unavailable(error.to_string()),
    }
}

/// The model's declaration, when a valid manifest under `dir` names it. Invalid manifests
/// are reported and ignored: resolving must keep working while someone fixes a typo.
fn declared_model(dir: &Path, model: &str) -> Option<DesiredModel> {
    if !dir.exists() {
        tracing::debug!(dir = %dir.display(), "no desired-state directory: resolving without manifests");
        return None;
    }
    match manifest::load_dir(dir) {
        Ok(desired) => desired.models.get(model).cloned(),
        Err(error) => {
            eprintln!(
                "warning: the manifests under {} have {} problem(s) (`mlreg validate` lists them); resolving without them",
                dir.display(),
                error.diagnostics.len()
            );
            None
        }
    }
}

/// The answer, as printed with `--output json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Resolution {
    format_version: u32,
    model: String,
    /// `None` for the local fallback.
    version: Option<u64>,
    /// The stage the version was found in; `None` for the local fallback.
    stage: Option<Stage>,
    /// `models:/NAME/VERSION`, or the local fallback path.
    uri: String,
    /// The version's source; `None` when the registry could not be asked.
    source: Option<String>,
    /// `None` when the requested stage answered; `staging` or `local` otherwise.
    fallback: Option<&'static str>,
    /// Who answered: `registry` or `manifest`.
    answered_by: &'static str,
}

/// A resolution (or why there is none) and the notes to print on stderr.
#[derive(Debug)]
struct Answer {
    resolution: Result<Resolution, String>,
    notes: Vec<String>,
}

/// Decides what to serve. Pure: the registry's answer and the manifest are inputs.
fn resolve(
    model: &str,
    stage: Stage,
    registry: &Lookup,
    declared: Option<&DesiredModel>,
) -> Answer {
    let chain: &[Stage] = if stage == Stage::Production {
        &[Stage::Production, Stage::Staging]
    } else {
        &[Stage::Staging]
    };
    let mut notes = Vec::new();
    let manifest_file = declared.map(|d| d.file().display().to_string());
    match registry {
        Lookup::Unavailable(why) => notes.push(format!(
            "warning: the registry cannot be asked ({why}); answering from {}",
            manifest_file.as_deref().map_or_else(
                || "nothing: no manifest declares the model".to_owned(),
                |file| format!("the manifest {file}")
            ),
        )),
        Lookup::Answered(None) => {
            notes.push(format!("note: the registry has no model named `{model}`"))
        }
        Lookup::Answered(Some(_)) => {}
    }
    for (index, stage) in chain.iter().copied().enumerate() {
        let fallback = (index > 0).then_some("staging");
        let found = match registry {
            Lookup::Answered(Some(observed)) => observed
                .versions_in(stage)
                .filter(|version| version.is_ready())
                .max_by_key(|version| version.version)
                .map(|version| (version.version, Some(version.source.clone()), "registry")),
            Lookup::Answered(None) => None,
            Lookup::Unavailable(_) => declared
                .and_then(|d| d.spec.versions_in(stage).last().copied())
                .map(|version| (version, None, "manifest")),
        };
        if let Some((version, source, answered_by)) = found {
            if answered_by == "manifest" {
                notes.push(format!(
                        "note: version {version} is what the manifest declares in {stage}; the registry was not asked, so its source is unknown"
                    ));
            }
            if fallback.is_some() {
                notes.push(format!(
                    "note: fallback: {} holds no version; serving {stage}",
                    chain[0]
                ));
            }
            return Answer {
                resolution: Ok(Resolution {
                    format_version: 1,
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
    let tried = chain
        .iter()
        .map(|stage| stage.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let local = declared
        .and_then(|d| d.spec.local_fallback())
        .map(str::to_owned);
    match local {
        Some(path) => {
            notes.push(format!(
                "note: fallback: {tried} hold no version{}; serving the local fallback of {}",
                if matches!(registry, Lookup::Unavailable(_)) {
                    " in the manifest"
                } else {
                    ""
                },
                manifest_file.as_deref().unwrap_or("the manifest")
            ));
            Answer {
                resolution: Ok(Resolution {
                    format_version: 1,
                    model: model.to_owned(),
                    version: None,
                    stage: None,
                    uri: path.clone(),
                    source: Some(path),
                    fallback: Some("local"),
                    answered_by: "manifest",
                }),
                notes,
            }
        }
        None => Answer {
            resolution: Err(format!(
                "{tried} hold no version and no manifest declares `serving.localFallback` for it"
            )),
            notes,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::fixture;
    use crate::registry::ObservedVersion;

    fn observed(stages: &[(u64, Stage)]) -> ObservedModel {
        ObservedModel {
            name: "m".into(),
            versions: stages
                .iter()
                .map(|(number, stage)| {
                    (
                        *number,
                        ObservedVersion {
                            version: *number,
                            stage: *stage,
                            status: "READY".into(),
                            run_id: String::new(),
                            source: format!("s3://b/{number}"),
                            description: String::new(),
                            tags: Default::default(),
                            creation_timestamp: 0,
                            last_updated_timestamp: 0,
                        },
                    )
                })
                .collect(),
            ..ObservedModel::default()
        }
    }

    fn declared(stages: &[(Stage, u64)], local: Option<&str>) -> DesiredModel {
        let mut builder = fixture::model("m").stages();
        for (stage, version) in stages {
            builder = builder.stage(*stage, &[*version]);
        }
        if let Some(local) = local {
            builder = builder.local_fallback(local);
        }
        builder.build()
    }

    #[test]
    fn production_then_staging_then_local() {
        let registry = Lookup::Answered(Some(observed(&[
            (1, Stage::Production),
            (2, Stage::Production),
            (3, Stage::Staging),
        ])));
        let answer = resolve("m", Stage::Production, &registry, None)
            .resolution
            .expect("resolves");
        assert_eq!(answer.uri, "models:/m/2");
        assert_eq!(answer.source.as_deref(), Some("s3://b/2"));
        assert_eq!(answer.fallback, None);

        let registry = Lookup::Answered(Some(observed(&[(3, Stage::Staging)])));
        let answer = resolve("m", Stage::Production, &registry, None)
            .resolution
            .expect("resolves");
        assert_eq!(answer.fallback, Some("staging"));
        assert_eq!(answer.stage, Some(Stage::Staging));

        let registry = Lookup::Answered(Some(observed(&[(1, Stage::Archived)])));
        let local = declared(&[], Some("models/m"));
        let answer = resolve("m", Stage::Production, &registry, Some(&local))
            .resolution
            .expect("resolves");
        assert_eq!(answer.fallback, Some("local"));
        assert_eq!(answer.uri, "models/m");
        assert!(
            resolve("m", Stage::Production, &registry, None)
                .resolution
                .is_err()
        );
    }

    #[test]
    fn the_manifest_answers_when_the_registry_cannot() {
        let down = Lookup::Unavailable("connection refused".into());
        let manifest = declared(&[(Stage::Production, 4)], Some("models/m"));
        let answer = resolve("m", Stage::Production, &down, Some(&manifest))
            .resolution
            .expect("resolves");
        assert_eq!(answer.uri, "models:/m/4");
        assert_eq!(answer.source, None);
        assert_eq!(answer.answered_by, "manifest");

        // --stage Staging does not fall back to Production.
        let answer = resolve("m", Stage::Staging, &down, Some(&manifest))
            .resolution
            .expect("resolves");
        assert_eq!(answer.fallback, Some("local"));
        assert!(
            resolve("m", Stage::Production, &down, None)
                .resolution
                .is_err()
        );
    }
}
