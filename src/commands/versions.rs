//! `mlreg versions MODEL`: the model's versions with stage, aliases, run, source, status
//! and age, newest first, as a table or JSON.

use std::io::Write as _;

use anyhow::Context as _;

use crate::cli::{TableOutput, VersionsArgs};
use crate::exit::ExitStatus;
use crate::registry::Registry as _;
use crate::render::table;

use super::Context;

/// Lists a model's versions.
pub async fn run(context: &Context, args: &VersionsArgs) -> anyhow::Result<ExitStatus> {
    let client = context.client()?;
    let model = read_model(&client, &args.model).await?;
    let mut stdout = std::io::stdout().lock();
    match args.output {
        TableOutput::Table => table::write_versions_table(&mut stdout, &model, now_ms())?,
        TableOutput::Json => table::write_versions_json(&mut stdout, &model)?,
    }
    stdout.flush()?;
    Ok(ExitStatus::Success)
}

/// Reads one model; a model the registry does not hold is an error that says where it
/// looked.
pub(super) async fn read_model(
    client: &crate::registry::mlflow::MlflowClient,
    name: &str,
) -> anyhow::Result<crate::registry::ObservedModel> {
    client
        .model(name)
        .await
        .with_context(|| format!("cannot read model `{name}` from the registry"))?
        .with_context(|| {
            format!(
                "model `{name}` does not exist in the registry at {}",
                client.base_url()
            )
        })
}

/// Now, in milliseconds since the epoch (MLflow's unit).
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
