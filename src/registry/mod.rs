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

mod config;
mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
pub mod mlflow;
mod retry;
mod wire;

use std::collections::BTreeMap;
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

/// The registry operations mlreg needs. Every method is one logical call; implementations
/// retry transient failures themselves where that is safe.
pub trait Registry: Send + Sync {
    /// Reads every registered model with its tags, aliases and versions. Any failed or
    /// partial read is an error: a run never proceeds on a partial picture.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot>> + Send;

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
