//! The JSON Schema (draft-07) of the manifest format, printed by `mlreg schema` and committed
//! as `docs/mlreg.schema.json` for editors (yaml-language-server reads draft-07).
//!
//! It is derived from the same serde types the loader parses with, so the two cannot drift
//! apart. A schema can only check shape: the checks that span values (a version in two
//! stages, a model declared twice) are made by `mlreg validate`.

use schemars::generate::SchemaSettings;

use super::raw::RawManifest;

/// The schema as a JSON value.
pub fn json_schema() -> serde_json::Value {
    SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<RawManifest>()
        .to_value()
}

/// The schema as the text committed to `docs/mlreg.schema.json` (pretty JSON, final newline).
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
