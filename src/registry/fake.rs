//! An in-memory registry for unit tests of apply: it behaves like MLflow for the calls
//! mlreg makes, records every write, and can be told to fail chosen writes.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    Error, Metrics, ObservedModel, ObservedVersion, Registry, Result, Scope, ScopedSnapshot,
    Snapshot,
};
use crate::stage::Stage;

/// An in-memory [`Registry`].
#[derive(Debug, Default)]
pub struct FakeRegistry {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    snapshot: Snapshot,
    writes: Vec<String>,
    fail_writes_matching: Vec<String>,
    reads: usize,
    scoped_reads: Vec<Scope>,
    runs: BTreeMap<String, Metrics>,
    logged_models: BTreeMap<String, Metrics>,
    unreadable_runs: Vec<String>,
    evidence_reads: usize,
    lost_create_answers: usize,
    failed_registration: Option<String>,
    status_messages: BTreeMap<(String, u64), String>,
}

impl FakeRegistry {
    /// A registry holding `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        FakeRegistry {
            state: Mutex::new(FakeState {
                snapshot,
                ..FakeState::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a model with `versions` (all READY) in the given stages.
    pub fn add_model(&self, name: &str, versions: &[(u64, Stage)]) {
        let model = observed_model(name, versions);
        self.lock().snapshot.models.insert(name.to_owned(), model);
    }

    /// Changes the registry behind mlreg's back (as a person in the MLflow UI would).
    pub fn mutate(&self, edit: impl FnOnce(&mut Snapshot)) {
        edit(&mut self.lock().snapshot);
    }

    /// Edits one version as someone else would (by hand, in the UI); nothing when it does
    /// not exist.
    pub fn edit_version(&self, model: &str, version: u64, edit: impl FnOnce(&mut ObservedVersion)) {
        if let Some(found) = self
            .lock()
            .snapshot
            .models
            .get_mut(model)
            .and_then(|model| model.versions.get_mut(&version))
        {
            edit(found);
        }
    }

    /// The current state.
    pub fn state(&self) -> Snapshot {
        self.lock().snapshot.clone()
    }

    /// Every write made so far, as `"<call> <model> <details>"` lines.
    pub fn writes(&self) -> Vec<String> {
        self.lock().writes.clone()
    }

    /// The scopes of the scoped reads made so far, in order.
    pub fn scoped_reads(&self) -> Vec<Scope> {
        self.lock().scoped_reads.clone()
    }

    /// How many reads (snapshot, scoped or model) were made.
    pub fn reads(&self) -> usize {
        self.lock().reads
    }

    /// Records run `run_id` with these latest metric values.
    pub fn add_run(&self, run_id: &str, metrics: &[(&str, f64)]) {
        self.lock().runs.insert(
            run_id.to_owned(),
            metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        );
    }

    /// Records logged model `model_id` with these latest metric values.
    pub fn add_logged_model(&self, model_id: &str, metrics: &[(&str, f64)]) {
        self.lock().logged_models.insert(
            model_id.to_owned(),
            metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        );
    }

    /// Makes reading run `run_id` fail with HTTP 503.
    pub fn fail_run(&self, run_id: &str) {
        self.lock().unreadable_runs.push(run_id.to_owned());
    }

    /// How many evidence reads (runs, logged models) were made.
    pub fn evidence_reads(&self) -> usize {
        self.lock().evidence_reads
    }

    /// Makes the next `count` version creations succeed on the server but answer 503, as
    /// a response lost on the way back.
    pub fn lose_create_answers(&self, count: usize) {
        self.lock().lost_create_answers = count;
    }

    /// Makes every version created from now on end `FAILED_REGISTRATION` with `message`.
    pub fn fail_registrations(&self, message: &str) {
        self.lock().failed_registration = Some(message.to_owned());
    }

    /// Makes every write whose log line contains `needle` fail with HTTP 503.
    pub fn fail_writes_matching(&self, needle: &str) {
        self.lock().fail_writes_matching.push(needle.to_owned());
    }

    fn write(&self, line: String, apply: impl FnOnce(&mut Snapshot) -> Result<()>) -> Result<()> {
        let mut state = self.lock();
        if state.fail_writes_matching.iter().any(|n| line.contains(n)) {
            return Err(Error::Api {
                method: "POST",
                endpoint: "fake",
                status: 503,
                code: Some("TEMPORARILY_UNAVAILABLE".into()),
                message: format!("injected failure for `{line}`"),
            });
        }
        apply(&mut state.snapshot)?;
        state.writes.push(line);
        Ok(())
    }
}

/// A model with `versions` (all READY, sources `s3://bucket/NAME/VERSION`) in the given
/// stages, for tests of the planner and the executor.
pub fn observed_model(name: &str, versions: &[(u64, Stage)]) -> ObservedModel {
    ObservedModel {
        name: name.to_owned(),
        versions: versions
            .iter()
            .map(|(version, stage)| {
                (
                    *version,
                    ObservedVersion {
                        version: *version,
                        stage: *stage,
                        status: "READY".into(),
                        run_id: String::new(),
                        source: format!("s3://bucket/{name}/{version}"),
                        description: String::new(),
                        tags: BTreeMap::new(),
                        creation_timestamp: 0,
                        last_updated_timestamp: 0,
                    },
                )
            })
            .collect(),
        ..ObservedModel::default()
    }
}

fn not_found(what: String) -> Error {
    Error::Api {
        method: "GET",
        endpoint: "fake",
        status: 404,
        code: Some("RESOURCE_DOES_NOT_EXIST".into()),
        message: format!("{what} not found"),
    }
}

fn model_mut<'a>(snapshot: &'a mut Snapshot, name: &str) -> Result<&'a mut ObservedModel> {
    snapshot
        .models
        .get_mut(name)
        .ok_or_else(|| not_found(format!("Registered Model with name={name}")))
}

