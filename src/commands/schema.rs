//! `mlreg schema`: print the JSON Schema of the manifest format.

use std::io::Write;

use crate::exit::ExitStatus;

/// Prints the schema on stdout.
pub fn run() -> anyhow::Result<ExitStatus> {
    let schema = crate::manifest::schema::json_schema();
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &schema)?;
    writeln!(out)?;
    Ok(ExitStatus::Success)
}
