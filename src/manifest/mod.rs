//! The desired state: what the manifests in `desired-state/` declare.
//!
//! [`load_dir`] reads every `*.yaml`/`*.yml` under a directory (recursively, several
//! documents per file), parses each document strictly (unknown fields, duplicate keys and
//! wrong types are errors), checks the semantic rules of DESIGN.md, and returns either a
//! [`DesiredState`] or every problem found, each a [`Diagnostic`] pointing at file, line
//! and column. Nothing here touches the network.
//!
//! Submodules: `raw` holds the serde types that mirror the YAML, `load` walks the
//! directory and parses every document, `check` converts raw documents into the validated
//! types below, `schema` prints the JSON Schema of the format, `edit` changes a model's
//! `stages` in place keeping the file's formatting (`promote`, `set-stage`), `export`
//! writes manifests from the live registry.
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
//! - Tag keys starting with `mlreg.` are reserved: mlreg writes `mlreg.transition` itself.
//! - Hidden files and directories (`.git`, editor swap files) are skipped; symbolic links are
//!   followed, each real directory read once; files over [`MAX_MANIFEST_BYTES`] are refused.
//! - YAML anchors work within one document (YAML's rule), not across `---`.

mod check;
pub mod edit;
pub mod export;
mod load;
mod raw;
pub mod schema;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::diagnostic::{Diagnostic, Origin, SourceMap};
use crate::stage::Stage;

pub use load::{MAX_MANIFEST_BYTES, is_manifest_file, load_dir, validate_alias_name};

/// The only `apiVersion` this release understands.
pub const API_VERSION: &str = "mlreg/v1";
/// The only `kind` this release understands.
pub const KIND: &str = "RegisteredModel";

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

/// One registered model as a manifest declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredModel {
    /// The registered model's name (`metadata.name`).
    pub name: String,
    /// Where `metadata.name` is written.
    pub origin: Origin,
    /// `spec.description`; enforced when present.
    pub description: Option<String>,
    /// `spec.tags`; the declared keys are enforced, other keys are left alone.
    pub tags: BTreeMap<String, String>,
    /// `spec.stages`; when present it is exhaustive: a declarable stage missing from the map
    /// must hold no version. Keys are only [`Stage::Staging`] and [`Stage::Production`].
    pub stages: Option<BTreeMap<Stage, Vec<VersionRef>>>,
    /// `spec.aliases`; when present it is exhaustive.
    pub aliases: Option<BTreeMap<String, VersionRef>>,
    /// `spec.versions`: per-version assertions and metadata.
    pub versions: BTreeMap<u64, VersionSpec>,
    /// `spec.retention`.
    pub retention: Option<Retention>,
    /// `spec.serving`.
    pub serving: Option<Serving>,
}

impl DesiredModel {
    /// Versions declared in `stage` (empty when the stage is not declared).
    pub fn versions_in(&self, stage: Stage) -> &[VersionRef] {
        self.stages
            .as_ref()
            .and_then(|stages| stages.get(&stage))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The stage a manifest places `version` in, if any.
    pub fn declared_stage_of(&self, version: u64) -> Option<Stage> {
        let stages = self.stages.as_ref()?;
        stages
            .iter()
            .find(|(_, refs)| refs.iter().any(|r| r.version == version))
            .map(|(stage, _)| *stage)
    }

    /// Every version number the manifest mentions (stages, aliases, `versions`), each with
    /// the place it is first written, so a missing version can be reported there.
    pub fn referenced_versions(&self) -> BTreeMap<u64, Origin> {
        let mut referenced = BTreeMap::new();
        if let Some(stages) = &self.stages {
            for version in stages.values().flatten() {
                referenced
                    .entry(version.version)
                    .or_insert_with(|| version.origin.clone());
            }
        }
        if let Some(aliases) = &self.aliases {
            for version in aliases.values() {
                referenced
                    .entry(version.version)
                    .or_insert_with(|| version.origin.clone());
            }
        }
        for (version, spec) in &self.versions {
            referenced
                .entry(*version)
                .or_insert_with(|| spec.origin.clone());
        }
        referenced
    }
}

/// A version number written in a manifest, with where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRef {
    /// The model-version number.
    pub version: u64,
    /// Where it is written.
    pub origin: Origin,
}

/// `spec.versions."N"`: assertions about one version and metadata to enforce on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSpec {
    /// Where the version key is written.
    pub origin: Origin,
    /// Refuse to touch the model unless the version was produced by this run.
    pub run_id: Option<String>,
    /// Refuse to touch the model unless the version's source is exactly this URI.
    pub source: Option<String>,
    /// Version tags to enforce (declared keys only).
    pub tags: BTreeMap<String, String>,
}

/// `spec.retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How many unassigned (`None`-stage, unreferenced) versions to keep, newest first.
    pub keep_latest: u32,
}

/// `spec.serving`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// What `mlreg resolve` answers when the registry cannot say.
    pub local_fallback: Option<String>,
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