fn version_mut<'a>(
    snapshot: &'a mut Snapshot,
    name: &str,
    version: u64,
) -> Result<&'a mut ObservedVersion> {
    model_mut(snapshot, name)?
        .versions
        .get_mut(&version)
        .ok_or_else(|| not_found(format!("Model Version (name={name}, version={version})")))
}

impl Registry for FakeRegistry {
    async fn snapshot(&self) -> Result<Snapshot> {
        let mut state = self.lock();
        state.reads += 1;
        Ok(state.snapshot.clone())
    }

    async fn scoped_snapshot(&self, scope: &Scope) -> Result<ScopedSnapshot> {
        let mut state = self.lock();
        state.reads += 1;
        state.scoped_reads.push(scope.clone());
        Ok(ScopedSnapshot::from_whole(state.snapshot.clone(), scope))
    }

    async fn model(&self, name: &str) -> Result<Option<ObservedModel>> {
        let mut state = self.lock();
        state.reads += 1;
        Ok(state.snapshot.models.get(name).cloned())
    }

    async fn run_metrics(&self, run_id: &str) -> Result<Option<Metrics>> {
        let mut state = self.lock();
        state.evidence_reads += 1;
        if state.unreadable_runs.iter().any(|r| r == run_id) {
            return Err(Error::Api {
                method: "GET",
                endpoint: "runs/get",
                status: 503,
                code: Some("TEMPORARILY_UNAVAILABLE".into()),
                message: format!("injected failure reading run `{run_id}`"),
            });
        }
        Ok(state.runs.get(run_id).cloned())
    }

    async fn logged_model_metrics(&self, model_id: &str) -> Result<Option<Metrics>> {
        let mut state = self.lock();
        state.evidence_reads += 1;
        Ok(state.logged_models.get(model_id).cloned())
    }

    async fn registration_source(
        &self,
        selector: &crate::manifest::Selector,
    ) -> Result<super::SourceLookup> {
        use crate::manifest::Selector;
        let state = self.lock();
        Ok(match selector {
            Selector::Run { run_id, .. } if state.runs.contains_key(run_id) => {
                super::SourceLookup::Found(super::RegistrationSource {
                    source: format!("models:/m-{run_id}"),
                    run_id: Some(run_id.clone()),
                    model_id: Some(format!("m-{run_id}")),
                })
            }
            Selector::Run { run_id, .. } => {
                super::SourceLookup::Missing(format!("run `{run_id}` does not exist"))
            }
            Selector::LoggedModel { model_id } if state.logged_models.contains_key(model_id) => {
                super::SourceLookup::Found(super::RegistrationSource {
                    source: format!("models:/{model_id}"),
                    run_id: None,
                    model_id: Some(model_id.clone()),
                })
            }
            Selector::LoggedModel { model_id } => {
                super::SourceLookup::Missing(format!("logged model `{model_id}` does not exist"))
            }
        })
    }

