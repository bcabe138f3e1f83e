//! `mlreg schema`: print the JSON Schema (draft-07) of the manifest format, or with
//! `--project` of the project file.

use std::io::Write;

use crate::exit::ExitStatus;
use crate::output::Output;

/// Prints the schema on stdout, exactly as committed in `docs/mlreg.schema.json`.
pub fn run(output: &Output) -> anyhow::Result<ExitStatus> {
    let text = crate::manifest::schema::json_schema_text();
    // An `io::Error` (not a serde_json one), so that `mlreg schema | head` ends quietly.
    output.stdout().write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

/// Prints the project file's schema, exactly as committed in `docs/mlreg-project.schema.json`.
pub fn run_project(output: &Output) -> anyhow::Result<ExitStatus> {
    let text = crate::project::json_schema_text();
    output.stdout().write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}
