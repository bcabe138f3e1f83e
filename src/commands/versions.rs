//! `mlreg versions MODEL`: the model's versions with stage, aliases, run, source, status
//! and age, newest first, as a table or JSON.

use std::io::Write as _;

use crate::cli::TableOutput;
use crate::exit::ExitStatus;
use crate::output::Output;
use crate::registry::Registry;
use crate::render::table;
use crate::settings::VersionsSettings;

use super::{client, now_ms, read_model};

/// Lists a model's versions.
pub async fn run(output: &Output, settings: VersionsSettings) -> anyhow::Result<ExitStatus> {
    let client = client(settings.registry)?;
    let location = client.base_url().to_string();
    list(output, &client, &location, &settings.model, settings.output).await
}

/// Reads `model` from `registry` (at `location`) and prints its versions.
async fn list(
    output: &Output,
    registry: &impl Registry,
    location: &str,
    model: &str,
    format: TableOutput,
) -> anyhow::Result<ExitStatus> {
    let model = read_model(registry, location, model).await?;
    let mut stdout = output.stdout();
    match format {
        TableOutput::Table => table::write_versions_table(&mut stdout, &model, now_ms())?,
        TableOutput::Json => table::write_versions_json(&mut stdout, &model)?,
    }
    stdout.flush()?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fake::FakeRegistry;
    use crate::stage::Stage;

    #[tokio::test]
    async fn an_unknown_model_says_where_it_was_looked_for() {
        let registry = FakeRegistry::default();
        registry.add_model("known", &[(1, Stage::Production)]);
        let error = list(
            &Output::plain(),
            &registry,
            "http://registry.test/",
            "unknown",
            TableOutput::Json,
        )
        .await
        .expect_err("no such model");
        assert_eq!(
            format!("{error:#}"),
            "model `unknown` does not exist in the registry at http://registry.test/"
        );
    }
}
