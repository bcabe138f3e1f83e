//! `mlreg export [--model NAME]... [--out DIR] [--force]`: write one manifest per model
//! from the live registry, so mlreg can adopt a registry that already holds models.
//!
//! Every file is computed and checked (it must load, and declare what the registry holds)
//! before any is written; existing files are never overwritten without `--force`.

use std::collections::BTreeMap;
use std::io::{self, Write as _};

use anyhow::Context as _;

use crate::cli::ExportArgs;
use crate::exit::ExitStatus;
use crate::manifest;
use crate::manifest::export::{self, manifest_text};
use crate::registry::{ObservedModel, Registry};

use super::Context;

/// Writes the manifests.
pub async fn run(context: &Context, args: &ExportArgs) -> anyhow::Result<ExitStatus> {
    let client = context.client()?;
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
        eprintln!("The registry holds no registered model: nothing to export.");
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
    let mut stdout = io::stdout().lock();
    for (name, path, renamed, text) in &files {
        manifest::write_file_atomically(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if *renamed {
            eprintln!(
                "note: model `{name}` is written to {}: its name is not a safe file name as it is",
                path.display()
            );
        }
        writeln!(stdout, "{}", path.display())?;
    }
    stdout.flush()?;
    eprintln!(
        "Exported {} model(s) to {}. `mlreg plan --dir {}` should show no change; add `retention` on purpose if you want old versions archived.",
        files.len(),
        args.out.display(),
        args.out.display()
    );
    Ok(ExitStatus::Success)
}
