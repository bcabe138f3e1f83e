//! `mlreg export [--model NAME]... [--out DIR] [--force]`: write one manifest per model
//! from the live registry, so mlreg can adopt a registry that already holds models.
//!
//! Every file is computed and checked (it must load, and declare what the registry holds)
//! before any is written; existing files are never overwritten without `--force`.

use std::collections::BTreeMap;

use anyhow::Context as _;

use crate::exit::ExitStatus;
use crate::manifest;
use crate::manifest::export::{self, manifest_text};
use crate::output::Output;
use crate::registry::{ObservedModel, Registry};
use crate::settings::ExportSettings;

use super::client;

/// Writes the manifests.
pub async fn run(output: &Output, settings: ExportSettings) -> anyhow::Result<ExitStatus> {
    let client = client(settings.registry)?;
    let args = Exported {
        models: settings.models,
        out: settings.out,
        force: settings.force,
    };
    export(output, &client, &args).await
}

/// What to export, and where.
struct Exported {
    models: Vec<String>,
    out: std::path::PathBuf,
    force: bool,
}

/// Reads the models from `client` and writes their manifests.
async fn export(
    output: &Output,
    client: &impl Registry,
    args: &Exported,
) -> anyhow::Result<ExitStatus> {
    let models: BTreeMap<String, ObservedModel> = if args.models.is_empty() {
        client
            .snapshot()
            .await
            .context("cannot read the registry; nothing was written")?
            .models
    } else {
        let mut models = BTreeMap::new();
        for name in &args.models {
            let model = client
                .model(name)
                .await
                .with_context(|| format!("cannot read model `{name}`; nothing was written"))?
                .with_context(|| {
                    format!("model `{name}` does not exist in the registry; nothing was written")
                })?;
            models.insert(name.clone(), model);
        }
        models
    };
    if models.is_empty() {
        output.message("The registry holds no registered model: nothing to export.");
        return Ok(ExitStatus::Success);
    }

    let names = export::file_names(models.keys().map(String::as_str));
    let mut files = Vec::with_capacity(models.len());
    for (name, model) in &models {
        let Some((file_name, renamed)) = names.get(name) else {
            anyhow::bail!("no file name was chosen for model `{name}`");
        };
        let spec = export::exported_spec(model);
        let text = manifest_text(name, &spec)
            .and_then(|text| export::check(file_name, &text, name, &spec).map(|()| text))
            .with_context(|| {
                format!(
                    "the manifest exported for `{name}` would not be valid; nothing was written"
                )
            })?;
        files.push((name, args.out.join(file_name), *renamed, text));
    }

    if !args.force {
        let existing: Vec<String> = files
            .iter()
            .filter(|(_, path, _, _)| path.exists())
            .map(|(_, path, _, _)| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            anyhow::bail!(
                "refusing to overwrite {}; nothing was written (pass --force to overwrite, or --out to write elsewhere)",
                existing.join(", ")
            );
        }
    }

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for (name, path, renamed, text) in &files {
        manifest::write_file_atomically(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if *renamed {
            output.message(format_args!(
                "note: model `{name}` is written to {}: its name is not a safe file name as it is",
                path.display()
            ));
        }
        output.line(path.display())?;
    }
    output.message(format_args!(
        "Exported {} model(s) to {}. `mlreg plan --dir {}` should show no change; add `retention` on purpose if you want old versions archived.",
        files.len(),
        args.out.display(),
        args.out.display()
    ));
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fake::FakeRegistry;
    use crate::stage::Stage;

    #[tokio::test]
    async fn nothing_is_written_for_an_empty_registry_or_an_unknown_model() {
        let out = tempfile::tempdir().expect("temp dir");
        let args = |models: &[&str]| Exported {
            models: models.iter().map(|name| (*name).to_owned()).collect(),
            out: out.path().join("desired-state"),
            force: false,
        };
        let registry = FakeRegistry::default();
        let status = export(&Output::plain(), &registry, &args(&[]))
            .await
            .expect("an empty registry is not an error");
        assert_eq!(status, ExitStatus::Success);

        registry.add_model("known", &[(1, Stage::Production)]);
        let error = export(&Output::plain(), &registry, &args(&["unknown"]))
            .await
            .expect_err("unknown model");
        assert_eq!(
            format!("{error:#}"),
            "model `unknown` does not exist in the registry; nothing was written"
        );
        assert!(!out.path().join("desired-state").exists());
    }
}
