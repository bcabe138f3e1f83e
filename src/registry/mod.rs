//! The observed state: what the MLflow Model Registry holds, and the writes mlreg makes.
//!
//! [`Registry`] is the small domain trait the planner's caller and the executor use.
//! [`mlflow::MlflowClient`] implements it over MLflow's REST API (reqwest, rustls);
//! `fake::FakeRegistry` implements it in memory for unit tests of apply; it is compiled
//! only for the crate's own tests or with the `test-support` feature, so the library that
//! ships carries no test double.
//!
//! Reading the whole registry takes two paged searches (registered models with their
//! tags and aliases, then every model version), so the number of requests grows with the
//! number of pages, not with the number of models.
//!
//! A scoped read ([`Registry::scoped_snapshot`]) reads only the models a run manages:
//! their versions through filtered searches (`name IN (...)`), and the other models'
//! names from the model search alone, so a plan costs what its managed models cost, not
//! what a shared registry holds (DESIGN.md "Scale").

mod config;
pub mod databricks;
mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
pub mod mlflow;
mod retry;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use serde::Serialize;

use crate::stage::Stage;

pub use config::{Auth, DEFAULT_REQUEST_TIMEOUT, RegistryConfig};
pub use error::{Error, Result};

/// A consistent read of the whole registry (or of the models of interest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Registered models by name.
    pub models: BTreeMap<String, ObservedModel>,
}

/// Which models a scoped read covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The models read whole: tags, aliases and every version.
    pub models: BTreeSet<String>,
    /// Whether to list every other registered model by name too (a plan's `unmanaged`).
    /// Without it the read costs only what the scope's models cost.
    pub list_others: bool,
}

impl Scope {
    /// A scope of `models` that also lists the others.
    pub fn listing_others(models: impl IntoIterator<Item = String>) -> Self {
        Scope {
            models: models.into_iter().collect(),
            list_others: true,
        }
    }

    /// A scope of `models` alone.
    pub fn only(models: impl IntoIterator<Item = String>) -> Self {
        Scope {
            models: models.into_iter().collect(),
            list_others: false,
        }
    }
}

/// What a scoped read returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopedSnapshot {
    /// The scope's models that exist, each read whole and as consistently as by
    /// [`Registry::snapshot`]. A scope's model missing here does not exist.
    pub snapshot: Snapshot,
    /// The names of every registered model outside the scope (their versions were not
    /// read); empty unless the scope asked for them.
    pub others: BTreeSet<String>,
}

impl ScopedSnapshot {
    /// Cuts a whole-registry snapshot down to `scope`.
    pub fn from_whole(mut whole: Snapshot, scope: &Scope) -> Self {
        let mut others = BTreeSet::new();
        whole.models.retain(|name, _| {
            let keep = scope.models.contains(name);
            if !keep && scope.list_others {
                others.insert(name.clone());
            }
            keep
        });
        ScopedSnapshot {
            snapshot: whole,
            others,
        }
    }

    /// The registered models outside the scope that `is_managed` does not claim, sorted:
    /// with the scope's own models, the complete list of what the registry holds.
    pub fn unmanaged(&self, is_managed: impl Fn(&str) -> bool) -> Vec<String> {
        self.others
            .iter()
            .filter(|name| !is_managed(name))
            .cloned()
            .collect()
    }
}

/// One registered model as the registry holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedModel {
    /// The registered model's name.
    pub name: String,
    /// Its description (`""` when unset; MLflow does not distinguish).
    pub description: String,
    /// Registered-model tags.
    pub tags: BTreeMap<String, String>,
    /// Aliases and the version each points to.
    pub aliases: BTreeMap<String, u64>,
    /// Every (non-deleted) version by number.
    pub versions: BTreeMap<u64, ObservedVersion>,
    /// Milliseconds since the epoch.
    pub creation_timestamp: i64,
    /// Milliseconds since the epoch.
    pub last_updated_timestamp: i64,
}

impl ObservedModel {
    /// The versions currently in `stage`, ascending.
    pub fn versions_in(&self, stage: Stage) -> impl Iterator<Item = &ObservedVersion> {
        self.versions.values().filter(move |v| v.stage == stage)
    }

    /// The aliases pointing at `version`, sorted.
    pub fn aliases_of(&self, version: u64) -> Vec<&str> {
        self.aliases
            .iter()
            .filter(|(_, v)| **v == version)
            .map(|(alias, _)| alias.as_str())
            .collect()
    }
}

/// One model version as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedVersion {
    /// The version number.
    pub version: u64,
    /// Its current stage.
    pub stage: Stage,
    /// `READY`, `PENDING_REGISTRATION` or `FAILED_REGISTRATION`.
    pub status: String,
    /// The run that produced it (`""` when none).
    pub run_id: String,
    /// Its source URI.
    pub source: String,
    /// Its description (`""` when unset).
    pub description: String,
    /// Model-version tags.
    pub tags: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    pub creation_timestamp: i64,
    /// Milliseconds since the epoch.
    pub last_updated_timestamp: i64,
}

impl ObservedVersion {
    /// Whether the version finished registration; mlreg never touches one that did not.
    pub fn is_ready(&self) -> bool {
        self.status == "READY"
    }
}

