//! `mlreg info MODEL`: a model's description, tags, stages, aliases (with the audit record
//! of each alias mlreg moved), latest versions, the manifest that manages it, as text or
//! JSON.

use std::io::Write as _;

use crate::cli::TableOutput;
use crate::exit::ExitStatus;
use crate::manifest::{self, DesiredModel};
use crate::output::Output;
use crate::plan;
use crate::registry::ObservedModel;
use crate::render::table::{self, Management, ModelInfo};
use crate::settings::InfoSettings;

use super::{client, now_ms, read_model};

/// Summarizes a model.
pub async fn run(output: &Output, settings: InfoSettings) -> anyhow::Result<ExitStatus> {
    let client = client(settings.registry)?;
    let location = client.base_url().to_string();
    let model = read_model(&client, &location, &settings.model).await?;
    summarize(
        output,
        &settings.model,
        &model,
        &settings.dir,
        settings.output,
    )
}

/// Prints the summary of `model` (asked for as `name`), as read, with the manifests under
/// `dir`.
fn summarize(
    output: &Output,
    name: &str,
    model: &ObservedModel,
    dir: &std::path::Path,
    format: TableOutput,
) -> anyhow::Result<ExitStatus> {
    let (management, desired) = management(dir, name);
    let info = ModelInfo {
        model,
        management,
        drift: drift_summary(desired.as_ref(), model),
        gates: desired
            .as_ref()
            .map(|desired| desired.spec.gates.clone())
            .unwrap_or_default(),
    };
    let mut stdout = output.stdout();
    match format {
        TableOutput::Table => table::write_info_text(&mut stdout, &info, now_ms())?,
        TableOutput::Json => table::write_info_json(&mut stdout, &info)?,
    }
    stdout.flush()?;
    Ok(ExitStatus::Success)
}

/// Which manifest under `dir` names `model`, and its declaration. Invalid manifests make
/// the answer unknown rather than "not managed": a broken file may be the one naming it.
fn management(dir: &std::path::Path, model: &str) -> (Management, Option<DesiredModel>) {
    if !dir.exists() {
        return (
            Management::NoManifests {
                dir: dir.to_path_buf(),
            },
            None,
        );
    }
    match manifest::load_dir(dir) {
        Ok(desired) => match desired.models.get(model) {
            Some(declared) => (
                Management::Managed {
                    file: declared.file().to_path_buf(),
                },
                Some(declared.clone()),
            ),
            None => (Management::NotManaged, None),
        },
        Err(error) => {
            tracing::debug!(%error, "manifests could not be loaded");
            (
                Management::Unknown {
                    problems: error.diagnostics.len(),
                },
                None,
            )
        }
    }
}

/// What reconciling `desired` would change on `observed`, one line per change; `None` when
/// no manifest manages the model.
fn drift_summary(desired: Option<&DesiredModel>, observed: &ObservedModel) -> Option<Vec<String>> {
    let desired = desired?;
    Some(match plan::plan_model(desired, Some(observed)) {
        Ok(model_plan) => model_plan
            .changes
            .iter()
            .map(crate::render::plan::change_line)
            .collect(),
        Err(problems) => problems
            .iter()
            .map(|problem| format!("cannot plan: {problem}"))
            .collect(),
    })
}