    async fn create_version(&self, name: &str, source: &super::RegistrationSource) -> Result<u64> {
        let mut created = 0;
        let failed = self.lock().failed_registration.clone();
        self.write(
            format!("create_version {name} {}", source.source),
            |snapshot| {
                let model = model_mut(snapshot, name)?;
                let version = model.versions.keys().max().copied().unwrap_or(0) + 1;
                model.versions.insert(
                    version,
                    ObservedVersion {
                        version,
                        stage: Stage::None,
                        status: if failed.is_some() {
                            "FAILED_REGISTRATION".into()
                        } else {
                            "READY".into()
                        },
                        run_id: source.run_id.clone().unwrap_or_default(),
                        source: source.source.clone(),
                        description: String::new(),
                        tags: BTreeMap::new(),
                        creation_timestamp: 0,
                        last_updated_timestamp: 0,
                    },
                );
                created = version;
                Ok(())
            },
        )?;
        let mut state = self.lock();
        if let Some(message) = failed {
            state
                .status_messages
                .insert((name.to_owned(), created), message);
        }
        if state.lost_create_answers > 0 {
            state.lost_create_answers -= 1;
            return Err(Error::Api {
                method: "POST",
                endpoint: "model-versions/create",
                status: 503,
                code: None,
                message: "injected: the version was created but the answer was lost".into(),
            });
        }
        Ok(created)
    }

    async fn version_status(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<super::VersionStatus>> {
        let state = self.lock();
        Ok(state
            .snapshot
            .models
            .get(name)
            .and_then(|model| model.versions.get(&version))
            .map(|found| super::VersionStatus {
                status: found.status.clone(),
                message: state
                    .status_messages
                    .get(&(name.to_owned(), version))
                    .cloned()
                    .unwrap_or_default(),
            }))
    }

    async fn create_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.write(format!("create_model {name}"), |snapshot| {
            if snapshot.models.contains_key(name) {
                return Err(Error::Api {
                    method: "POST",
                    endpoint: "fake",
                    status: 400,
                    code: Some("RESOURCE_ALREADY_EXISTS".into()),
                    message: format!("Registered Model (name={name}) already exists"),
                });
            }
            snapshot.models.insert(
                name.to_owned(),
                ObservedModel {
                    name: name.to_owned(),
                    description: description.unwrap_or_default().to_owned(),
                    tags: tags.clone(),
                    ..ObservedModel::default()
                },
            );
            Ok(())
        })
    }

    async fn update_description(&self, name: &str, description: &str) -> Result<()> {
        self.write(format!("update_description {name}"), |snapshot| {
            model_mut(snapshot, name)?.description = description.to_owned();
            Ok(())
        })
    }

    async fn set_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.write(format!("set_model_tag {name} {key}={value}"), |snapshot| {
            model_mut(snapshot, name)?
                .tags
                .insert(key.to_owned(), value.to_owned());
            Ok(())
        })
    }

    async fn delete_model_tag(&self, name: &str, key: &str) -> Result<()> {
        self.write(format!("delete_model_tag {name} {key}"), |snapshot| {
            model_mut(snapshot, name)?.tags.remove(key);
            Ok(())
        })
    }

    async fn transition(&self, name: &str, version: u64, stage: Stage) -> Result<()> {
        self.write(format!("transition {name} {version} {stage}"), |snapshot| {
            version_mut(snapshot, name, version)?.stage = stage;
            Ok(())
        })
    }

    async fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<()> {
        self.write(format!("set_alias {name} {alias}={version}"), |snapshot| {
            version_mut(snapshot, name, version)?;
            model_mut(snapshot, name)?
                .aliases
                .insert(alias.to_owned(), version);
            Ok(())
        })
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        self.write(format!("delete_alias {name} {alias}"), |snapshot| {
            model_mut(snapshot, name)?.aliases.remove(alias);
            Ok(())
        })
    }

    async fn set_version_tag(
        &self,
        name: &str,
        version: u64,
        key: &str,
        value: &str,
    ) -> Result<()> {
        self.write(
            format!("set_version_tag {name} {version} {key}={value}"),
            |snapshot| {
                version_mut(snapshot, name, version)?
                    .tags
                    .insert(key.to_owned(), value.to_owned());
                Ok(())
            },
        )
    }

    async fn delete_version_tag(&self, name: &str, version: u64, key: &str) -> Result<()> {
        self.write(
            format!("delete_version_tag {name} {version} {key}"),
            |snapshot| {
                version_mut(snapshot, name, version)?.tags.remove(key);
                Ok(())
            },
        )
    }
}