/// The latest value of each metric of a run or a logged model, by name.
pub type Metrics = BTreeMap<String, f64>;

/// What a new model version is registered from, as MLflow's own `register_model` sends
/// it: MLflow 3, the logged model (`source = models:/m-…`, its `model_id` and the run that
/// produced it); MLflow 2, the run's artifact location (`source` under the run's
/// `artifact_uri`, with the `run_id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RegistrationSource {
    /// The `source` URI of the new version.
    pub source: String,
    /// The run that produced the model, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The MLflow 3 logged model, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

/// What the registry answers about the source of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLookup {
    /// The model the selector names, ready to be registered.
    Found(RegistrationSource),
    /// The run or logged model does not exist, or holds no model where the selector says:
    /// why, in words.
    Missing(String),
}

/// The registration status of one version, as `model-versions/get` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    /// `READY`, `PENDING_REGISTRATION` or `FAILED_REGISTRATION`.
    pub status: String,
    /// The server's explanation (set on failures).
    pub message: String,
}

/// The registry operations mlreg needs. Every method is one logical call; implementations
/// retry transient failures themselves where that is safe.
pub trait Registry: Send + Sync {
    /// Reads every registered model with its tags, aliases and versions. Any failed or
    /// partial read is an error: a run never proceeds on a partial picture.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot>> + Send;

    /// Reads the models of `scope` whole (with the same consistency as [`Self::snapshot`])
    /// and, when asked, the names of every other registered model. Implementations may
    /// read the whole registry instead when that is cheaper; the answer is the same.
    fn scoped_snapshot(&self, scope: &Scope)
    -> impl Future<Output = Result<ScopedSnapshot>> + Send;

    /// Reads one model with its versions; `Ok(None)` when it does not exist.
    fn model(&self, name: &str) -> impl Future<Output = Result<Option<ObservedModel>>> + Send;

    /// The latest value of each metric of run `run_id` (the evidence of promotion gates);
    /// `Ok(None)` when the run does not exist.
    fn run_metrics(&self, run_id: &str) -> impl Future<Output = Result<Option<Metrics>>> + Send;

    /// The latest value of each metric of the MLflow 3 logged model `model_id` (`m-…`);
    /// `Ok(None)` when it does not exist, or the server has no logged models (MLflow 2).
    fn logged_model_metrics(
        &self,
        model_id: &str,
    ) -> impl Future<Output = Result<Option<Metrics>>> + Send;

    /// Finds what `selector` registers from (see [`RegistrationSource`]): for a run, the
    /// logged model it produced under the selector's artifact path (MLflow 3, searched by
    /// source run), else the path under the run's artifact location (MLflow 2); for a
    /// logged model, itself.
    fn registration_source(
        &self,
        selector: &crate::manifest::Selector,
    ) -> impl Future<Output = Result<SourceLookup>> + Send;

    /// Creates a version of model `name` from `source` and returns its number. Not
    /// idempotent: callers re-read the model's versions after an ambiguous failure before
    /// trying again ([`crate::select::register`]).
    fn create_version(
        &self,
        name: &str,
        source: &RegistrationSource,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// The registration status of one version; `Ok(None)` when it does not exist.
    fn version_status(
        &self,
        name: &str,
        version: u64,
    ) -> impl Future<Output = Result<Option<VersionStatus>>> + Send;

    /// Creates a registered model with its description and tags.
    fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets the model's description (always sends the full value; MLflow clears it otherwise).
    fn update_description(
        &self,
        name: &str,
        description: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets (upserts) a registered-model tag.
    fn set_model_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a registered-model tag (idempotent).
    fn delete_model_tag(&self, name: &str, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Moves a version to `stage`, always with `archive_existing_versions=false`.
    fn transition(
        &self,
        name: &str,
        version: u64,
        stage: Stage,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Points `alias` at `version` (creating or moving it).
    fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes `alias` (idempotent).
    fn delete_alias(&self, name: &str, alias: &str) -> impl Future<Output = Result<()>> + Send;

    /// Sets (upserts) a model-version tag.
    fn set_version_tag(
        &self,
        name: &str,
        version: u64,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a model-version tag (idempotent).
    fn delete_version_tag(
        &self,
        name: &str,
        version: u64,
        key: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_snapshot_cut_to_a_scope_keeps_its_models_and_lists_the_others() {
        let whole = Snapshot {
            models: ["a", "b", "z"]
                .map(|name| (name.to_owned(), fake::observed_model(name, &[])))
                .into_iter()
                .collect(),
        };
        let listed = ScopedSnapshot::from_whole(
            whole.clone(),
            &Scope::listing_others(["a".into(), "c".into()]),
        );
        assert_eq!(listed.snapshot.models.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(listed.others.iter().collect::<Vec<_>>(), ["b", "z"]);
        assert_eq!(listed.unmanaged(|name| name == "b"), ["z"]);
        let only = ScopedSnapshot::from_whole(whole, &Scope::only(["b".into()]));
        assert_eq!(only.snapshot.models.keys().collect::<Vec<_>>(), ["b"]);
        assert!(only.others.is_empty());
    }
}
