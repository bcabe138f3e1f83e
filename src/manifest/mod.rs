//! The desired state: what the manifests in `desired-state/` declare.
//!
//! [`load_dir`] reads every `*.yaml`/`*.yml` under a directory (recursively, several
//! documents per file), parses each document strictly (unknown fields, duplicate keys and
//! wrong types are errors), checks the semantic rules of DESIGN.md, and returns either a
//! [`DesiredState`] or every problem found, each a [`Diagnostic`] pointing at file, line
//! and column. Nothing here touches the network.
//!
//! Submodules: `raw` holds the serde types that mirror the YAML, `load` walks the
//! directory and parses every document ([`parse_text`] parses one file's text), `check`
//! converts raw documents into the validated types, `spec` holds those types: a
//! position-free [`ModelSpec`] per model (its `==` is the change detector) beside a table
//! of [`Origins`] for diagnostics. `schema` prints the JSON Schema of the format, `edit`
//! changes a model's `stages` in place keeping the file's formatting (`promote`,
//! `set-stage`), `export` writes manifests from the live registry, `atomic` replaces files
//! so that a reader never sees half of one.
//!
//! Decisions where DESIGN.md is silent:
//! - `spec` may be omitted: the model is then managed (created when missing) and nothing
//!   else about it is enforced.
//! - `stages:` or `aliases:` with no value (YAML null) is an error: as both are exhaustive,
//!   "none" (`{}`) and "leave alone" (remove the key) must be said explicitly. A stage with no
//!   value (`Staging:`) means the same as `Staging: []`.
//! - Scalars are typed as JSON Schema tools read them (YAML 1.2): tag values, names, run ids
//!   are strings (an unquoted `true` or `3` must be quoted; `yes`/`no` are strings), version
//!   numbers are integers (`3`, not `"3"`). Keys of `versions` are `"3"` or `3`.
//! - Tag keys starting with `mlreg.` are reserved: mlreg writes its audit trail
//!   (`mlreg.transition`, `mlreg.alias.<alias>`) itself.
//! - Hidden files and directories (`.git`, editor swap files) are skipped; symbolic links are
//!   followed, each real directory read once; files over [`MAX_MANIFEST_BYTES`] are refused.
//! - YAML anchors work within one document (YAML's rule), not across `---`.

mod atomic;
mod check;
pub mod edit;
pub mod export;
mod load;
mod raw;
pub mod schema;
mod selector;
mod spec;

#[cfg(test)]
pub(crate) use spec::fixture;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::diagnostic::{Diagnostic, SourceMap};

pub use atomic::{ReplaceError, replace_if_unchanged, write_file_atomically};
pub use load::{MAX_MANIFEST_BYTES, is_manifest_file, load_dir, parse_text, validate_alias_name};
pub(crate) use load::{yaml_diagnostic, yaml_options};
pub use selector::{
    DEFAULT_ARTIFACT_PATH, Selector, VersionRef, VersionRefError, validate_model_id,
    validate_run_id,
};
pub use spec::{
    Comparator, DesiredModel, Direction, Gate, ModelSpec, NoRegression, Origins, Retention,
    Serving, Soak, Stages, TagRequirement, Threshold, VersionSpec, WriteError, to_yaml,
};

/// The only `apiVersion` this release understands.
pub const API_VERSION: &str = "mlreg/v1";
/// The only `kind` this release understands.
pub const KIND: &str = "RegisteredModel";

/// The prefix of the tag keys mlreg writes itself (its audit trail: `mlreg.transition`,
/// `mlreg.alias.<alias>`).
/// Manifests may not declare such keys, or mlreg and the manifest would fight over the
/// value; `mlreg export` never writes them.
pub const RESERVED_TAG_PREFIX: &str = crate::mlreg_tag!("");

/// `mlreg_tag!("transition")` is `"mlreg.transition"`: every tag key mlreg writes is
/// spelled from the one prefix, so the reserved prefix and the keys cannot drift apart.
#[macro_export]
#[doc(hidden)]
macro_rules! mlreg_tag {
    ($name:literal) => {
        concat!("mlreg.", $name)
    };
}

/// The prefix of the tag keys MLflow manages itself (`mlflow.prompt.is_prompt`, ...);
/// `mlreg export` never writes them.
pub const MLFLOW_TAG_PREFIX: &str = "mlflow.";

/// Every manifest of a desired-state directory, validated.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    /// The directory the manifests were read from.
    pub root: PathBuf,
    /// Managed models by name.
    pub models: BTreeMap<String, DesiredModel>,
    /// The text of every file read, for diagnostics that quote a line.
    pub sources: SourceMap,
}

impl DesiredState {
    /// Replaces what `file` declares with what `text` declares (an edit not yet written,
    /// so the next edit of the same file starts from it). The models of other files stay.
    pub fn replace_file(&mut self, file: &std::path::Path, text: &str) -> Result<(), LoadError> {
        let models = parse_text(file, text)?;
        self.models.retain(|_, model| model.file() != file);
        for model in models {
            self.models.insert(model.name.clone(), model);
        }
        self.sources
            .insert(file.to_path_buf(), std::sync::Arc::from(text.to_owned()));
        Ok(())
    }

    /// Each managed model's spec, by name: what the daemon compares to tell a manifest
    /// change from a cosmetic edit.
    pub fn specs(&self) -> BTreeMap<String, ModelSpec> {
        self.models
            .iter()
            .map(|(name, model)| (name.clone(), model.spec.clone()))
            .collect()
    }
}

/// Loading failed; every problem found is listed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} problem(s) in the manifests", diagnostics.len())]
pub struct LoadError {
    /// Every problem, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The text of the files read, for quoting.
    pub sources: SourceMap,
}
