//! The JSON MLflow sends and receives, and its conversion into the observed types.
//!
//! Decoding is lenient, as mlflow-api.md §1.4 asks: every field has a default (MLflow
//! omits empty lists and unset fields, so `{}` is a valid empty answer), `null` is read as
//! absent, and `""` means the same as absent. Unknown fields are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::{ObservedModel, ObservedVersion};
use crate::stage::Stage;

/// Reads `null` as the type's default, so a server that writes `null` instead of omitting
/// a field still decodes.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A `{key, value}` tag.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct Tag {
    #[serde(deserialize_with = "null_as_default")]
    pub key: String,
    #[serde(deserialize_with = "null_as_default")]
    pub value: String,
}

/// A registered model's `{alias, version}` pair.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Alias {
    #[serde(deserialize_with = "null_as_default")]
    pub alias: String,
    #[serde(deserialize_with = "null_as_default")]
    pub version: String,
}

/// `RegisteredModel`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct RegisteredModel {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub description: String,
    #[serde(deserialize_with = "null_as_default")]
    pub creation_timestamp: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub last_updated_timestamp: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
    #[serde(deserialize_with = "null_as_default")]
    pub aliases: Vec<Alias>,
}

/// `ModelVersion`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct ModelVersion {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub version: String,
    #[serde(deserialize_with = "null_as_default")]
    pub creation_timestamp: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub last_updated_timestamp: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub current_stage: String,
    #[serde(deserialize_with = "null_as_default")]
    pub description: String,
    #[serde(deserialize_with = "null_as_default")]
    pub source: String,
    #[serde(deserialize_with = "null_as_default")]
    pub run_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
}

/// The answer of `registered-models/search`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SearchModelsResponse {
    #[serde(deserialize_with = "null_as_default")]
    pub registered_models: Vec<RegisteredModel>,
    #[serde(deserialize_with = "null_as_default")]
    pub next_page_token: String,
}

/// The answer of `model-versions/search`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SearchVersionsResponse {
    #[serde(deserialize_with = "null_as_default")]
    pub model_versions: Vec<ModelVersion>,
    #[serde(deserialize_with = "null_as_default")]
    pub next_page_token: String,
}

/// The answer of `registered-models/get` and `registered-models/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RegisteredModelResponse {
    pub registered_model: Option<RegisteredModel>,
}

/// The answer of `model-versions/get` and `model-versions/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ModelVersionResponse {
    pub model_version: Option<ModelVersion>,
}

/// The answer of `runs/get` (only what gates read: the latest value of each metric).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RunResponse {
    pub run: Option<Run>,
}

/// A run, or a logged model: both hold `data.metrics`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Run {
    pub data: Option<RunData>,
}

/// `data` of a run or a logged model.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RunData {
    #[serde(deserialize_with = "null_as_default")]
    pub metrics: Vec<Metric>,
}

/// One metric value. MLflow's protobuf JSON writes NaN and infinities as strings, so the
/// value is read as any JSON value and converted by [`metric_value`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Metric {
    #[serde(deserialize_with = "null_as_default")]
    pub key: String,
    pub value: serde_json::Value,
    #[serde(deserialize_with = "null_as_default")]
    pub timestamp: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub step: i64,
}

/// The answer of `logged-models/{id}` (MLflow 3).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct LoggedModelResponse {
    pub model: Option<Run>,
}

impl Run {
    /// The latest value of each metric: a run's answer holds one value per key already; a
    /// logged model may hold several, of which the last step (then the last timestamp)
    /// wins, as MLflow's "latest" does.
    pub fn latest_metrics(self) -> BTreeMap<String, f64> {
        let mut latest: BTreeMap<String, (i64, i64, f64)> = BTreeMap::new();
        for metric in self.data.map(|data| data.metrics).unwrap_or_default() {
            let Some(value) = metric_value(&metric.value) else {
                continue;
            };
            let entry = (metric.step, metric.timestamp, value);
            match latest.get(&metric.key) {
                Some((step, timestamp, _)) if (*step, *timestamp) > (entry.0, entry.1) => {}
                _ => {
                    latest.insert(metric.key, entry);
                }
            }
        }
        latest
            .into_iter()
            .map(|(key, (_, _, value))| (key, value))
            .collect()
    }
}

/// A metric value as MLflow writes it: a JSON number, or `"NaN"`, `"Infinity"`,
/// `"-Infinity"`.
fn metric_value(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(number) => number.as_f64(),
        serde_json::Value::String(text) => text.parse::<f64>().ok(),
        _ => None,
    }
}

/// An answer whose content does not matter (`{}` for the void RPCs).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Empty {}

