//! `mlreg resolve MODEL [TARGET]...`: the model a serving process should load.
//!
//! Glue only: read the manifest's declaration, ask the registry (quickly: the settings
//! give it short timeouts and one retry), let [`crate::resolve`] decide, and print through
//! [`crate::render::resolve`]. Stdout holds exactly the answer (one line, or the JSON
//! document); warnings always go to stderr, the line saying which target answered only when
//! a person is likely to read it (stderr is a terminal, or `-v`), so a serving process's
//! log is not filled with a line per start.

use std::path::Path;

use crate::cli::TableOutput;
use crate::exit::ExitStatus;
use crate::manifest::{self, DesiredModel};
use crate::output::Output;
use crate::registry::Registry;
use crate::registry::mlflow::MlflowClient;
use crate::render::resolve as render;
use crate::resolve::{self, Declared, Lookup};
use crate::settings::ResolveSettings;
use crate::stage::Stage;

/// Prints the URI to serve.
pub async fn run(output: &Output, settings: ResolveSettings) -> anyhow::Result<ExitStatus> {
    if settings.from_stage_flag {
        output.message(render::deprecated_stage(&settings.targets));
    }
    let declared = declared_model(output, &settings.dir, &settings.model);
    // Not configured, or no client can be built: the manifest answers, as in an outage.
    let registry = match settings.registry.map(MlflowClient::new) {
        Ok(Ok(client)) => lookup(&client, &settings.model).await,
        Ok(Err(error)) | Err(error) => Lookup::Unavailable(error.to_string()),
    };
    let targets = resolve::targets(&settings.targets, declared.as_ref());
    let answer = resolve::resolve(&settings.model, &targets, &registry, declared.as_ref());
    for warning in &answer.warnings {
        output.message(render::warning(warning));
    }
    let resolution = match answer.resolution {
        Ok(resolution) => resolution,
        Err(why) => {
            output.message(render::unresolved(&settings.model, &why));
            return Ok(ExitStatus::Failure);
        }
    };
    if settings.explain || output.stderr_is_terminal() {
        output.message(render::explanation(&resolution));
    }
    let mut stdout = output.stdout();
    match settings.output {
        TableOutput::Table => render::write_text(&mut stdout, &resolution)?,
        TableOutput::Json => render::write_json(&mut stdout, &resolution)?,
    }
    std::io::Write::flush(&mut stdout)?;
    Ok(ExitStatus::Success)
}

/// Asks the registry about `model`; any failure makes it unavailable, never an error.
async fn lookup(registry: &impl Registry, model: &str) -> Lookup {
    match registry.model(model).await {
        Ok(model) => Lookup::Answered(model),
        Err(error) => Lookup::Unavailable(error.to_string()),
    }
}

/// The model's declaration, when a valid manifest under `dir` names it. Invalid manifests
/// are reported and ignored: resolving must keep working while someone fixes a typo.
fn declared_model(output: &Output, dir: &Path, model: &str) -> Option<Declared> {
    if !dir.exists() {
        tracing::debug!(dir = %dir.display(), "no desired-state directory: resolving without manifests");
        return None;
    }
    match manifest::load_dir(dir) {
        Ok(desired) => desired.models.get(model).map(declared),
        Err(error) => {
            output.message(format_args!(
                "warning: the manifests under {} have {} problem(s) (`mlreg validate` lists them); resolving without them",
                dir.display(),
                error.diagnostics.len()
            ));
            None
        }
    }
}

/// What the resolution policy needs of a manifest model: its file, the versions it
/// declares per stage and per alias, the targets to walk, its local fallback. The one place
/// that knows the manifest's shape.
fn declared(model: &DesiredModel) -> Declared {
    Declared {
        file: model.file().to_path_buf(),
        stages: Stage::DECLARABLE
            .iter()
            .map(|stage| {
                let versions = model.spec.versions_in(*stage).iter().copied();
                (*stage, versions.collect())
            })
            .collect(),
        aliases: model.spec.aliases.clone().unwrap_or_default(),
        targets: model.spec.serving_targets(),
        local_fallback: model.spec.local_fallback().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fake::FakeRegistry;
    use crate::target::Target;

    #[tokio::test]
    async fn the_lookup_goes_through_the_registry_trait() {
        let registry = FakeRegistry::default();
        registry.add_model("m", &[(1, Stage::Production)]);
        let Lookup::Answered(Some(model)) = lookup(&registry, "m").await else {
            panic!("the fake answers");
        };
        assert_eq!(model.versions_in(Stage::Production).count(), 1);
        assert_eq!(lookup(&registry, "other").await, Lookup::Answered(None));

        let answer = resolve::resolve(
            "m",
            &resolve::DEFAULT_TARGETS,
            &lookup(&registry, "m").await,
            None,
        );
        assert_eq!(
            answer.resolution.map(|resolution| resolution.uri),
            Ok("models:/m/1".to_owned())
        );
    }

    #[test]
    fn the_builder_reads_the_declaration() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("m.yaml"),
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n  stages: {Production: [3, 4], Staging: 5}\n  serving:\n    localFallback: models/m\n",
        )
        .expect("write");
        let declared = declared_model(&Output::plain(), dir.path(), "m").expect("declared");
        assert_eq!(declared.file, dir.path().join("m.yaml"));
        assert_eq!(declared.stages[&Stage::Production], vec![3, 4]);
        assert_eq!(declared.stages[&Stage::Staging], vec![5]);
        assert_eq!(declared.local_fallback.as_deref(), Some("models/m"));
        assert!(declared.aliases.is_empty());
        // No `serving.prefer`: the manifest's default is the policy's.
        assert_eq!(declared.targets, resolve::DEFAULT_TARGETS.to_vec());
        assert_eq!(declared_model(&Output::plain(), dir.path(), "other"), None);

        std::fs::write(
            dir.path().join("m.yaml"),
            "apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n  aliases: {champion: 3, challenger: 4}\n  serving:\n    prefer: ['@champion', Production]\n",
        )
        .expect("write");
        let declared = declared_model(&Output::plain(), dir.path(), "m").expect("declared");
        assert_eq!(
            declared.aliases,
            [("challenger".to_owned(), 4), ("champion".to_owned(), 3)].into()
        );
        assert_eq!(
            declared.targets,
            vec![
                Target::Alias("champion".into()),
                Target::Stage(Stage::Production)
            ]
        );
    }
}
