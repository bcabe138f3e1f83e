//! The registry calls behind selectors: what a run or a logged model registers from, the
//! creation of a version, and its registration status. Kept apart from the rest of the
//! client: these are the only calls that touch runs' artifacts and MLflow 3 logged models
//! for anything but metrics.

use serde::Deserialize;
use serde_json::json;

use super::{Call, MlflowClient, Policy, Verb, endpoint, is_missing};
use crate::manifest::Selector;
use crate::registry::wire::parse_version;
use crate::registry::{Error, RegistrationSource, Result, SourceLookup, VersionStatus};

/// The endpoints only these calls use (after `/api/2.0/mlflow/`).
mod path {
    pub const LIST_ARTIFACTS: &str = "artifacts/list";
    pub const SEARCH_LOGGED_MODELS: &str = "logged-models/search";
}

/// The answer of `runs/get`, as far as a registration needs it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunAnswer {
    run: Option<RunWithInfo>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunWithInfo {
    info: RunInfo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RunInfo {
    run_id: String,
    experiment_id: String,
    artifact_uri: String,
}

/// The answer of `artifacts/list`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ArtifactList {
    files: Vec<ArtifactFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ArtifactFile {
    path: String,
}

/// The answer of `logged-models/search` and `logged-models/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoggedModels {
    models: Vec<LoggedModel>,
    next_page_token: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OneLoggedModel {
    model: Option<LoggedModel>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoggedModel {
    info: LoggedModelInfo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoggedModelInfo {
    model_id: String,
    name: String,
    source_run_id: String,
}

/// The answer of `model-versions/create` and `model-versions/get`, as far as the status.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VersionAnswer {
    model_version: Option<VersionFields>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VersionFields {
    version: String,
    status: String,
    status_message: String,
}

/// Whether an error means "this server has no such endpoint" (MLflow 2 and logged models).
fn is_unsupported(error: &Error) -> bool {
    matches!(error, Error::Api { status: 404, code, .. } if code.as_deref() != Some("RESOURCE_DOES_NOT_EXIST"))
        || matches!(
            error,
            Error::Api {
                status: 405 | 501,
                ..
            }
        )
}

/// Quotes `text` for an MLflow search filter.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl MlflowClient {
    /// See [`crate::registry::Registry::registration_source`]. As MLflow's own
    /// `register_model`: a run whose artifacts hold `PATH/MLmodel` registers from there
    /// (`artifact_uri/PATH`, the MLflow 2 way); else the logged model the run produced under
    /// the name PATH (MLflow 3).
    pub(super) async fn lookup_source(&self, selector: &Selector) -> Result<SourceLookup> {
        match selector {
            Selector::Run {
                run_id,
                artifact_path,
            } => self.run_source(run_id, artifact_path).await,
            Selector::LoggedModel { model_id } => self.logged_model_source(model_id).await,
        }
    }

    async fn run_source(&self, run_id: &str, artifact_path: &str) -> Result<SourceLookup> {
        let call = Call::get(endpoint::GET_RUN, vec![("run_id", run_id.to_owned())]);
        let info = match self.call::<RunAnswer>(&call).await {
            Ok(RunAnswer { run: Some(run) }) => run.info,
            Ok(RunAnswer { run: None }) => {
                return Ok(SourceLookup::Missing(format!(
                    "run `{run_id}` does not exist"
                )));
            }
            Err(error) if is_missing(&error) || error.is_not_found() => {
                return Ok(SourceLookup::Missing(format!(
                    "run `{run_id}` does not exist"
                )));
            }
            Err(error) => return Err(error),
        };
        let run_id = if info.run_id.is_empty() {
            run_id.to_owned()
        } else {
            info.run_id
        };

        // The run's own artifacts (MLflow 2, or a model logged the MLflow 2 way).
        let path = artifact_path.trim_end_matches('/');
        let list = Call::get(
            path::LIST_ARTIFACTS,
            vec![("run_id", run_id.clone()), ("path", path.to_owned())],
        );
        let mlmodel = format!("{path}/MLmodel");
        let listed = match self.call::<ArtifactList>(&list).await {
            Ok(list) => list.files.iter().any(|file| file.path == mlmodel),
            // A run without artifacts, or a server that does not proxy them: look further.
            Err(error)
                if error.is_not_found()
                    || matches!(
                        error,
                        Error::Api {
                            status: 400 | 501,
                            ..
                        }
                    ) =>
            {
                false
            }
            Err(error) => return Err(error),
        };
        if listed {
            return Ok(SourceLookup::Found(RegistrationSource {
                source: format!("{}/{path}", info.artifact_uri.trim_end_matches('/')),
                run_id: Some(run_id),
                model_id: None,
            }));
        }

        // The logged models the run produced under that name (MLflow 3).
        let mut found: Vec<LoggedModelInfo> = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut body = json!({
                "experiment_ids": [info.experiment_id],
                "filter": format!("name = {}", quoted(path)),
                "max_results": 100,
            });
            if !page_token.is_empty() {
                body["page_token"] = json!(page_token);
            }
            let call = Call::with_body(Verb::Post, path::SEARCH_LOGGED_MODELS, body, Policy::Safe);
            let page = match self.call::<LoggedModels>(&call).await {
                Ok(page) => page,
                Err(error) if is_unsupported(&error) => {
                    return Ok(SourceLookup::Missing(format!(
                        "run `{run_id}` has no model at artifact path `{path}` (no `{mlmodel}` among its artifacts)"
                    )));
                }
                Err(error) => return Err(error),
            };
            found.extend(
                page.models
                    .into_iter()
                    .map(|model| model.info)
                    .filter(|info| info.source_run_id == run_id && info.name == path),
            );
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        match found.as_slice() {
            [] => Ok(SourceLookup::Missing(format!(
                "run `{run_id}` logged no model named `{path}` (neither a logged model nor `{mlmodel}` among its artifacts)"
            ))),
            [one] => Ok(SourceLookup::Found(RegistrationSource {
                source: format!("models:/{}", one.model_id),
                run_id: Some(run_id),
                model_id: Some(one.model_id.clone()),
            })),
            several => {
                let ids: Vec<&str> = several.iter().map(|info| info.model_id.as_str()).collect();
                Ok(SourceLookup::Missing(format!(
                    "run `{run_id}` logged {} models named `{path}` ({}); name one with `{{loggedModel: m-…}}`",
                    several.len(),
                    ids.join(", ")
                )))
            }
        }
    }

    async fn logged_model_source(&self, model_id: &str) -> Result<SourceLookup> {
        let mut call = Call::get(endpoint::GET_LOGGED_MODEL, Vec::new());
        call.segment = Some(model_id.to_owned());
        match self.call::<OneLoggedModel>(&call).await {
            Ok(OneLoggedModel { model: Some(model) }) => {
                let run_id = Some(model.info.source_run_id).filter(|id| !id.is_empty());
                Ok(SourceLookup::Found(RegistrationSource {
                    source: format!("models:/{model_id}"),
                    run_id,
                    model_id: Some(model_id.to_owned()),
                }))
            }
            Ok(OneLoggedModel { model: None }) => Ok(SourceLookup::Missing(format!(
                "logged model `{model_id}` does not exist"
            ))),
            Err(error) if is_missing(&error) || error.is_not_found() => {
                Ok(SourceLookup::Missing(format!(
                    "logged model `{model_id}` does not exist (or the server, MLflow 2, has no logged models)"
                )))
            }
            Err(error) => Err(error),
        }
    }

    /// See [`crate::registry::Registry::create_version`]: one `model-versions/create`,
    /// retried only when the server provably did not act on it.
    pub(super) async fn create_version_from(
        &self,
        name: &str,
        source: &RegistrationSource,
    ) -> Result<u64> {
        let mut body = json!({"name": name, "source": source.source});
        if let Some(run_id) = &source.run_id {
            body["run_id"] = json!(run_id);
        }
        if let Some(model_id) = &source.model_id {
            body["model_id"] = json!(model_id);
        }
        let call = Call::with_body(Verb::Post, endpoint::CREATE_VERSION, body, Policy::Create);
        let answer: VersionAnswer = self.call(&call).await?;
        let version = answer.model_version.ok_or_else(|| Error::Decode {
            endpoint: endpoint::CREATE_VERSION,
            detail: "the answer holds no model_version".into(),
        })?;
        parse_version(&version.version).map_err(|detail| Error::Decode {
            endpoint: endpoint::CREATE_VERSION,
            detail,
        })
    }

    /// See [`crate::registry::Registry::version_status`].
    pub(super) async fn status_of(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<VersionStatus>> {
        let call = Call::get(
            endpoint::GET_VERSION,
            vec![("name", name.to_owned()), ("version", version.to_string())],
        );
        match self.call::<VersionAnswer>(&call).await {
            Ok(answer) => Ok(answer.model_version.map(|fields| VersionStatus {
                status: fields.status,
                message: fields.status_message,
            })),
            Err(error) if is_missing(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