/// MLflow's error body: `{"error_code": ..., "message": ...}` (other fields ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorBody {
    #[serde(deserialize_with = "null_as_default")]
    pub error_code: String,
    #[serde(deserialize_with = "null_as_default")]
    pub message: String,
}

/// Tags as the `[{key, value}]` list requests carry.
pub(super) fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| Tag {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// Parses a version number as MLflow writes it (a decimal string).
pub(super) fn parse_version(version: &str) -> Result<u64, String> {
    version
        .trim()
        .parse()
        .map_err(|_| format!("version `{version}` is not a number"))
}

fn tag_map(tags: Vec<Tag>) -> BTreeMap<String, String> {
    tags.into_iter().map(|tag| (tag.key, tag.value)).collect()
}

impl ModelVersion {
    /// Converts into the observed type; `Err` says what MLflow sent that makes no sense.
    pub fn into_observed(self) -> Result<ObservedVersion, String> {
        let version = parse_version(&self.version)?;
        let stage = if self.current_stage.is_empty() {
            Stage::None
        } else {
            self.current_stage.parse().map_err(|_| {
                format!(
                    "version {} of `{}` has unknown stage `{}`",
                    version, self.name, self.current_stage
                )
            })?
        };
        Ok(ObservedVersion {
            version,
            stage,
            status: self.status,
            run_id: self.run_id,
            source: self.source,
            description: self.description,
            tags: tag_map(self.tags),
            creation_timestamp: self.creation_timestamp,
            last_updated_timestamp: self.last_updated_timestamp,
        })
    }
}

impl RegisteredModel {
    /// Converts into the observed type without versions, and returns the version numbers
    /// of `latest_versions` too (a consistency check for the versions read separately).
    pub fn into_observed(self) -> Result<(ObservedModel, Vec<u64>), String> {
        let mut aliases = BTreeMap::new();
        for alias in self.aliases {
            let version = parse_version(&alias.version)
                .map_err(|error| format!("alias `{}` of `{}`: {error}", alias.alias, self.name))?;
            aliases.insert(alias.alias, version);
        }
        let latest = self
            .latest_versions
            .iter()
            .map(|version| parse_version(&version.version))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("latest versions of `{}`: {error}", self.name))?;
        let model = ObservedModel {
            name: self.name,
            description: self.description,
            tags: tag_map(self.tags),
            aliases,
            versions: BTreeMap::new(),
            creation_timestamp: self.creation_timestamp,
            last_updated_timestamp: self.last_updated_timestamp,
        };
        Ok((model, latest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_object_is_an_empty_answer() {
        let models: SearchModelsResponse = serde_json::from_str("{}").expect("decodes");
        assert!(models.registered_models.is_empty());
        assert!(models.next_page_token.is_empty());
        let versions: SearchVersionsResponse = serde_json::from_str("{}").expect("decodes");
        assert!(versions.model_versions.is_empty());
        let _: Empty = serde_json::from_str("{}").expect("decodes");
        let get: RegisteredModelResponse = serde_json::from_str("{}").expect("decodes");
        assert!(get.registered_model.is_none());
    }

    #[test]
    fn nulls_and_missing_fields_decode() {
        let version: ModelVersion = serde_json::from_str(
            r#"{"name": "m", "version": "3", "run_id": null, "tags": null, "extra": 1}"#,
        )
        .expect("decodes");
        let observed = version.into_observed().expect("converts");
        assert_eq!(observed.version, 3);
        assert_eq!(observed.stage, Stage::None);
        assert_eq!(observed.run_id, "");
    }

    #[test]
    fn stages_and_aliases_convert() {
        let model: RegisteredModel = serde_json::from_str(
            r#"{"name": "m", "description": "d", "tags": [{"key": "a", "value": "1"}, {"key": "b"}],
                "aliases": [{"alias": "champion", "version": "2"}],
                "latest_versions": [{"name": "m", "version": "2", "current_stage": "Production"}]}"#,
        )
        .expect("decodes");
        let (observed, latest) = model.into_observed().expect("converts");
        assert_eq!(observed.aliases.get("champion"), Some(&2));
        assert_eq!(observed.tags.get("b").map(String::as_str), Some(""));
        assert_eq!(latest, vec![2]);
        let version: ModelVersion =
            serde_json::from_str(r#"{"name": "m", "version": "x"}"#).expect("decodes");
        assert!(version.into_observed().is_err());
        let version: ModelVersion =
            serde_json::from_str(r#"{"name": "m", "version": "1", "current_stage": "production"}"#)
                .expect("decodes");
        assert_eq!(
            version.into_observed().expect("converts").stage,
            Stage::Production
        );
    }
}
